"""``msal-async serve-authority``: the authority emulator on 127.0.0.1, for local development."""

from __future__ import annotations

import argparse
from typing import Any

from .common import CliError, require

__all__ = ["add_parser", "banner"]


def add_parser(commands: Any) -> None:
    """Register ``serve-authority``.

    Args:
        commands: the subparsers action.
    """
    serve = commands.add_parser(
        "serve-authority",
        help="serve the authority emulator on 127.0.0.1 (needs the testing extra)",
        description="Serve the authority emulator (a local Microsoft Entra look-alike) until "
        "Ctrl-C or SIGTERM. It prints the URL, tenant, client id and secret, the CA file "
        "(with --tls) and a constructor snippet to paste. GET /_emulator/stats answers the "
        "request counts as JSON.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8443, help="the port (default 8443; 0 picks a free one)"
    )
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a throwaway CA (its file is printed and removed on exit)",
    )
    serve.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before answering every request (default 0)",
    )
    serve.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.latency < 0:
        msg = "--latency cannot be negative"
        raise CliError(msg)
    if not 0 <= args.port <= 65535:
        msg = f"--port {args.port} is not a port number"
        raise CliError(msg)
    require("uvicorn", "testing", "msal-async serve-authority")
    from ..testing import AuthorityEmulator, run

    try:
        run(
            AuthorityEmulator(latency=args.latency),
            host=args.host,
            port=args.port,
            tls=args.tls,
            banner=banner,
        )
    except OSError as failure:
        msg = f"cannot listen on {args.host}:{args.port}: {failure.strerror or failure}"
        raise CliError(msg) from None
    return 0


def banner(base_url: str, tls: Any) -> str:
    """What ``serve-authority`` prints once listening.

    Args:
        base_url: ``scheme://host:port``.
        tls: the TLS files, or None for plain HTTP.

    Returns:
        The text: settings, a constructor snippet, and the environment for the recipes.
    """
    from ..testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, STATS_PATH

    authority = f"{base_url}/{DEMO_TENANT_ID}"
    ca_file = str(tls.ca_file) if tls is not None else None
    lines = [
        f"Authority emulator listening on {base_url}",
        f"  tenant         : {DEMO_TENANT_ID}",
        f"  client id      : {DEMO_CLIENT_ID}",
        f"  client secret  : {DEMO_CLIENT_SECRET}  (only good against this emulator)",
        f"  authority      : {authority}",
    ]
    if ca_file is not None:
        lines.append(f"  CA certificate : {ca_file}  (pass as verify=)")
    lines += [
        f"  request counts : {base_url}{STATS_PATH}",
        "",
        "Paste into Python:",
        "",
        "    from msal_async import ConfidentialClientApplication",
        "",
        "    app = ConfidentialClientApplication(",
        f'        "{DEMO_CLIENT_ID}",',
        f'        client_credential="{DEMO_CLIENT_SECRET}",',
        f'        authority="{authority}",',
        "        instance_discovery=False,  # a local authority: no lookup at Microsoft",
    ]
    if ca_file is not None:
        lines.append(f'        verify="{ca_file}",  # the emulator\'s throwaway CA')
    lines += [
        "    )",
        "",
        "Or set the environment of the examples/ recipes and `msal-async token`:",
        "",
        f"    export AZURE_AUTHORITY_HOST={base_url}",
        f"    export AZURE_TENANT_ID={DEMO_TENANT_ID}",
        f"    export AZURE_CLIENT_ID={DEMO_CLIENT_ID}",
        f"    export AZURE_CLIENT_SECRET='{DEMO_CLIENT_SECRET}'",
    ]
    if ca_file is not None:
        lines.append(f"    export MSAL_ASYNC_CA_FILE={ca_file}")
    lines += ["", "Stop with Ctrl-C.", ""]
    return "\n".join(lines)
