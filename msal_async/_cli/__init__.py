"""``msal-async``: the command line (demo, token, serve-authority, cache)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._version import __version__
from . import cache, demo, serve, token
from .common import CliError

__all__ = ["main"]

_DESCRIPTION = """\
msal-async: Microsoft identity tokens from the command line, and a local authority for tests.

  msal-async token ...            print an access token for scripts (like az account get-access-token)
  msal-async serve-authority ...  serve the authority emulator on 127.0.0.1 for local development
  msal-async cache list|remove    inspect or clear a token cache file
  msal-async demo                 a tour against the embedded emulator (nothing leaves this machine)

Exit status: 0 success; 1 the authority refused (or no signed-in account); 2 a usage error or a
missing extra; 3 the authority could not be reached; 130 interrupted.
"""

_COMMANDS = (token, serve, cache, demo)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msal-async",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"msal-async {__version__}", help="show the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``msal-async`` command line.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).

    Returns:
        The process exit status (see ``msal-async --help``).
    """
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except CliError as failure:
        print(f"msal-async {args.command}: {failure}", file=sys.stderr)
        return failure.status
    except KeyboardInterrupt:
        print(f"msal-async {args.command}: interrupted", file=sys.stderr)
        return 130
    return status
