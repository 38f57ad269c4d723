"""``msal-async token``: print an access token for scripts (as ``az account get-access-token``)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from .. import (
    ClientApplication,
    ConfidentialClientApplication,
    FilePersistence,
    ManagedIdentityClient,
    MsalTransportError,
    PersistedTokenCache,
    PublicClientApplication,
    SystemAssignedManagedIdentity,
    UserAssignedManagedIdentity,
    _token_source,
)
from .common import AUTH_FAILED, UNREACHABLE, USAGE, CliError

__all__ = ["DEFAULT_AUTHORITY_HOST", "Settings", "add_parser", "settings_from"]

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
#: Where ``--device-code`` keeps its tokens unless ``--cache`` says otherwise.
DEFAULT_USER_CACHE = "~/.cache/msal-async/token_cache.json"
_RESULT_FIELDS = ("token_type", "expires_in", "token_source", "scope", "refresh_on")


def add_parser(commands: Any) -> None:
    """Register ``token``.

    Args:
        commands: the subparsers action.
    """
    token = commands.add_parser(
        "token",
        help="print an access token (client secret, certificate, managed identity or device code)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Print an access token for SCOPE on standard output (or, with --json, the result without
refresh or ID tokens). Secrets are never taken on the command line.

  app + secret   AZURE_CLIENT_ID, AZURE_TENANT_ID and the secret in AZURE_CLIENT_SECRET
  certificate    --certificate key-and-cert.pem (or .pfx with --certificate-password-env)
  managed id.    --managed-identity [--client-id ID for a user-assigned one]
  a user         --device-code: sign in once; the next runs are silent (file cache)

examples:
  TOKEN=$(msal-async token --scope https://graph.microsoft.com/.default)
  msal-async token --device-code --client-id ID --tenant organizations --scope User.Read --json
""",
    )
    token.add_argument(
        "--scope",
        action="append",
        required=True,
        help="a scope to ask for (repeatable), e.g. https://graph.microsoft.com/.default",
    )
    how = token.add_mutually_exclusive_group()
    how.add_argument(
        "--certificate",
        metavar="FILE",
        help="authenticate the app with a PEM file (private key and certificate) or a PFX",
    )
    how.add_argument(
        "--managed-identity",
        action="store_true",
        help="use the managed identity of this Azure host (system-assigned unless --client-id)",
    )
    how.add_argument(
        "--device-code",
        action="store_true",
        help="sign a user in with a code shown on standard error (a public client app)",
    )
    token.add_argument(
        "--client-id", help="the application (client) id (default: $AZURE_CLIENT_ID)"
    )
    token.add_argument("--tenant", help="the tenant id or domain (default: $AZURE_TENANT_ID)")
    token.add_argument(
        "--authority-host",
        metavar="URL",
        help="the authority host (default: $AZURE_AUTHORITY_HOST, else "
        f"{DEFAULT_AUTHORITY_HOST}); another host is trusted as given (no instance discovery)",
    )
    token.add_argument(
        "--secret-env",
        metavar="NAME",
        default="AZURE_CLIENT_SECRET",
        help="the environment variable holding the client secret (default AZURE_CLIENT_SECRET)",
    )
    token.add_argument(
        "--certificate-password-env",
        metavar="NAME",
        help="the environment variable holding the certificate's password, if it has one",
    )
    token.add_argument(
        "--ca-file",
        metavar="FILE",
        help="a CA bundle to verify the authority with (default: $MSAL_ASYNC_CA_FILE), e.g. "
        "the one serve-authority --tls prints",
    )
    token.add_argument(
        "--cache",
        metavar="FILE",
        help=f"a token cache file (default for --device-code: {DEFAULT_USER_CACHE}; none else)",
    )
    token.add_argument(
        "--username", help="with --device-code: which cached account to use when there are several"
    )
    token.add_argument(
        "--json", action="store_true", help="print the result as JSON (no refresh or ID token)"
    )
    token.set_defaults(run=_run)


