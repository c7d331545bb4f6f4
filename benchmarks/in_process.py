"""A wyoming-xtts server inside the benchmark's own process, and a timed Wyoming request.

The benchmarks that compare two ways through the same server (cache or model, HTTP or
Wyoming, shared or separate syntheses) need the real server over the local engine, one
voice profile, and the clock on the client's side: this is that, once.
"""

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wyoming.event import async_read_event, async_write_event
from wyoming.server import AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.support.clips import write_profile
from tests.support.net import free_port
from tests.support.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.core.service import Core
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core, create_engine

VOICE = "oma"
"""The one voice profile the server has."""


@dataclass(frozen=True)
class InProcessServer:
    """A running server: its core, settings and Wyoming port."""

    core: Core
    """What its front doors share (an HTTP door can be opened on it)."""

    settings: Settings
    """What it was started with."""

    port: int
    """Its Wyoming port on 127.0.0.1."""

    data_dir: Path
    """Its data directory (latents, audio cache)."""


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """`--model-dir`, `--full-size`, `--precision`: which model the server loads."""
    parser.add_argument("--model-dir", type=Path, help="a real XTTS-v2 checkpoint directory")
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="a random checkpoint of the released size (1.87 GB) instead of the tiny test one",
    )
    parser.add_argument("--precision", default="auto")


@asynccontextmanager
async def in_process_server(
    arguments: argparse.Namespace, profile_toml: str = 'languages = ["en"]\n', **settings: Any
) -> AsyncIterator[InProcessServer]:
    """A server over the local engine the arguments choose, with the profile `oma`."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        checkpoint = arguments.model_dir or build_checkpoint(
            root / "checkpoint", *((RELEASE_SIZE,) if arguments.full_size else ())
        )
        write_profile(root / "voices", VOICE, profile_toml)
        port = free_port()
        config = Settings(
            model_dir=checkpoint,
            voices_dir=root / "voices",
            data_dir=root / "data",
            device=getattr(arguments, "device", "cpu"),  # only some benchmarks ask for one
            precision=arguments.precision,
            uri=f"tcp://127.0.0.1:{port}",
            **settings,
        )
        engine = create_engine(config)
        await engine.start()
        core = build_core(config, engine)
        server = AsyncTcpServer("127.0.0.1", port)
        await server.start(handler_factory(core, config))
        try:
            yield InProcessServer(core, config, port, config.data_dir)
        finally:
            await server.stop()
            await engine.close()


async def timed_synthesize(
    port: int, text: str, started: float | None = None
) -> tuple[float, float]:
    """Seconds from `started` (default: now) to the first `audio-chunk` and to `audio-stop`."""
    started = time.monotonic() if started is None else started
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    event = Synthesize(text=text, voice=SynthesizeVoice(name=VOICE)).event()
    await async_write_event(event, writer)
    first = None
    while (event := await async_read_event(reader)) is not None:
        if event.type == "audio-chunk" and first is None:
            first = time.monotonic() - started
        if event.type == "audio-stop":
            break
    writer.close()
    assert first is not None, "no audio"
    return first, time.monotonic() - started
