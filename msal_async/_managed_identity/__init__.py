"""Managed identity: source detection (pure) and the async ManagedIdentityClient."""
