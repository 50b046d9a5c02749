"""What keeps the review server safe to run beside a browser that also visits the open web.

- Security headers on every response: a Content-Security-Policy that allows only this server's own
  script and style files (rollout text is untrusted model output: should anything slip through escaping,
  it cannot run), ``nosniff``, ``no-referrer``, no framing.
- Host check on loopback binds: a DNS-rebinding page on another name cannot talk to us.
- Access token (required off loopback): ``?token=`` once, then a cookie; or an ``Authorization: Bearer``
  or ``X-Rollforge-Token`` header.
- CSRF: a random session id in a cookie; the form token is an HMAC of it under a per-process secret, so a
  cookie planted by another app on localhost (cookies ignore ports) cannot be paired with a valid token.
  Unsafe methods must also come from our own origin when the browser says where they come from
  (``Sec-Fetch-Site``, ``Origin``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve anywhere


@dataclass(slots=True)
class Guard:
    """Per-server security settings. Cookie names carry the port: two servers on localhost would
    otherwise overwrite each other's cookies."""

    port: int
    token: str | None = None
    loopback: bool = True
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def session_cookie(self) -> str:
        return f"rf_session_{self.port}"

    @property
    def token_cookie(self) -> str:
        return f"rf_token_{self.port}"

    def csrf_token(self, session: str) -> str:
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, submitted: Any) -> bool:
        session = request.scope.get("state", {}).get("session", "")
        return (
            isinstance(submitted, str)
            and bool(session)
            and hmac.compare_digest(submitted, self.csrf_token(session))
        )

    def _token_ok(self, candidate: str | None) -> bool:
        assert self.token is not None
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.token.encode())

    def refusal(self, request: Request) -> Response | None:
        """A response refusing the request, or None to let it through."""
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if self.loopback and not is_loopback(host):
            return PlainTextResponse(
                "refused: unexpected Host header (this server answers localhost only)", 421
            )
        if self.token is not None:
            auth = request.headers.get("authorization", "")
            given = (
                request.headers.get("x-rollforge-token")
                or (auth[7:] if auth.lower().startswith("bearer ") else None)
                or request.cookies.get(self.token_cookie)
            )
            query = request.query_params.get("token")
            if query is not None and self._token_ok(query):
                return self._drop_token_from_url(request, query)
            if not self._token_ok(given):
                return PlainTextResponse(
                    "this review server needs its access token: open the URL it printed at start "
                    "(…/?token=…), or send an 'Authorization: Bearer TOKEN' header",
                    401,
                )
        if request.method not in SAFE_METHODS and not self._same_origin(request):
            return PlainTextResponse("refused: cross-origin request", 403)
        return None

    def _same_origin(self, request: Request) -> bool:
        """Fetch metadata first (browsers send it whatever the referrer policy); then Origin. Under
        ``Referrer-Policy: no-referrer`` a same-origin form POST carries ``Origin: null``, so null proves
        nothing either way: the CSRF token decides."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return True
        parts = urlsplit(origin)
        return (
            f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.headers.get('host', '')}"
        )

    def _drop_token_from_url(self, request: Request, token: str) -> Response:
        """Trade the token in the URL for a cookie, so it leaves the address bar and the history."""
        rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), 303)
        response.set_cookie(self.token_cookie, token, httponly=True, samesite="strict")
        return response


class GuardMiddleware:
    """ASGI middleware: refusals, the session cookie, and the security headers on every response."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self.guard.refusal(request)
        if refusal is not None:
            self._add_headers(refusal.headers, "")
            await refusal(scope, receive, send)
            return
        session = request.cookies.get(self.guard.session_cookie, "")
        new_session = None
        if len(session) != 43:  # token_urlsafe(32); anything else is not one of ours
            session = new_session = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["session"] = session

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                self._add_headers(headers, scope["path"])
                if new_session is not None:
                    headers.append(
                        "set-cookie",
                        f"{self.guard.session_cookie}={new_session}; HttpOnly; SameSite=Strict; Path=/",
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _add_headers(headers: MutableHeaders, path: str) -> None:
        for name, value in HEADERS.items():
            headers[name] = value
        if not path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"  # labels change: never show a stale page from cache
