"""Speed of wyoming-xtts against the stock XTTS-v2 path, full-size model, in one run.

Builds a random-initialised checkpoint with the real XTTS-v2 architecture (30 layers × 1024,
1.87 GB; about 15 s) unless `--checkpoint` names one, then starts three processes that each
load it: the stock path (`speed_workers.py stock`) and the wyoming-xtts server once per
variant (`speed_workers.py ours`: a runtime and precision, or the old PyTorch int8 baseline). Every run measures every scenario on each of them in
turn, so all figures come from the same minutes of the same machine; medians over the runs
are printed, and each figure as a ratio to the stock path.

Random weights never stop on their own: every generation runs to the text's speech budget
(`speech_budget.py`, ~6 characters per second + 1.5 s), and the stock path is given the same
number of tokens as `max_new_tokens`, so both produce the same amount of audio.

On a CPU it ends with `hardware_limits.py`'s figures, measured right after on the same
machine: memory bandwidth, matrix throughput, and the GPT's token step against its memory
bound (one sentence and four at once), so every figure above can be read against the limits.

    .venv/bin/python -m benchmarks.speed [--runs 3] [--device cpu|cuda] [--variants torch-int8,onnx-int8]
"""

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wyoming.event import async_read_event, async_write_event
from wyoming.info import Describe
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from tests.support.clips import write_profile
from tests.support.net import free_port
from tests.support.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.engines.local.xtts_stream import SECONDS_PER_TOKEN
from wyoming_xtts.text.speech_budget import max_speech_seconds

SHORT = "The washing machine is done."
THREE = (
    "Your washing machine finished ten minutes ago.",
    "The dryer is still running.",
    "Shall I remind you in an hour?",
)
LONG = "The garage door has been open for twenty minutes now."
TINY = "Done."
CLIENT_REPLIES = (
    "The washing machine is done.",
    "The dryer has finished too.",
    "The front door is still open.",
    "Dinner will be ready soon.",
)
"""Four clients asking at once, each for a different one-sentence reply (identical requests
would be synthesized once and shared)."""
STUDIO_SPEAKER = "Ana Florence"  # ships with its latents: never any conditioning
CLIENTS = 4
SEEDED = "seeded"
"""A voice with a seed: its finished audio is kept in the audio cache."""
WORKERS = "benchmarks.speed_workers"
_REPO = Path(__file__).resolve().parents[1]


def tokens_for(text: str) -> int:
    """The tokens wyoming-xtts generates for `text` with weights that never stop."""
    return math.floor(max_speech_seconds(text, "en") / SECONDS_PER_TOKEN)


def proc_memory_gb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1e6
    return fields


class Worker:
    """One measured process; its stdout carries JSON lines."""

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self._argv = argv
        self._log = log
        self.process: asyncio.subprocess.Process | None = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.load_s = 0.0
        self.rss_after_load = 0.0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKERS,
            *self._argv,
            cwd=_REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log.open("ab"),
        )
        asyncio.get_running_loop().create_task(self._read())
        ready = await asyncio.wait_for(self.events.get(), 900)
        if ready.get("event") != "ready":
            raise RuntimeError(f"{self.name} did not start: {ready} (see {self._log})")
        self.load_s = ready["load_s"]
        self.rss_after_load = proc_memory_gb(self.process.pid)["VmRSS"]

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            if line.startswith(b"{"):
                await self.events.put(json.loads(line))
        await self.events.put({"event": "exited"})

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        answer = await asyncio.wait_for(self.events.get(), 1800)
        if answer.get("event") == "exited":
            raise RuntimeError(f"{self.name} exited (see {self._log})")
        return answer

    async def next_segment(self) -> dict[str, Any]:
        """The next segment timing the server printed."""
        while (record := await asyncio.wait_for(self.events.get(), 60)).get("event") != "segment":
            if record.get("event") == "exited":
                raise RuntimeError(f"{self.name} exited (see {self._log})")
        return record

    def drain(self) -> list[dict[str, Any]]:
        records = []
        while not self.events.empty():
            records.append(self.events.get_nowait())
        return records

    def memory(self) -> dict[str, float]:
        assert self.process is not None
        return proc_memory_gb(self.process.pid)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@dataclass
