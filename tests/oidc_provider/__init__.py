"""Interop tests against oidc-provider 8.x, an independently written OpenID Certified server."""
