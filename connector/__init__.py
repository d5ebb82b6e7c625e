"""astro-scim: SCIM provisioning from Okta and Microsoft Entra ID into Astro, as code."""

__version__ = "0.1.0"
