"""Soak test: many clients, minutes of mixed traffic, every response checked.

Starts `wyoming-xtts --engine replicate` as a real process against the local Replicate fake
(every segment is a 0.6 s tone after `--provider-delay` seconds), then runs `--clients`
concurrent clients for `--minutes`, each looping over a random mix of:

- `describe` (latency measured),
- plain `synthesize` and Home Assistant's streamed sequence, text split at random places
  (time to first audio measured; the audio must be exactly the bytes the segments produce:
  0.6 s per segment plus 0.25 s between segments, framed by one audio-start and one
  audio-stop, and `synthesize-stopped` last for streams),
- a client that disconnects after the first audio,
- malformed events (bad JSON, wrong types, oversized payloads), which must be answered with
  an `error` or a close, never crash anything.

It prints request counts, failures (any is a bug), p50/p99 time to first audio and describe
latency, and the server's memory at the start, the end and its peak. Loopback only.

    .venv/bin/python -m benchmarks.soak [--clients 16] [--minutes 3]
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from tests.support.clips import write_profile
from tests.support.fake_providers import REPLICATE_TOKEN, FakeReplicate
from wyoming_xtts.core.speaking import whole_text
from wyoming_xtts.text.language_detection import LanguageDetector, ReplyLanguage
from wyoming_xtts.text.segmentation import reply_segments

RATE = 24_000
SEGMENT_SAMPLES = int(0.6 * RATE)
PAUSE_SAMPLES = int(0.25 * RATE)
VOICE = SynthesizeVoice(name="soak")
SENTENCES = [
    "The washing machine has finished its cycle.",
    "Please take the laundry out before it starts to smell.",
    "The front door has been open for ten minutes.",
    "It is twenty one degrees in the living room.",
    "Your package will arrive tomorrow morning around nine.",
    "The dishwasher needs more salt, and the rinse aid is low.",
]
BAD_EVENTS = [
    b"not json at all\n",
    b'{"type": "synthesize", "data": {"text": 42}}\n',
    b'{"type": "synthesize-chunk", "data": {"text": "no start"}}\n',
    b'{"type": "audio-chunk", "payload_length": 3000000}\n' + bytes(3_000_000),
    b'{"type": "synthesize", "data": {"text": "Hi there friend.", "voice": {"name": "../../etc"}}}\n',
]


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    first_audio_s: list[float] = field(default_factory=list)
    describe_s: list[float] = field(default_factory=list)


async def expected_bytes(text: str, detector: LanguageDetector) -> int:
    language = ReplyLanguage(detector, ["en"], True)
    segments = [s async for s in reply_segments(whole_text(text), language)]
    return 2 * (len(segments) * SEGMENT_SAMPLES + (len(segments) - 1) * PAUSE_SAMPLES)


async def speak(
    port: int, text: str, streamed: bool, tally: Tally, detector: LanguageDetector
) -> None:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        started = time.monotonic()
        if streamed:
            await client.write_event(SynthesizeStart(voice=VOICE).event())
            cuts = sorted(random.sample(range(1, len(text)), k=min(6, len(text) - 1)))
            for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
                await client.write_event(SynthesizeChunk(text=text[a:b]).event())
                await asyncio.sleep(random.uniform(0, 0.05))
            await client.write_event(Synthesize(text=text, voice=VOICE).event())
            await client.write_event(SynthesizeStop().event())
        else:
            await client.write_event(Synthesize(text=text, voice=VOICE).event())
        types: list[str] = []
        audio = 0
        last = "synthesize-stopped" if streamed else "audio-stop"
        while not types or types[-1] != last:
            event = await asyncio.wait_for(client.read_event(), 120)
            if event is None:
                tally.failures.append(f"closed after {types[-3:]}")
                return
            if event.type == "audio-chunk":
                if audio == 0:
                    tally.first_audio_s.append(time.monotonic() - started)
                audio += len(event.payload or b"")
                if types and types[-1] == "audio-chunk":
                    continue
            types.append(event.type)
            if event.type == "error":
                tally.failures.append(f"error {event.data}")
                return
    framing = ["audio-start", "audio-chunk", "audio-stop"] + (
        ["synthesize-stopped"] if streamed else []
    )
    if types != framing:
        tally.failures.append(f"framing {types}")
    want = await expected_bytes(text, detector)
    if audio != want:
        tally.failures.append(f"{audio} audio bytes, expected {want}")
    tally.counts["streamed" if streamed else "plain"] += 1


async def describe(port: int, tally: Tally) -> None:
    started = time.monotonic()
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        while (event := await asyncio.wait_for(client.read_event(), 10)) is not None:
            if event.type == "info":
                tally.describe_s.append(time.monotonic() - started)
                tally.counts["describe"] += 1
                return
    tally.failures.append("describe: no info")


async def disconnect_early(port: int, tally: Tally) -> None:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    await client.write_event(Synthesize(text=" ".join(SENTENCES), voice=VOICE).event())
    while (event := await asyncio.wait_for(client.read_event(), 120)) is not None:
        if event.type == "audio-chunk":
            break
    await client.disconnect()
    tally.counts["disconnected"] += 1


async def bad_event(port: int, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(random.choice(BAD_EVENTS))
    try:
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        if line and json.loads(line).get("type") != "error":
            tally.failures.append(f"bad event answered with {line[:60]!r}")
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
    tally.counts["bad"] += 1


async def client_loop(port: int, until: float, tally: Tally, detector: LanguageDetector) -> None:
    while time.monotonic() < until:
        roll = random.random()
        text = " ".join(random.sample(SENTENCES, k=random.randint(1, 4)))
        try:
            if roll < 0.15:
                await describe(port, tally)
            elif roll < 0.45:
                await speak(port, text, False, tally, detector)
            elif roll < 0.8:
                await speak(port, text, True, tally, detector)
            elif roll < 0.9:
                await disconnect_early(port, tally)
            else:
                await bad_event(port, tally)
        except (OSError, TimeoutError) as err:
            tally.failures.append(f"{type(err).__name__}: {err}")


def start_server(provider: str, root: Path, port: int, clients: int) -> subprocess.Popen[bytes]:
    """The server under test, as users run it, in proxy mode against the fake provider."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "wyoming_xtts", "--engine", "replicate"),
            *("--provider-url", f"{provider}/v1", "--voices-dir", str(root / "voices")),
            *("--data-dir", str(root / "data"), "--uri", f"tcp://127.0.0.1:{port}"),
            *("--max-connections", str(clients * 2 + 8)),
        ],
        env={**os.environ, "REPLICATE_API_TOKEN": REPLICATE_TOKEN},
        stderr=subprocess.DEVNULL,
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def main(clients: int, minutes: float, delay: float) -> int:
    fake = FakeReplicate()
    fake.processing_s = delay
    fake.start()
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"wyoming-xtts-soak-{os.getpid()}"
    write_profile(root / "voices", "soak", 'languages = ["en"]\n')
    port = 20000 + os.getpid() % 20000
    server = start_server(fake.base, root, port, clients)
    detector = LanguageDetector()
    detector.load()
    tally = Tally()
    try:
        for _ in range(600):
            try:
                await describe(port, Tally())
                break
            except OSError:
                await asyncio.sleep(0.1)
        start_rss = rss_mb(server.pid)
        samples = [start_rss]
        until = time.monotonic() + minutes * 60
        workers = [
            asyncio.create_task(client_loop(port, until, tally, detector)) for _ in range(clients)
        ]
        while not all(worker.done() for worker in workers):
            await asyncio.sleep(2)
            samples.append(rss_mb(server.pid))
        await asyncio.gather(*workers)
        await describe(port, tally)
        end_rss = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stop()

    print(f"{clients} clients for {minutes:g} min, provider delay {delay:g} s, loopback")
    print(
        "requests: " + ", ".join(f"{name} {count}" for name, count in sorted(tally.counts.items()))
    )
    print(f"failures: {len(tally.failures)}")
    for failure in tally.failures[:10]:
        print(f"  {failure}")
    print(
        f"time to first audio: p50 {statistics.median(tally.first_audio_s) * 1000:.0f} ms, "
        f"p99 {percentile(tally.first_audio_s, 0.99) * 1000:.0f} ms"
    )
    print(
        f"describe: p50 {statistics.median(tally.describe_s) * 1000:.1f} ms, "
        f"p99 {percentile(tally.describe_s, 0.99) * 1000:.1f} ms"
    )
    quarters = [samples[min(len(samples) - 1, len(samples) * q // 4)] for q in (1, 2, 3)]
    print(
        f"server memory: start {start_rss:.0f} MB, at 1/4 2/4 3/4 of the run "
        + " ".join(f"{value:.0f}" for value in quarters)
        + f" MB, end {end_rss:.0f} MB, peak {max(samples):.0f} MB"
    )
    return 1 if tally.failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--provider-delay", type=float, default=0.3)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.clients, arguments.minutes, arguments.provider_delay)))
