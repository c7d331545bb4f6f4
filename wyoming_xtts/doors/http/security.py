"""Who may use the HTTP door: an optional token, no cross-site requests, strict page headers.

- `--http-token`: every request carries it, as `Authorization: Bearer TOKEN` (programs) or as
  the session cookie the studio's login form sets (browsers). The page itself and its login
  form are the only things served without it.
- Cross-site requests are refused whatever the token: a browser says where a request comes
  from (`Sec-Fetch-Site`, or `Origin` in older browsers), so another site's page cannot make
  a visitor's browser create, change or delete voices, or speak, here. Programs that send
  neither header (curl, the OpenAI client) are not browsers and are let through.
- JSON endpoints demand `Content-Type: application/json`, which a cross-site form cannot send
  without a CORS preflight this server never approves.
"""

import asyncio
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from .problems import HttpCode, HttpProblem

_SESSION_COOKIE = "wyoming_xtts_session"
_INGRESS_PATH = "X-Ingress-Path"
_FETCH_SITE = "Sec-Fetch-Site"
_FETCH_MODE = "Sec-Fetch-Mode"
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./-]*$")
_FAILED_LOGIN_DELAY_S = 1.0
_PUBLIC_PATHS = frozenset({"/", "/login", "/static/login.js", "/static/studio.css", "/health"})
"""Served without the token: the page answers with the login form until the cookie is set;
`health` tells only whether the server can speak (the Supervisor's watchdog has no token)."""

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ingress_path(request: web.Request) -> str:
    """The path prefix Home Assistant's ingress serves us under ('' when not behind it)."""
    prefix = request.headers.get(_INGRESS_PATH, "").rstrip("/")
    return prefix if _SAFE_PATH.match(prefix + "/") else ""


class Guard:
    """The checks every request passes before its handler runs."""

    def __init__(self, token: str | None) -> None:
        self._token = token
        self._session = (
            hmac.new(token.encode(), b"wyoming-xtts studio session", hashlib.sha256).hexdigest()
            if token
            else None
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuses cross-site and unauthenticated requests; adds the page's safety headers."""
        try:
            _refuse_cross_site(request)
            if not self.authenticated(request) and request.path not in _PUBLIC_PATHS:
                raise HttpProblem(
                    HttpCode.UNAUTHORIZED,
                    "This server asks for its token: send `Authorization: Bearer <token>` "
                    "(the --http-token value), or log in on the studio page.",
                )
            response = await handler(request)
        except HttpProblem as problem:
            response = problem.response()
            if problem.code == HttpCode.UNAUTHORIZED:
                response.headers["WWW-Authenticate"] = "Bearer"
        if not response.prepared:
            response.headers.update(_PAGE_HEADERS)
        return response

    def authenticated(self, request: web.Request) -> bool:
        """True when no token is asked for, or the request carries it."""
        if self._token is None or self._session is None:
            return True
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), self._token.encode()
        ):
            return True
        cookie = request.cookies.get(_SESSION_COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self._session.encode())

    async def login(self, request: web.Request) -> web.Response:
        """`POST login` (the login form): sets the session cookie, back to the page."""
        form = await request.post()
        presented = str(form.get("token", ""))
        if self._token is None or self._session is None:
            raise web.HTTPSeeOther("./")
        if not hmac.compare_digest(presented.encode(), self._token.encode()):
            await asyncio.sleep(_FAILED_LOGIN_DELAY_S)  # guessing costs time
            raise web.HTTPSeeOther("./?failed=1")
        response = web.HTTPSeeOther("./")
        response.set_cookie(
            _SESSION_COOKIE,
            self._session,
            path=ingress_path(request) + "/",
            httponly=True,
            samesite="Strict",
        )
        raise response


def _refuse_cross_site(request: web.Request) -> None:
    site = request.headers.get(_FETCH_SITE)
    if site is not None:
        if site in ("same-origin", "none"):
            return
        # Following a link to the page from elsewhere is fine; anything else is not.
        navigation = request.method == "GET" and request.headers.get(_FETCH_MODE) == "navigate"
        if navigation and request.path in ("/", "/login"):
            return
        raise HttpProblem(
            HttpCode.CROSS_SITE,
            f"Refused a request another site's page made ({_FETCH_SITE}: {site[:20]}).",
        )
    origin = request.headers.get("Origin")
    if origin is None or request.method in ("GET", "HEAD"):
        return
    host = request.headers.get("X-Forwarded-Host", request.host)
    if origin.split("://", 1)[-1] != host:
        raise HttpProblem(
            HttpCode.CROSS_SITE,
            f"Refused a request another site's page made (Origin {origin[:80]}).",
        )
