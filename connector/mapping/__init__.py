"""Attribute mappings as code: model, YAML loader, SCIM path checks, Okta and Entra expression languages."""
