"""First audio of a repeated announcement: spoken by the model, then from the audio cache.

A real Wyoming server in this process over the local engine (`--model-dir`, else the test
suite's tiny random checkpoint), a voice with a `seed`, and a client asking for the same
announcement again and again with a fresh audio cache each round: the first request of a
round is spoken by the model, the next ones come from the cache. Prints medians of the time
to the first `audio-chunk` and to `audio-stop`, and their ratios.

    .venv/bin/python -m benchmarks.audio_cache [--runs 10] [--model-dir DIR]
"""

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from wyoming.event import async_read_event, async_write_event
from wyoming.server import AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.clips import write_profile
from tests.net import free_port
from tests.xtts_checkpoint import build_checkpoint
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core, create_engine

ANNOUNCEMENT = "The washing machine is done."
VOICE = SynthesizeVoice(name="oma")


async def timed_request(port: int) -> tuple[float, float]:
    """Seconds to the first audio chunk and to audio-stop."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    await async_write_event(Synthesize(text=ANNOUNCEMENT, voice=VOICE).event(), writer)
    first = None
    while (event := await async_read_event(reader)) is not None:
        if event.type == "audio-chunk" and first is None:
            first = time.monotonic() - started
        if event.type == "audio-stop":
            break
    done = time.monotonic() - started
    writer.close()
    assert first is not None, "no audio"
    return first, done


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--model-dir", type=Path)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        checkpoint = arguments.model_dir or build_checkpoint(root / "checkpoint")
        write_profile(root / "voices", "oma", 'languages = ["en"]\n[synthesis]\nseed = 7\n')
        settings = Settings(
            model_dir=checkpoint, voices_dir=root / "voices", data_dir=root / "data", device="cpu"
        )
        engine = create_engine(settings)
        await engine.start()
        port = free_port()
        server = AsyncTcpServer("127.0.0.1", port)
        await server.start(handler_factory(build_core(settings, engine), settings))
        spoken: list[tuple[float, float]] = []
        cached: list[tuple[float, float]] = []
        try:
            await timed_request(port)  # conditioning computed once, outside the figures
            for _ in range(arguments.runs):
                shutil.rmtree(root / "data" / "audio-cache", ignore_errors=True)
                spoken.append(await timed_request(port))
                cached.append(await timed_request(port))
        finally:
            await server.stop()
            await engine.close()

    for label, index in (("first audio", 0), ("audio-stop", 1)):
        model = statistics.median(run[index] for run in spoken) * 1000
        cache = statistics.median(run[index] for run in cached) * 1000
        print(
            f"{label:12}  model {model:8.1f} ms   cache {cache:6.1f} ms   ratio {cache / model:.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
