"""PopAuthScheme: the parameters of a Proof-of-Possession token request (spec 10).

msal only obtains PoP tokens through a broker; msal_async has no broker, so the scheme is
validated and carried, and a flow asked for one answers as msal does without a broker.
"""

from __future__ import annotations

from urllib.parse import urlparse

__all__ = ["PopAuthScheme"]


class PopAuthScheme:
    """The HTTP method, URL and nonce a PoP token is bound to (msal's ``PopAuthScheme``).

    Args:
        http_method: one of ``GET``, ``POST``, ``PUT``, ``DELETE``, ``PATCH`` (upper case).
        url: the full URL of the protected resource.
        nonce: the nonce from the resource's ``WWW-Authenticate`` challenge.

    Raises:
        ValueError: a missing argument or a method other than the five above.
    """

    HTTP_GET = "GET"
    HTTP_POST = "POST"
    HTTP_PUT = "PUT"
    HTTP_DELETE = "DELETE"
    HTTP_PATCH = "PATCH"
    _HTTP_METHODS = (HTTP_GET, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH)

    def __init__(
        self, http_method: str | None = None, url: str | None = None, nonce: str | None = None
    ) -> None:
        if not (http_method and url and nonce):
            msg = f"All parameters must be provided: http_method={http_method!r}, url, nonce"
            raise ValueError(msg)
        if http_method not in self._HTTP_METHODS:
            msg = f"http_method must be one of {self._HTTP_METHODS}, got {http_method!r}"
            raise ValueError(msg)
        self._http_method = http_method
        self._url = urlparse(url)
        self._nonce = nonce

    def __repr__(self) -> str:
        return f"PopAuthScheme({self._http_method!r}, {self._url.geturl()!r}, nonce='***')"