class Figures:
    """Every measurement of one path, by name, over the runs."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def median(self, name: str) -> float | None:
        values = self.values.get(name)
        return statistics.median(values) if values else None

    def p99(self, name: str) -> float | None:
        values = sorted(self.values.get(name, []))
        return values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)] if values else None


@dataclass
class Reply:
    sent: float
    first: float | None = None
    done: float | None = None
    audio_s: float = 0.0


async def request(port: int, events: Sequence[Any], first_only: bool = False) -> Reply:
    """Send one request (a `synthesize` or the streaming sequence) and time its audio."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reply = Reply(sent=time.monotonic())
    for event in events:
        await async_write_event(event.event(), writer)
    rate, width = 24_000, 2
    while (event := await async_read_event(reader)) is not None:
        if event.type == "audio-start":
            rate, width = event.data["rate"], event.data["width"]
        elif event.type == "audio-chunk":
            reply.first = reply.first or time.monotonic()
            reply.audio_s += len(event.payload or b"") / (rate * width)
            if first_only:
                break
        elif event.type == "audio-stop":
            reply.done = time.monotonic()
            if not any(isinstance(e, SynthesizeStart) for e in events):
                break
        elif event.type in ("synthesize-stopped", "error"):
            break
    writer.close()
    return reply


def plain(text: str, voice: str) -> list[Any]:
    return [Synthesize(text=text, voice=SynthesizeVoice(name=voice))]


def streamed(sentences: Sequence[str], voice: str) -> list[Any]:
    chosen = SynthesizeVoice(name=voice)
    return [
        SynthesizeStart(voice=chosen),
        *(SynthesizeChunk(text=sentence + " ") for sentence in sentences),
        SynthesizeStop(),
    ]


