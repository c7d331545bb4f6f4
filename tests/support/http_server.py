"""A live server with both front doors for tests: HTTP (studio, OpenAI endpoint) and Wyoming."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from wyoming.server import AsyncTcpServer

from wyoming_xtts.core.settings import Settings
from wyoming_xtts.doors.http.server import serving_http
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core

from ..conftest import DETECTOR, RecordingEngine
from .clips import write_profile
from .net import free_port


@dataclass
class HttpUnderTest:
    """Where the doors of a test server are."""

    base_url: str
    """The studio page, e.g. `http://127.0.0.1:PORT/`."""

    voices_dir: Path
    """The server's voices directory (writable)."""

    wyoming_port: int
    """The Wyoming door of the same process."""

    data_dir: Path
    """The server's data directory."""


@asynccontextmanager
async def http_serving(
    engine: RecordingEngine,
    tmp_path: Path,
    *,
    token: str | None = None,
    voices: bool = True,
    **settings: object,
) -> AsyncIterator[HttpUnderTest]:
    """Both doors around the shared engine; with `voices`, one usable profile `alice`."""
    voices_dir = tmp_path / "voices"
    voices_dir.mkdir(parents=True, exist_ok=True)
    if voices:
        write_profile(voices_dir, "alice", 'description = "Alice"\nlanguages = ["en"]\n')
    wyoming_port = free_port()
    config = replace(
        Settings(
            voices_dir=voices_dir,
            data_dir=tmp_path / "data",
            uri=f"tcp://127.0.0.1:{wyoming_port}",
            http="tcp://127.0.0.1:0",
            http_token=token,
        ),
        **settings,
    )
    core = build_core(config, engine, DETECTOR)  # type: ignore[arg-type]
    wyoming = AsyncTcpServer("127.0.0.1", wyoming_port)
    await wyoming.start(handler_factory(core, config))
    try:
        async with serving_http(core, config) as http_port:
            yield HttpUnderTest(
                base_url=f"http://127.0.0.1:{http_port}/",
                voices_dir=voices_dir,
                wyoming_port=wyoming_port,
                data_dir=config.data_dir,
            )
    finally:
        await wyoming.stop()
