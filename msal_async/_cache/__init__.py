"""The token cache: msal's unified cache schema, an indexed in-memory store and its persistence."""
