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
import time
from collections.abc import Awaitable, Callable

import httpx

from wyoming_xtts.doors.http.server import serving_http

from .in_process import VOICE, add_model_options, in_process_server, timed_synthesize

SENTENCE = "The washing machine is done, and the towels can go on the rack."


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
    add_model_options(parser)
    arguments = parser.parse_args()

    speech = {"model": "tts-1", "voice": VOICE, "input": SENTENCE}
    times: dict[str, list[float]] = {}
    async with (
        in_process_server(arguments, audio_cache_mb=0, http="tcp://127.0.0.1:0") as server,
        serving_http(server.core, server.settings) as http_port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}/", timeout=300) as client,
    ):
        doors: dict[str, Callable[[], Awaitable[float]]] = {
            "wyoming": lambda: first_audio(timed_synthesize(server.port, SENTENCE)),
            "openai pcm": lambda: over_http(
                client, "POST", "v1/audio/speech", json={**speech, "response_format": "pcm"}
            ),
            "openai mp3": lambda: over_http(
                client, "POST", "v1/audio/speech", json={**speech, "response_format": "mp3"}
            ),
            "studio mp3": lambda: over_http(
                client, "GET", "api/speech", params={"voice": VOICE, "text": SENTENCE}
            ),
        }
        await timed_synthesize(server.port, SENTENCE)  # conditioning, outside the figures
        for _ in range(arguments.runs):
            for name, ask in doors.items():
                times.setdefault(name, []).append(await ask())

    wyoming = statistics.median(times["wyoming"]) * 1000
    print(f"first audio, median of {arguments.runs} (precision {arguments.precision}):")
    for name, values in times.items():
        median = statistics.median(values) * 1000
        print(f"  {name:11} {median:8.1f} ms   ratio to wyoming {median / wyoming:.3f}")


async def first_audio(request: Awaitable[tuple[float, float]]) -> float:
    return (await request)[0]


if __name__ == "__main__":
    asyncio.run(main())
