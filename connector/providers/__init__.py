"""IdP and Astro providers: populate -> plan -> apply. The only modules that import the SDKs, lazily."""