@dataclass(frozen=True)
class Settings:
    """What ``msal-async token`` was asked for, resolved from options and environment."""

    mode: str  # "secret", "certificate", "managed_identity" or "device_code"
    scopes: tuple[str, ...]
    client_id: str | None
    authority: str | None
    instance_discovery: bool | None
    credential: Any
    ca_file: str | None
    cache: str | None
    username: str | None
    as_json: bool


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Resolve the options and environment variables into settings.

    Args:
        args: the parsed options.
        environ: the environment.

    Returns:
        The settings.

    Raises:
        CliError: a missing client id, tenant or secret, or an unreadable certificate.
    """
    mode = (
        "certificate"
        if args.certificate
        else "managed_identity"
        if args.managed_identity
        else "device_code"
        if args.device_code
        else "secret"
    )
    client_id = args.client_id or environ.get("AZURE_CLIENT_ID") or None
    ca_file = args.ca_file or environ.get("MSAL_ASYNC_CA_FILE") or None
    cache = args.cache or (DEFAULT_USER_CACHE if mode == "device_code" else None)
    common = {
        "scopes": tuple(args.scope),
        "ca_file": ca_file,
        "cache": cache,
        "username": args.username,
        "as_json": bool(args.json),
    }
    if mode == "managed_identity":
        return Settings(
            mode,
            client_id=client_id,
            authority=None,
            instance_discovery=None,
            credential=None,
            **common,
        )
    if not client_id:
        msg = "no client id: pass --client-id or set AZURE_CLIENT_ID"
        raise CliError(msg)
    tenant = args.tenant or environ.get("AZURE_TENANT_ID")
    if not tenant:
        if mode != "device_code":
            msg = "no tenant: pass --tenant or set AZURE_TENANT_ID"
            raise CliError(msg)
        tenant = "organizations"
    host = (args.authority_host or environ.get("AZURE_AUTHORITY_HOST") or "").rstrip("/")
    if host and "://" not in host:
        host = f"https://{host}"  # azure-identity also takes a bare host name
    custom = bool(host) and host.lower() != DEFAULT_AUTHORITY_HOST
    authority = f"{host or DEFAULT_AUTHORITY_HOST}/{tenant}"
    credential = _credential(mode, args, environ)
    return Settings(
        mode,
        client_id=client_id,
        authority=authority,
        instance_discovery=False if custom else None,
        credential=credential,
        **common,
    )


def _credential(mode: str, args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    if mode == "device_code":
        return None
    if mode == "secret":
        secret = environ.get(args.secret_env)
        if not secret:
            msg = (
                f"no client secret in ${args.secret_env}: set it, or use --certificate, "
                "--managed-identity or --device-code"
            )
            raise CliError(msg)
        return secret
    password = environ.get(args.certificate_password_env) if args.certificate_password_env else None
    path = os.path.expanduser(args.certificate)
    if path.lower().endswith((".pfx", ".p12")):
        return {"private_key_pfx_path": path, "passphrase": password}
    return _pem_credential(path, password)


def _pem_credential(path: str, password: str | None) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as failure:
        msg = f"cannot read --certificate {path}: {failure.strerror}"
        raise CliError(msg) from None
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        serialization.load_pem_private_key(pem, password.encode() if password else None)
    except (ValueError, TypeError):
        msg = (
            f"--certificate {path} must hold a PEM private key and its certificate (a wrong "
            "or missing --certificate-password-env is reported so too)"
        )
        raise CliError(msg) from None
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()  # noqa: S324 (the certificate's SHA-1 thumbprint, an identifier)
    credential: dict[str, Any] = {"private_key": pem.decode(), "thumbprint": thumbprint}
    if password:
        credential["passphrase"] = password
    return credential


def _run(args: argparse.Namespace) -> int:
    settings = settings_from(args, os.environ)
    result: dict[str, Any] = anyio.run(_acquire, settings)
    if "access_token" not in result:
        # Entra's descriptions span lines (trace id, timestamp): one line for a terminal
        raise CliError(" ".join(_token_source.describe_error(result).split()), AUTH_FAILED)
    if settings.as_json:
        shown = {"access_token": result["access_token"]}
        shown.update({k: result[k] for k in _RESULT_FIELDS if k in result})
        shown["expires_on"] = int(time.time()) + int(result.get("expires_in", 0))
        print(json.dumps(shown, indent=2))
    else:
        print(result["access_token"])
    return 0


async def _acquire(settings: Settings) -> dict[str, Any]:
    try:
        async with _app(settings) as app:
            return await _token(app, settings)
    except MsalTransportError as failure:
        msg = f"could not reach the authority: {failure}"
        raise CliError(msg, UNREACHABLE) from None
    except ValueError as failure:  # a bad scope, or a credential file the app cannot use
        raise CliError(str(failure), USAGE) from None


@contextlib.asynccontextmanager
async def _app(settings: Settings) -> AsyncIterator[ClientApplication | ManagedIdentityClient]:
    verify: Any = settings.ca_file or True
    cache = PersistedTokenCache(FilePersistence(settings.cache)) if settings.cache else None
    if settings.mode == "managed_identity":
        async with httpx.AsyncClient(verify=_context(verify)) as http:
            identity = (
                UserAssignedManagedIdentity(client_id=settings.client_id)
                if settings.client_id
                else SystemAssignedManagedIdentity()
            )
            yield ManagedIdentityClient(identity, http_client=http, token_cache=cache)
        return
    options: dict[str, Any] = {
        "authority": settings.authority,
        "instance_discovery": settings.instance_discovery,
        "verify": verify,
        "token_cache": cache,
    }
    app: ClientApplication
    if settings.mode == "device_code":
        app = PublicClientApplication(str(settings.client_id), **options)
    else:
        app = ConfidentialClientApplication(
            str(settings.client_id), client_credential=settings.credential, **options
        )
    async with app:
        yield app


def _context(verify: Any) -> Any:
    if isinstance(verify, str):
        import ssl

        return ssl.create_default_context(cafile=verify)
    return verify


async def _token(
    app: ClientApplication | ManagedIdentityClient, settings: Settings
) -> dict[str, Any]:
    if settings.mode != "device_code" or not isinstance(app, PublicClientApplication):
        return await _token_source.acquire(app, settings.scopes, account=None)
    accounts = await app.get_accounts(username=settings.username)
    if len(accounts) == 1:
        found = await app.acquire_token_silent_with_error(list(settings.scopes), accounts[0])
        if found and "access_token" in found:
            return dict(found)
    elif len(accounts) > 1:
        names = ", ".join(sorted(str(a.get("username")) for a in accounts))
        msg = f"several accounts are signed in ({names}): pick one with --username"
        raise CliError(msg)
    flow = await app.initiate_device_flow(list(settings.scopes))
    if "user_code" not in flow:
        return dict(flow)
    print(flow["message"], file=sys.stderr, flush=True)
    return dict(await app.acquire_token_by_device_flow(flow))
