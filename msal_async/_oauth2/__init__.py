"""Sans-I/O OAuth2 and OpenID Connect: plain data in, plain data out."""
