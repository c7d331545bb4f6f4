"""How fast a client's synthesis stops after it hangs up.

Local engine: a real Wyoming server in this process over the local XTTS-v2 engine (a
checkpoint from `--model-dir`, else the test suite's tiny random checkpoint); a client asks
for a long reply, hangs up at the first audio, and the time until the engine's generation
actually ends is measured, then the time until the next client's first audio (the queue moving
on). Cloud engine: the same against the local Replicate fake, measuring the time until the
prediction's cancel request reaches the provider.

    .venv/bin/python -m benchmarks.disconnect [--runs 10] [--model-dir DIR]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.client import AsyncTcpClient
from wyoming.event import async_read_event, async_write_event
from wyoming.server import AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.support.clips import write_profile
from tests.support.fake_providers import REPLICATE_TOKEN, FakeReplicate
from tests.support.net import free_port
from tests.support.xtts_checkpoint import build_checkpoint
from wyoming_xtts.core.engine import Engine
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.core.voices import Voice
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core, create_cloud_engine, create_engine

LONG_REPLY = " ".join(
    f"This is sentence number {n} of a long reply to be cut short." for n in range(12)
)
VOICE = SynthesizeVoice(name="bench")


class StopWatchEngine:
    """Passes everything to an engine and notes when a generation is cut off."""

    def __init__(self, inner: Engine) -> None:
        self._inner = inner
        self.cut_off: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        finished = False
        try:
            async for piece in self._inner.synthesize(text, language, voice):
                yield piece
            finished = True
        finally:
            if not finished:
                self.cut_off.append(time.monotonic())


async def first_audio(port: int, text: str) -> float:
    """Seconds from request to first audio; the client then hangs up (just after it returns)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    await async_write_event(Synthesize(text=text, voice=VOICE).event(), writer)
    while (event := await async_read_event(reader)) is not None and event.type != "audio-chunk":
        pass
    elapsed = time.monotonic() - started
    writer.close()
    return elapsed


async def measure_local(
    settings: Settings, runs: int
) -> tuple[list[float], list[float], list[float]]:
    engine = StopWatchEngine(create_engine(settings))
    await engine.start()
    port = free_port()
    server = AsyncTcpServer("127.0.0.1", port)
    await server.start(handler_factory(build_core(settings, engine), settings))  # type: ignore[arg-type]
    stops, next_first, idle_first = [], [], []
    try:
        await first_audio(port, "Warm up the voice conditioning first.")
        await asyncio.sleep(1)
        for _ in range(runs):
            idle_first.append(await first_audio(port, "The next client is served."))
            await asyncio.sleep(0.5)
            engine.cut_off.clear()
            await first_audio(port, LONG_REPLY)
            hung_up = time.monotonic()
            while not engine.cut_off:
                await asyncio.sleep(0.001)
            stops.append(engine.cut_off[0] - hung_up)
            next_first.append(await first_audio(port, "The next client is served."))
            await asyncio.sleep(0.5)
    finally:
        await server.stop()
        await engine.close()
    return stops, next_first, idle_first


async def measure_cloud(settings: Settings, runs: int) -> list[float]:
    fake = FakeReplicate()
    fake.hold_s = 0  # answer creates at once so the prediction id is known
    fake.processing_s = 5.0
    fake.start()
    cloud = replace(settings, engine="replicate", provider_url=f"{fake.base}/v1")
    engine = create_cloud_engine(cloud, {"REPLICATE_API_TOKEN": REPLICATE_TOKEN})
    await engine.start()
    port = free_port()
    server = AsyncTcpServer("127.0.0.1", port)
    await server.start(handler_factory(build_core(cloud, engine), cloud))
    delays = []
    try:
        for _ in range(runs):
            cancels = len(fake.calls("POST", "/v1/predictions/"))
            client = AsyncTcpClient("127.0.0.1", port)
            await client.connect()
            await client.write_event(Synthesize(text=LONG_REPLY, voice=VOICE).event())
            while not fake.calls("GET", "/v1/predictions/"):
                await asyncio.sleep(0.005)
            hung_up = time.monotonic()
            await client.disconnect()
            while len(fake.calls("POST", "/v1/predictions/")) <= cancels:
                await asyncio.sleep(0.001)
            delays.append(fake.calls("POST", "/v1/predictions/")[-1].at - hung_up)
            await asyncio.sleep(0.5)  # the other in-flight predictions' cancels arrive too
            fake.requests.clear()
    finally:
        await server.stop()
        await engine.close()
        fake.stop()
    return delays


def summary(values: Sequence[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"


async def main(runs: int, model_dir: Path | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="wyoming-xtts-disconnect-"))
    write_profile(work / "voices", "bench", 'languages = ["en"]\n')
    checkpoint = model_dir or build_checkpoint(work / "checkpoint")
    settings = Settings(
        voices_dir=work / "voices", data_dir=work / "data", model_dir=checkpoint, device="cpu"
    )
    stops, next_first, idle_first = await measure_local(settings, runs)
    cancels = await measure_cloud(settings, runs)
    print(f"checkpoint: {'given' if model_dir else 'tiny random test checkpoint'}, {runs} runs")
    print(f"local engine: the response stops asking for audio after hang-up: {summary(stops)}")
    print(f"local engine: first audio on an idle server: {summary(idle_first)}")
    print(f"local engine: first audio of the next client after a hang-up: {summary(next_first)}")
    extra = statistics.median(next_first) - statistics.median(idle_first)
    print(
        f"local engine: what the abandoned generation still costs the next client: {extra * 1000:.0f} ms"
    )
    print(f"cloud engine: cancel reaches the provider after hang-up: {summary(cancels)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--model-dir", type=Path)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.model_dir))
