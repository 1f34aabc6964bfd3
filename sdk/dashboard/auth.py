"""Who may see the dashboard and who may change things: the token, loopback, CSRF.

* **With a token** every page needs it: once through the login link
  (``/?token=...``, which sets a session cookie and drops the token from the address), or
  on every request as HTTP basic auth (any user name, the token as the password) or an
  ``Authorization: Bearer`` header.
* **Without a token** the dashboard must be read-only, and answers loopback clients only.
* **Every POST** (the actions) needs the session's CSRF token in the form, and, when the
  browser sends an ``Origin``, one of this host. Session cookies are ``SameSite=Strict``
  and ``HttpOnly``, signed with a key derived from the token.
* Every response forbids framing and inline scripts (``Content-Security-Policy``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Policy", "SecurityHeaders", "csrf_token", "session_secret"]

Endpoint = Callable[[Request], Awaitable[Response]]

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on POSTs
    (b"referrer-policy", b"same-origin"),
]


def session_secret(token: str | None) -> str:
    """The key that signs session cookies: derived from the token (random without one)."""
    if token is None:
        return secrets.token_hex(32)
    return hmac.new(token.encode(), b"jobwire dashboard session", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class Policy:
    """The access rules of one dashboard (see the module documentation)."""

    token: str | None
    read_only: bool

    def _token_ok(self, given: str | None) -> bool:
        return (
            self.token is not None
            and given is not None
            and hmac.compare_digest(given.encode(), self.token.encode())
        )

    def _header_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return self._token_ok(value.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self._token_ok(decoded.partition(":")[2])
        return False

    def _denied(self, request: Request) -> Response | None:
        """None when the request may see the dashboard, else the answer that refuses it."""
        if self.token is None:
            if _is_loopback(request.client.host if request.client else None):
                return None
            return PlainTextResponse(
                "this read-only dashboard has no token: it answers loopback clients only",
                status_code=403,
            )
        if request.session.get("auth") is True or self._header_ok(request):
            return None
        given = request.query_params.get("token")
        if request.method == "GET" and self._token_ok(given):
            request.session["auth"] = True
            query = urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            )
            url = request.url.replace(query=query)
            return RedirectResponse(url.path + (f"?{query}" if query else ""), status_code=303)
        return PlainTextResponse(
            "jobwire dashboard: open the link with the token printed at startup, or sign in "
            "with any user name and the token as the password",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="jobwire dashboard", charset="UTF-8"'},
        )

    async def _action_denied(self, request: Request) -> Response | None:
        if self.read_only:
            return PlainTextResponse("this dashboard is read-only", status_code=403)
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            return PlainTextResponse("cross-origin request refused", status_code=403)
        form = await request.form()
        given = form.get("csrf")
        expected = request.session.get("csrf")
        if not (
            isinstance(given, str)
            and isinstance(expected, str)
            and expected
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            return PlainTextResponse(
                "missing or wrong CSRF token: reload the page and try again", status_code=403
            )
        return None

    def page(self, endpoint: Endpoint) -> Endpoint:
        """Guard a page (GET): authentication only."""

        async def guarded(request: Request) -> Response:
            return self._denied(request) or await endpoint(request)

        return guarded

    def action(self, endpoint: Endpoint) -> Endpoint:
        """Guard an action (POST): authentication, not read-only, the CSRF token."""

        async def guarded(request: Request) -> Response:
            denied = self._denied(request) or await self._action_denied(request)
            return denied or await endpoint(request)

        return guarded


class SecurityHeaders:
    """ASGI middleware adding the security headers above to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``scope``, adding the headers to its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
