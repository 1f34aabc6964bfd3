"""``jobwire dashboard``: the web dashboard on a port of its own (needs ``jobwire[dashboard]``).

::

    jobwire dashboard [--url URL] [--prefix P] [--host 127.0.0.1] [--port 8000]
                      [--read-only] [--token TOKEN]

Without ``--token`` (or ``JOBWIRE_DASHBOARD_TOKEN``) a token is made up and printed in the
login link; ``--read-only`` without a token serves loopback only.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import sys
from typing import Any

from jobwire import defaults

__all__ = ["TOKEN_ENV", "add_parser", "run"]

#: The environment variable a token may come from (instead of ``--token``).
TOKEN_ENV = "JOBWIRE_DASHBOARD_TOKEN"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dashboard`` command to the ``jobwire`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dashboard", help="the web dashboard (needs jobwire[dashboard])"
    )
    parser.add_argument(
        "--url",
        default=defaults.redis_url(),
        help=f"Redis URL (default: $REDIS_URL or {defaults.URL})",
    )
    parser.add_argument("--prefix", default=defaults.PREFIX)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--read-only", action="store_true", help="no actions; without a token, loopback only"
    )
    parser.add_argument(
        "--token", help=f"the access token (default: ${TOKEN_ENV}, else a new random one)"
    )
    return parser


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted; return the exit status (2: bad input)."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.read_only and token is None and not _loopback(args.host):
        print(
            f"jobwire: a read-only dashboard without a token serves loopback only; pass "
            f"--token (or set {TOKEN_ENV}) to listen on {args.host}",
            file=sys.stderr,
        )
        return 2
    if token is None and not args.read_only:
        token = secrets.token_urlsafe(24)
    try:
        import uvicorn

        import jobwire
        from jobwire.dashboard import create_app
    except ImportError as exc:
        print(f"jobwire: {exc}; pip install 'jobwire[dashboard]'", file=sys.stderr)
        return 2
    client = jobwire.AsyncClient.from_url(args.url, prefix=args.prefix)
    app = create_app(client, read_only=args.read_only, token=token)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    login = f"/?token={token}" if token and not (args.token or os.environ.get(TOKEN_ENV)) else "/"
    print(f"jobwire dashboard on http://{shown}:{args.port}{login}", flush=True)
    if token and login == "/":
        print("(sign in with the token you gave: /?token=TOKEN, or as the basic-auth password)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
