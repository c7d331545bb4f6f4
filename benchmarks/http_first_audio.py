"""First audio over HTTP (the OpenAI endpoint and the studio's preview) against over Wyoming.

One server in this process with both front doors over the local engine (`--model-dir`, or a
random checkpoint of the released size with `--full-size`, else the test suite's tiny one),
the same sentence asked in turn over Wyoming (`synthesize`, time to the first `audio-chunk`),
over `POST /v1/audio/speech` (pcm and mp3: time to the first body bytes) and over the studio's
`GET api/speech` (mp3). Prints medians and each door's ratio to Wyoming.

    .venv/bin/python -m benchmarks.http_first_audio [--runs 7] [--full-size] [--precision int8]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import httpx
from wyoming.event import async_read_event, async_write_event
from wyoming.server import AsyncTcpServer
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.clips import write_profile
from tests.net import free_port
from tests.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.doors.http.server import serving_http
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core, create_engine

SENTENCE = "The washing machine is done, and the towels can go on the rack."


async def over_wyoming(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    event = Synthesize(text=SENTENCE, voice=SynthesizeVoice(name="oma")).event()
    await async_write_event(event, writer)
    first = None
    while (event := await async_read_event(reader)) is not None:
        if event.type == "audio-chunk" and first is None:
            first = time.monotonic() - started
        if event.type == "audio-stop":
            break
    writer.close()
    assert first is not None
    return first


async def over_http(client: httpx.AsyncClient, method: str, url: str, **request: object) -> float:
    started = time.monotonic()
    first = None
    async with client.stream(method, url, **request) as response:  # type: ignore[arg-type]
        assert response.status_code == 200, response.status_code
        async for piece in response.aiter_raw():
            if piece and first is None:
                first = time.monotonic() - started
    assert first is not None
    return first


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--full-size", action="store_true")
    parser.add_argument("--precision", default="auto")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        checkpoint = arguments.model_dir or (
            build_checkpoint(root / "checkpoint", RELEASE_SIZE)
            if arguments.full_size
            else build_checkpoint(root / "checkpoint")
        )
        write_profile(root / "voices", "oma", 'languages = ["en"]\n')
        wyoming_port = free_port()
        settings = Settings(
            model_dir=checkpoint,
            voices_dir=root / "voices",
            data_dir=root / "data",
            device="cpu",
            precision=arguments.precision,
            audio_cache_mb=0,
            uri=f"tcp://127.0.0.1:{wyoming_port}",
            http="tcp://127.0.0.1:0",
        )
        engine = create_engine(settings)
        await engine.start()
        core = build_core(settings, engine)
        server = AsyncTcpServer("127.0.0.1", wyoming_port)
        await server.start(handler_factory(core, replace(settings)))
        speech = {"model": "tts-1", "voice": "oma", "input": SENTENCE}
        times: dict[str, list[float]] = {}
        try:
            async with (
                serving_http(core, settings) as http_port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}/", timeout=300) as client,
            ):
                doors: dict[str, Callable[[], Awaitable[float]]] = {
                    "wyoming": lambda: over_wyoming(wyoming_port),
                    "openai pcm": lambda: over_http(
                        client, "POST", "v1/audio/speech", json={**speech, "response_format": "pcm"}
                    ),
                    "openai mp3": lambda: over_http(
                        client, "POST", "v1/audio/speech", json={**speech, "response_format": "mp3"}
                    ),
                    "studio mp3": lambda: over_http(
                        client, "GET", "api/speech", params={"voice": "oma", "text": SENTENCE}
                    ),
                }
                await over_wyoming(wyoming_port)  # conditioning computed once, outside the figures
                for _ in range(arguments.runs):
                    for name, ask in doors.items():
                        times.setdefault(name, []).append(await ask())
        finally:
            await server.stop()
            await engine.close()

    wyoming = statistics.median(times["wyoming"]) * 1000
    print(f"first audio, median of {arguments.runs} (precision {arguments.precision}):")
    for name, values in times.items():
        median = statistics.median(values) * 1000
        print(f"  {name:11} {median:8.1f} ms   ratio to wyoming {median / wyoming:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