async def describe_latencies(port: int, stop: asyncio.Event, into: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while not stop.is_set():
        started = time.monotonic()
        await async_write_event(Describe().event(), writer)
        while (event := await async_read_event(reader)) is not None and event.type != "info":
            pass
        into.append(time.monotonic() - started)
        await asyncio.sleep(0.1)
    writer.close()


async def measure_stock(stock: Worker, figures: Figures) -> None:
    short = await stock.ask({"op": "stream", "text": SHORT, "tokens": tokens_for(SHORT)})
    figures.add("short_first_s", short["first_s"])
    figures.add("short_rtf", short["total_s"] / short["audio_s"])
    figures.add("condition_s", short["condition_s"])
    three_text = " ".join(THREE)
    three = await stock.ask(
        {"op": "stream", "text": three_text, "tokens": tokens_for(three_text), "first_only": True}
    )
    figures.add("three_first_s", three["first_s"])
    long = await stock.ask({"op": "stream", "text": LONG, "tokens": tokens_for(LONG)})
    figures.add("long_stream_rtf", long["generate_s"] / long["audio_s"])
    figures.add("long_audio_s", long["audio_s"])
    whole = await stock.ask({"op": "whole", "text": LONG, "tokens": tokens_for(LONG)})
    figures.add("long_whole_rtf", whole["generate_s"] / whole["audio_s"])


async def measure_ours(ours: Worker, port: int, run: int, figures: Figures) -> None:
    ours.drain()
    short = await request(port, plain(SHORT, "bench"))
    segment = await ours.next_segment()
    assert short.first is not None and short.done is not None
    figures.add("short_first_s", short.first - short.sent)
    figures.add("short_engine_first_s", segment["first"] - segment["called"])
    figures.add("overhead_ms", 1000 * (short.first - segment["first"]))
    figures.add("short_rtf", (short.done - short.sent) / short.audio_s)

    cold_voice = f"cold{run}"
    cold = await request(port, streamed(THREE, cold_voice), first_only=True)
    await asyncio.sleep(0.5)  # the hung-up reply stops; the model thread is free again
    warm = await request(port, streamed(THREE, cold_voice), first_only=True)
    await asyncio.sleep(0.5)
    studio = await request(port, streamed(THREE, STUDIO_SPEAKER), first_only=True)
    await asyncio.sleep(0.5)
    assert cold.first is not None and warm.first is not None and studio.first is not None
    figures.add("three_first_s", warm.first - warm.sent)
    figures.add("condition_s", (cold.first - cold.sent) - (warm.first - warm.sent))
    figures.add("cached_cost_ms", 1000 * ((warm.first - warm.sent) - (studio.first - studio.sent)))

    stop = asyncio.Event()
    latencies: list[float] = []
    poller = asyncio.create_task(describe_latencies(port, stop, latencies))
    long = await request(port, plain(LONG, "bench"))
    stop.set()
    await poller
    assert long.done is not None
    figures.add("long_stream_rtf", (long.done - long.sent) / long.audio_s)
    figures.add("long_audio_s", long.audio_s)
    for latency in latencies:
        figures.add("describe_ms", 1000 * latency)

    alone = await request(port, plain(CLIENT_REPLIES[0], "bench"))
    together = await asyncio.gather(
        *(request(port, plain(text, "bench")) for text in CLIENT_REPLIES[:CLIENTS])
    )
    assert alone.first is not None and alone.done is not None
    figures.add("one_client_first_s", alone.first - alone.sent)
    figures.add("one_client_done_s", alone.done - alone.sent)
    firsts = [reply.first - reply.sent for reply in together if reply.first]
    figures.add("four_clients_first_s", statistics.median(firsts))
    figures.add("four_clients_last_first_s", max(firsts))
    all_done = max(r.done - r.sent for r in together if r.done)
    figures.add("four_clients_done_s", all_done)
    figures.add("four_clients_done_ratio", all_done / (alone.done - alone.sent))

    announcement = f"Reminder number {run + 1}: the washing machine is done."  # new each run
    spoken = await request(port, plain(announcement, SEEDED))
    repeat = await request(port, plain(announcement, SEEDED))
    assert spoken.first is not None and repeat.first is not None
    figures.add("repeat_spoken_first_ms", 1000 * (spoken.first - spoken.sent))
    figures.add("repeat_cached_first_ms", 1000 * (repeat.first - repeat.sent))


def prepare(work: Path, checkpoint: Path | None) -> tuple[Path, Path, Path]:
    if checkpoint is None:
        checkpoint = work / "checkpoint"
        if not (checkpoint / "model.pth").exists():
            started = time.monotonic()
            build_checkpoint(checkpoint, RELEASE_SIZE)
            print(f"built the full-size checkpoint in {time.monotonic() - started:.1f} s")
    voices = work / "voices"
    clip = write_profile(voices, "bench", seconds=12.0) / "clip0.wav"
    write_profile(voices, SEEDED, 'languages = ["en"]\n[synthesis]\nseed = 7\n', seconds=12.0)
    return checkpoint, voices, clip


def add_cold_voices(voices: Path, runs: int) -> None:
    """A voice per run whose clip differs, so that no cache knows its conditioning."""
    for run in range(runs):
        write_profile(voices, f"cold{run}", seconds=12.0, gain=0.9 - 0.01 * run)


async def main_async(args: argparse.Namespace) -> None:
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="xtts-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, voices, clip = prepare(work, args.checkpoint)
    add_cold_voices(voices, args.runs)
    log = work / "workers.log"
    common = ["--checkpoint", str(checkpoint), "--device", args.device]
    stock = Worker("stock", ["stock", *common, "--clip", str(clip)], log)
    ours: dict[str, tuple[Worker, int]] = {}
    for variant in args.variants.split(","):
        port = free_port()
        argv = ["ours", *common, "--port", str(port), "--variant", variant]
        argv += ["--voices-dir", str(voices), "--data-dir", str(work / f"data-{variant}")]
        if args.deepspeed:
            argv.append("--deepspeed")
        ours[variant] = (Worker(variant, argv, log), port)

    results = {"stock": Figures(), **{name: Figures() for name in ours}}
    workers = [stock, *(worker for worker, _ in ours.values())]
    try:
        for worker in workers:
            await worker.start()
            print(f"{worker.name}: loaded in {worker.load_s:.1f} s", flush=True)
        for _, port in ours.values():  # conditioning of the benchmark voice, once
            await request(port, plain(TINY, "bench"), first_only=True)
        for run in range(args.runs):
            started = time.monotonic()
            await measure_stock(stock, results["stock"])
            for name, (worker, port) in ours.items():
                await measure_ours(worker, port, run, results[name])
            print(f"run {run + 1}/{args.runs}: {time.monotonic() - started:.0f} s", flush=True)
        await asyncio.sleep(2)  # idle: wyoming-xtts returns generation's scratch memory
        memory = {worker.name: (worker.rss_after_load, worker.memory()) for worker in workers}
    finally:
        for worker in workers:
            await worker.stop()
    report(results, memory, workers, args)
    if not args.device.startswith("cuda"):
        print("\nthe limits of this machine, measured right after (benchmarks.hardware_limits):")
        limits = [sys.executable, "-m", "benchmarks.hardware_limits", "--repeats", "5"]
        process = await asyncio.create_subprocess_exec(*limits, cwd=_REPO)
        await process.wait()


def report(
    results: dict[str, Figures],
    memory: dict[str, tuple[float, dict[str, float]]],
    workers: Sequence[Worker],
    args: argparse.Namespace,
) -> None:
    names = list(results)
    stock = results["stock"]
    ours = [name for name in names if name != "stock"]
    print(
        f"\n{os.cpu_count()} CPUs, device {args.device}, {args.runs} runs, medians; "
        f"texts of {tokens_for(SHORT)} / {tokens_for(LONG)} tokens "
        f"({stock.median('long_audio_s') or 0:.1f} s of audio for the long one)\n"
    )
    width = max(10, *(len(name) + 1 for name in names))
    ratio_width = max(13, *(len(name) + 7 for name in ours))
    header = f"{'':34}" + "".join(f"{name:>{width}}" for name in names)
    header += "".join(f"{name + '/stock':>{ratio_width}}" for name in ours)
    print(header)

    def row(label: str, key: str, fmt: str = "{:.2f}", pick: str = "median") -> None:
        values = [getattr(results[name], pick)(key) for name in names]
        line = f"{label:34}" + "".join(
            f"{fmt.format(v):>{width}}" if v is not None else f"{'-':>{width}}" for v in values
        )
        base = values[0]
        for value in values[1:]:
            ratio = value / base if value is not None and base else None
            line += (
                f"{ratio:>{ratio_width - 1}.2f}x" if ratio is not None else f"{'-':>{ratio_width}}"
            )
        print(line)

    row("first audio, one sentence (s)", "short_first_s")
    row("  at the engine (s)", "short_engine_first_s")
    row("first audio, 3 sentences (s)", "three_first_s")
    row("RTF, one sentence", "short_rtf")
    row("RTF, long sentence streamed", "long_stream_rtf")
    row("RTF, long sentence whole", "long_whole_rtf")
    row("conditioning, new voice (s)", "condition_s", "{:.3f}")
    row("cached voice vs studio speaker (ms)", "cached_cost_ms", "{:.0f}")
    row("server overhead (ms)", "overhead_ms", "{:.1f}")
    row("describe while speaking p50 (ms)", "describe_ms", "{:.1f}")
    row("describe while speaking p99 (ms)", "describe_ms", "{:.1f}", pick="p99")
    row("1 client: first audio (s)", "one_client_first_s")
    row("1 client: done (s)", "one_client_done_s")
    row(f"{CLIENTS} clients: median first audio (s)", "four_clients_first_s")
    row(f"{CLIENTS} clients: last first audio (s)", "four_clients_last_first_s")
    row(f"{CLIENTS} clients: all done (s)", "four_clients_done_s")
    row(f"{CLIENTS} clients all done / 1 client done", "four_clients_done_ratio")
    row("repeat: first audio, spoken (ms)", "repeat_spoken_first_ms", "{:.0f}")
    row("repeat: first audio, audio cache (ms)", "repeat_cached_first_ms", "{:.1f}")
    print()
    for worker in workers:
        after_load, now = memory[worker.name]
        print(
            f"memory {worker.name:>6}: {after_load:.2f} GB after load, "
            f"{now['VmRSS']:.2f} GB idle after the runs, peak {now['VmHWM']:.2f} GB "
            f"(load {worker.load_s:.1f} s)"
        )
    whole = stock.median("long_whole_rtf")
    if whole:
        for name in ours:
            streamed_rtf = results[name].median("long_stream_rtf") or 0
            print(
                f"streamed {name} RTF / stock whole-sentence fp32 RTF: {streamed_rtf / whole:.2f}"
            )
        print(
            f"stock streamed RTF / stock whole RTF: "
            f"{(stock.median('long_stream_rtf') or 0) / whole:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (both paths)")
    parser.add_argument(
        "--variants",
        default=None,
        help="wyoming-xtts ways to run, RUNTIME-PRECISION or a precision (default on a CPU: "
        "torch-int8, the old PyTorch dynamic int8, then onnx-int8,onnx-int4; fp16 on CUDA)",
    )
    parser.add_argument("--deepspeed", action="store_true", help="wyoming-xtts with DeepSpeed")
    parser.add_argument("--checkpoint", type=Path, help="use this checkpoint (e.g. the real one)")
    parser.add_argument("--work-dir", type=Path, help="keep the checkpoint and logs here")
    args = parser.parse_args()
    if args.variants is None:
        args.variants = (
            "fp16" if args.device.startswith("cuda") else "torch-int8,onnx-int8,onnx-int4"
        )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
