"""The application classes: ClientApplication, PublicClientApplication, Confidential."""
