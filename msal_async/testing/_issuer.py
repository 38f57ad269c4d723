"""Token issuing for the emulator: access and ID tokens signed with its key, and their checks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .. import _clock
from ._tokens import SigningKey, b64url, new_token_id, stable_guid

__all__ = ["TokenIssuer"]

_APP_ACR = {"client_secret_post": "1", "client_secret_basic": "1", "private_key_jwt": "2"}


class TokenIssuer:
    """Issues and verifies the emulator's tokens (the base of ``AuthorityEmulator``).

    Args:
        tenant_id: the directory's GUID (``tid`` by default).
        token_lifetime: ``expires_in`` of access tokens, in seconds.
        refresh_in: ``refresh_in`` of token responses, in seconds; omitted when None.
        signing_key: the key; generated on first use when None.
        clock: seconds since the epoch; msal_async's clock (a :class:`FakeClock` while one is
            installed, else the wall clock) when None.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        token_lifetime: int,
        refresh_in: int | None,
        signing_key: SigningKey | None,
        clock: Callable[[], float] | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.token_lifetime = token_lifetime
        self.refresh_in = refresh_in
        self.clock: Callable[[], float] = clock or _clock.now
        self._signing_key = signing_key
        self._key_lock = threading.Lock()

    @property
    def signing_key(self) -> SigningKey:
        """The key that signs every token (generated on first use).

        Returns:
            The key.
        """
        with self._key_lock:
            if self._signing_key is None:
                self._signing_key = SigningKey.generate()
            return self._signing_key

    def issue_access_token(
        self,
        *,
        audience: str,
        client_id: str,
        tenant_id: str | None = None,
        user_oid: str | None = None,
        scp: str | None = None,
        roles: Iterable[str] = (),
        app_auth_method: str | None = None,
        client_capabilities: Iterable[str] = (),
        lifetime: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign a v1.0-shaped access token (as Entra issues for most resources).

        Args:
            audience: ``aud``, the resource (``api://x`` for scope ``api://x/.default``).
            client_id: the calling application (``appid``).
            tenant_id: ``tid``; this emulator's tenant when None.
            user_oid: the user's object id for a delegated token; None for an app-only token.
            scp: the delegated scopes (space-separated) for a user token.
            roles: app roles (``roles`` claim), omitted when empty.
            app_auth_method: how the client authenticated, for ``appidacr``.
            client_capabilities: echoed as ``xms_cc``.
            lifetime: seconds until ``exp``; ``token_lifetime`` when None.
            extra_claims: merged last.

        Returns:
            The JWT.
        """
        now = int(self.clock())
        tid = tenant_id or self.tenant_id
        issuer = f"https://sts.windows.net/{tid}/"
        oid = user_oid or stable_guid("service-principal", tid, client_id)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + (lifetime or self.token_lifetime),
            "aio": b64url(uuid.uuid4().bytes),
            "appid": client_id,
            "appidacr": _APP_ACR.get(app_auth_method or "", "0"),
            "idp": issuer,
            "idtyp": "user" if user_oid else "app",
            "oid": oid,
            "rh": f"0.{b64url(uuid.uuid4().bytes)}.",
            "sub": oid,
            "tid": tid,
            "uti": new_token_id(),
            "ver": "1.0",
        }
        if scp:
            claims["scp"] = scp
        if roles := list(roles):
            claims["roles"] = roles
        if capabilities := list(client_capabilities):
            claims["xms_cc"] = capabilities
        claims.update(extra_claims or {})
        return self.signing_key.sign(claims)

    def issue_id_token(
        self,
        *,
        client_id: str,
        base_url: str = "https://login.microsoftonline.com",
        tenant_id: str | None = None,
        oid: str | None = None,
        preferred_username: str | None = None,
        name: str | None = None,
        nonce: str | None = None,
        lifetime: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign a v2.0 ID token for a user signing in to ``client_id``.

        Args:
            client_id: ``aud``.
            base_url: the authority host the client used; ``iss`` is ``{base_url}/{tid}/v2.0``.
            tenant_id: ``tid``; this emulator's tenant when None.
            oid: the user's object id; a stable one derived from ``preferred_username``
                when None.
            preferred_username: the sign-in name (``alice@contoso.onmicrosoft.com``).
            name: the display name.
            nonce: echoed when the authorization request sent one.
            lifetime: seconds until ``exp``; 3600 when None.
            extra_claims: merged last.

        Returns:
            The JWT.
        """
        now = int(self.clock())
        tid = tenant_id or self.tenant_id
        oid = oid or stable_guid("user", tid, preferred_username or "")
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": f"{base_url}/{tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + (lifetime or 3600),
            "oid": oid,
            "rh": f"0.{b64url(uuid.uuid4().bytes)}.",
            "sub": b64url(uuid.UUID(stable_guid("pairwise", oid, client_id)).bytes),
            "tid": tid,
            "uti": new_token_id(),
            "ver": "2.0",
        }
        optional = {"name": name, "preferred_username": preferred_username, "nonce": nonce}
        claims.update({key: value for key, value in optional.items() if value is not None})
        claims.update(extra_claims or {})
        return self.signing_key.sign(claims)

    def token_response(self, access_token: str, **extra: Any) -> dict[str, Any]:
        """The JSON body of a successful token answer.

        Args:
            access_token: the token.
            extra: more members (``refresh_token``, ``id_token``, ``client_info``, ``scope``).

        Returns:
            ``token_type``, ``expires_in``, ``ext_expires_in`` (and ``refresh_in`` when
            configured), ``access_token`` and ``extra``.
        """
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
        }
        if self.refresh_in is not None:
            body["refresh_in"] = self.refresh_in
        body["access_token"] = access_token
        body.update(extra)
        return body

    def decode(self, token: str) -> dict[str, Any]:
        """Verify a token this emulator issued (signature, ``kid``, ``exp``/``nbf``).

        Args:
            token: the JWT.

        Returns:
            Its claims.

        Raises:
            ValueError: a token signed by another key.
            joserfc.errors.JoseError: a bad signature, a malformed or an expired token.
        """
        return self.signing_key.verify(token, now=int(self.clock()))

    def jwks(self, *, issuer: str | None = None) -> dict[str, Any]:
        """The JSON Web Key Set that verifies this emulator's tokens.

        Args:
            issuer: Entra's ``issuer`` member on each key; omitted when None.

        Returns:
            ``{"keys": [...]}``.
        """
        extra = {} if issuer is None else {"issuer": issuer}
        return {"keys": [self.signing_key.public_jwk(**extra)]}
