"""One announcement sent to four speakers at once: one synthesis shared, against four.

A real Wyoming server in this process over the local engine (`--model-dir`, a random
checkpoint of the released size with `--full-size`, else the test suite's tiny one) and four
clients asking at the same moment: once for the same sentence in the same voice (an
announcement to every room: synthesized once, heard by all), once for four different
sentences (each synthesized: they take turns on the one model). Prints medians over the runs
of the last client's first audio and of all four done, and their ratios.

    .venv/bin/python -m benchmarks.shared_announcement [--runs 3] [--full-size] [--precision auto]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from wyoming.event import async_read_event, async_write_event
from wyoming.server import AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.clips import write_profile
from tests.net import free_port
from tests.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core, create_engine

SAME = "The washing machine is done."
DIFFERENT = (
    "The washing machine is done.",
    "The dryer has finished too.",
    "The front door is still open.",
    "Dinner will be ready soon.",
)


async def request(port: int, text: str, started: float) -> tuple[float, float]:
    """Seconds from `started` to this client's first audio and to its audio-stop."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await async_write_event(
        Synthesize(text=text, voice=SynthesizeVoice(name="oma")).event(), writer
    )
    first = None
    while (event := await async_read_event(reader)) is not None:
        if event.type == "audio-chunk" and first is None:
            first = time.monotonic() - started
        if event.type == "audio-stop":
            break
    writer.close()
    assert first is not None, "no audio"
    return first, time.monotonic() - started


async def four_at_once(port: int, texts: tuple[str, ...]) -> tuple[float, float]:
    """The last client's first audio and the moment all four are done."""
    started = time.monotonic()
    results = await asyncio.gather(*(request(port, text, started) for text in texts))
    return max(first for first, _ in results), max(done for _, done in results)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--full-size", action="store_true")
    parser.add_argument("--precision", default="auto")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        checkpoint = arguments.model_dir or build_checkpoint(
            root / "checkpoint", *((RELEASE_SIZE,) if arguments.full_size else ())
        )
        write_profile(root / "voices", "oma", 'languages = ["en"]\n')
        settings = Settings(
            model_dir=checkpoint,
            voices_dir=root / "voices",
            data_dir=root / "data",
            device="cpu",
            precision=arguments.precision,
            audio_cache_mb=0,
        )
        engine = create_engine(settings)
        await engine.start()
        port = free_port()
        server = AsyncTcpServer("127.0.0.1", port)
        await server.start(handler_factory(build_core(settings, engine), settings))
        shared: list[tuple[float, float]] = []
        separate: list[tuple[float, float]] = []
        try:
            await request(port, SAME, time.monotonic())  # conditioning once, outside the figures
            for _ in range(arguments.runs):
                shared.append(await four_at_once(port, (SAME,) * 4))
                separate.append(await four_at_once(port, DIFFERENT))
        finally:
            await server.stop()
            await engine.close()

    print(f"four clients at once, median of {arguments.runs} (precision {arguments.precision}):")
    for label, index in (("last first audio", 0), ("all four done", 1)):
        one = statistics.median(run[index] for run in shared)
        four = statistics.median(run[index] for run in separate)
        print(
            f"  {label:16}  same announcement {one:6.2f} s   four sentences {four:6.2f} s"
            f"   ratio {one / four:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
