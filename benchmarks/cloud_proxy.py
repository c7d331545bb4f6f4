"""What the cloud proxy adds on top of the provider, and what pipelining buys a long reply.

Runs `wyoming-xtts --engine replicate` as a real process against the local Replicate fake
(tests/support/fake_providers.py) with simulated model timings, and compares, in one run with the
runs interleaved:

1. Overhead: a one-sentence reply through the Wyoming server (synthesize → audio-stop at
   the client) minus the same prediction made by a bare httpx client (create with
   `Prefer: wait`, download, decode): what the proxy itself costs.
2. Replies of 6 long and of 6 short sentences: time to first audio, time to the last audio
   and the playback stalls a listener would hear, for the reply sent as one prediction (what
   a proxy without segmentation does), segments one at a time, and segments pipelined.

    .venv/bin/python -m benchmarks.cloud_proxy [--runs 15] [--provider-latency 0.6]

The provider model (fixed latency + time per character, audio per character) is a stated
simulation: no real provider is reachable from the machines this project is built on.
"""

import argparse
import asyncio
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import soundfile
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.support.clips import write_profile
from tests.support.fake_providers import REPLICATE_TOKEN, REPLICATE_VERSION, FakeReplicate
from tests.support.net import free_port, wait_for_port

PROVIDER_LATENCY_S = 0.6
"""Fixed cost of one prediction (queueing, model call) in the simulation."""

PROVIDER_S_PER_CHAR = 0.012
"""Generation time per character (about RTF 0.2 on a provider's GPU)."""

AUDIO_S_PER_CHAR = 0.065
"""Speech per character (about 15 characters a second)."""

SHORT = "The washing machine has finished its cycle."
LONG = " ".join(
    f"This is sentence {n}, {detail}."
    for n, detail in enumerate(
        (
            "which tells you that the washing machine has finished",
            "and the laundry should come out before it starts to smell",
            "while the dryer still needs another forty minutes",
            "so you might want to hang the shirts up instead",
            "because the weather outside is sunny and warm today",
            "and that is all the news from the utility room",
        ),
        start=1,
    )
)

LIST = " ".join(
    f"Item {n} on the list is {thing}."
    for n, thing in enumerate(
        ("fresh milk", "a loaf of bread", "six eggs", "some apples", "coffee beans", "butter"),
        start=1,
    )
)


@dataclass
class Reply:
    first_audio_s: float
    last_audio_s: float
    stall_s: float


def stalls(arrivals: list[tuple[float, float]]) -> float:
    """Seconds of silence a listener hears: playback starts at the first chunk."""
    clock, stalled = arrivals[0][0], 0.0
    for arrived, duration in arrivals:
        if arrived > clock:
            stalled += arrived - clock
            clock = arrived
        clock += duration
    return stalled


async def through_wyoming(port: int, text: str) -> Reply:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        started = time.perf_counter()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="bench")).event())
        arrivals: list[tuple[float, float]] = []
        while True:
            event = await client.read_event()
            assert event is not None and event.type != "error", event
            if event.type == "audio-chunk":
                arrivals.append((time.perf_counter() - started, len(event.payload or b"") / 48_000))
            if event.type == "audio-stop":
                break
    return Reply(arrivals[0][0], arrivals[-1][0], stalls(arrivals))


async def bare_client(client: httpx.AsyncClient, base: str, speaker: str, text: str) -> Reply:
    """One prediction for all of `text`, as a minimal client (or a non-segmenting proxy) does."""
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {REPLICATE_TOKEN}", "Prefer": "wait=60"}
    body = {
        "version": REPLICATE_VERSION,
        "input": {"text": text, "speaker": speaker, "language": "en"},
    }
    prediction = (await client.post(f"{base}/v1/predictions", json=body, headers=headers)).json()
    audio = await client.get(prediction["output"], headers=headers)
    soundfile.read(io.BytesIO(audio.content))
    elapsed = time.perf_counter() - started
    return Reply(elapsed, elapsed, 0.0)


@contextmanager
def proxy_server(base: str, voices: Path, data: Path, in_flight: int) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "wyoming_xtts", "--engine", "replicate", "--provider-url", f"{base}/v1"),
            *("--voices-dir", str(voices), "--data-dir", str(data)),
            *("--uri", f"tcp://127.0.0.1:{port}", "--segments-in-flight", str(in_flight)),
        ],
        env={**os.environ, "REPLICATE_API_TOKEN": REPLICATE_TOKEN},
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def median(replies: list[Reply], field: Callable[[Reply], float]) -> float:
    return statistics.median(field(reply) for reply in replies)


