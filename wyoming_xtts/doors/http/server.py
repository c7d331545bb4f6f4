"""Running the HTTP front door beside the Wyoming one, in the same process and event loop."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from ...core.service import Core
from ...core.settings import Settings
from .app import HttpDoorSettings, build_app

_LOGGER = logging.getLogger(__name__)


def door_settings(settings: Settings) -> HttpDoorSettings:
    """The HTTP door's settings, from the server's."""
    return HttpDoorSettings(
        token=settings.http_token,
        max_text_chars=settings.max_text_chars,
        uploads_dir=settings.data_dir / "studio-uploads",
    )


@asynccontextmanager
async def serving_http(core: Core, settings: Settings) -> AsyncIterator[int]:
    """Serve HTTP at `settings.http` (`tcp://HOST:PORT`) while the block runs; yields the port
    (the one the system chose when PORT is 0)."""
    assert settings.http is not None
    host, _, port = settings.http.removeprefix("tcp://").rpartition(":")
    runner = web.AppRunner(
        build_app(core, door_settings(settings)),
        access_log=None,
        # On stopping, responses in flight get the same grace as Wyoming's replies; a body
        # still streaming after it is broken off (never a shorter file that looks whole).
        shutdown_timeout=settings.shutdown_grace,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host or None, int(port)).start()
        bound = int(runner.addresses[0][1])
        _LOGGER.info("Voice studio and OpenAI speech endpoint on http://%s:%d/", host, bound)
        yield bound
    finally:
        await runner.cleanup()


async def serve_http(core: Core, settings: Settings, stop: asyncio.Event) -> None:
    """Serve HTTP at `settings.http` until `stop` is set, then let responses in flight finish
    within `settings.shutdown_grace`."""
    async with serving_http(core, settings):
        await stop.wait()
