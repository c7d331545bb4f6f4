"""A stand-in for Home Assistant's ingress: the studio served under a prefix it never chose.

Home Assistant serves an add-on's web page at `/api/hassio_ingress/<token>/...` on its own
origin, forwarding each request (through the Supervisor) to the add-on's `/...` with the prefix
cut off and named in `X-Ingress-Path`; the browser's own headers, `Host` included, pass through. Redirects and bodies pass through untouched (a `Location` is
not rewritten), so a page that uses an absolute URL anywhere breaks here as it would there.
"""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from yarl import URL

from .net import free_port

# Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus the
# ones the proxy sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


@asynccontextmanager
async def ingress_proxy(upstream: str) -> AsyncIterator[str]:
    """Serve `upstream` (`http://127.0.0.1:PORT/`) under an ingress prefix on a port of its own
    on 127.0.0.1 while the block runs; yields the proxied base URL (ending in `/`)."""
    token = secrets.token_urlsafe(24)
    prefix = f"/api/hassio_ingress/{token}"
    session = aiohttp.ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != token:
            raise web.HTTPNotFound()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        # As Home Assistant does: the browser's Host passes through, and is named again.
        headers["X-Ingress-Path"] = prefix
        headers["X-Forwarded-For"] = request.remote or "127.0.0.1"
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        # The path and query exactly as sent (still percent-encoded), less the prefix.
        url = URL(upstream.rstrip("/") + request.raw_path[len(prefix) :], encoded=True)
        async with session.request(
            request.method,
            url,
            headers=headers,
            data=await request.read() if request.body_exists else None,
            allow_redirects=False,
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            for name, value in answer.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            if answer.headers.get("Content-Length") is not None:
                response.content_length = int(answer.headers["Content-Length"])
            await response.prepare(request)
            try:
                # Streamed on as it arrives: speech starts playing before it is all spoken.
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the browser stopped listening (a media element often does)
            return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/api/hassio_ingress/{token}/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}{prefix}/"
    finally:
        await runner.cleanup()
        await session.close()
