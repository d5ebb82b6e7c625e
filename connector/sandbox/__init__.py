"""The sandbox: emulated Okta and Graph APIs and a real SCIM server (scim2-server) on loopback."""