async def main(runs: int, latency_s: float) -> None:
    fake = FakeReplicate()
    fake.processing_s = latency_s
    fake.processing_s_per_char = PROVIDER_S_PER_CHAR
    fake.audio_s_per_char = AUDIO_S_PER_CHAR
    fake.start()
    work = Path(tempfile.mkdtemp(prefix="wyoming-xtts-bench-"))
    write_profile(work / "voices", "bench", 'languages = ["en"]\n')
    speaker = f"{fake.base}/speaker.wav"  # the fake accepts any URL: the bare client skips encoding

    results: dict[str, list[Reply]] = {
        name: []
        for name in ("bare", "proxy", "one", "seq", "pipe", "list-one", "list-seq", "list-pipe")
    }
    try:
        with (
            proxy_server(fake.base, work / "voices", work / "data", 1) as sequential,
            proxy_server(fake.base, work / "voices", work / "data", 3) as pipelined,
        ):
            async with httpx.AsyncClient(timeout=120) as client:
                await through_wyoming(sequential, SHORT)  # warm up both servers' caches
                await through_wyoming(pipelined, SHORT)
                for _ in range(runs):
                    results["bare"].append(await bare_client(client, fake.base, speaker, SHORT))
                    results["proxy"].append(await through_wyoming(sequential, SHORT))
                for _ in range(max(3, runs // 3)):
                    results["one"].append(await bare_client(client, fake.base, speaker, LONG))
                    results["seq"].append(await through_wyoming(sequential, LONG))
                    results["pipe"].append(await through_wyoming(pipelined, LONG))
                    results["list-one"].append(await bare_client(client, fake.base, speaker, LIST))
                    results["list-seq"].append(await through_wyoming(sequential, LIST))
                    results["list-pipe"].append(await through_wyoming(pipelined, LIST))
    finally:
        fake.stop()

    bare = median(results["bare"], lambda r: r.last_audio_s)
    proxied = median(results["proxy"], lambda r: r.last_audio_s)
    overheads = [
        p.last_audio_s - b.last_audio_s
        for p, b in zip(results["proxy"], results["bare"], strict=True)
    ]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"simulated provider: {latency_s} s + {PROVIDER_S_PER_CHAR * 1000:g} ms/char, "
        f"{AUDIO_S_PER_CHAR * 1000:g} ms of audio/char; {runs} runs, medians"
    )
    print(f"\none sentence ({len(SHORT)} chars)")
    print(f"  bare httpx client, whole prediction   {bare * 1000:7.1f} ms")
    print(f"  through wyoming-xtts, to audio-stop   {proxied * 1000:7.1f} ms")
    print(
        f"  proxy overhead (paired)               {statistics.median(overheads) * 1000:7.1f} ms "
        f"median, {max(overheads) * 1000:.1f} ms max; ratio {proxied / bare:.3f}"
    )
    for prefix, text, kind in (("", LONG, "long sentences"), ("list-", LIST, "short sentences")):
        speech_s = len(text) * AUDIO_S_PER_CHAR
        print(f"\nreply of 6 {kind} ({len(text)} chars, about {speech_s:.0f} s of speech)")
        print(f"  {'':34} {'first audio':>12} {'last audio':>11} {'stalls':>8}")
        for name, label in (
            ("one", "one prediction for the whole reply"),
            ("seq", "segments, one at a time"),
            ("pipe", "segments, 3 in flight (default)"),
        ):
            replies = results[prefix + name]
            print(
                f"  {label:34} {median(replies, lambda r: r.first_audio_s):10.2f} s "
                f"{median(replies, lambda r: r.last_audio_s):9.2f} s "
                f"{median(replies, lambda r: r.stall_s):6.2f} s"
            )
        one = median(results[prefix + "one"], lambda r: r.first_audio_s)
        pipe = median(results[prefix + "pipe"], lambda r: r.first_audio_s)
        print(f"  first audio, pipelined / whole reply: {pipe / one:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--provider-latency",
        type=float,
        default=PROVIDER_LATENCY_S,
        help="fixed seconds per prediction in the simulated provider (cold or busy: 3)",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.provider_latency))
