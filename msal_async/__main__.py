"""``python -m msal_async``: the command-line interface."""

from ._cli import main

raise SystemExit(main())
