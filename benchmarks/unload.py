"""Idle unload (`--unload-after`): the memory it hands back, and what the first request after
it waits for the load.

A real Wyoming server in this process over the local engine (`--full-size`: a random
checkpoint of the released size, 1.87 GB, built in a child process so that this one's memory
is the server's alone; else the test suite's tiny one, or `--model-dir`), set to unload after
`--idle-minutes`. Each run: a request with the model loaded, then the wait until the engine's
log says it unloaded, then a request that loads it again. Prints the process's resident
memory before the first load, after it, after each unload, when each reload is done (as the
engine logs it) and after the request that caused it (medians), the time to the first
`audio-chunk` and to `audio-stop` of both requests, and each reload's time as logged. On `--device cuda` also what PyTorch has reserved on the GPU and what
the driver counts as used there (every process's, this one's CUDA context included).

    .venv/bin/python -m benchmarks.unload --full-size [--runs 3] [--device cuda]
"""

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from wyoming_xtts.engines.local.memory import resident_bytes

from .in_process import add_model_options, in_process_server, timed_synthesize

REQUEST = "The washing machine is done."

_LOGGER = logging.getLogger("benchmarks.unload")

_BUILD = (
    "import sys; from pathlib import Path; "
    "from tests.support.xtts_checkpoint import RELEASE_SIZE, TINY, build_checkpoint; "
    "build_checkpoint(Path(sys.argv[1]), RELEASE_SIZE if sys.argv[2] == 'full' else TINY)"
)


class EngineLog(logging.Handler):
    """The local engine's log lines: when it unloaded, how long a reload took."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.unloads = 0
        self.reload_seconds: list[float] = []
        self.reloaded_resident: list[float] = []  # GB, as the engine measured it when done

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("XTTS-v2 unloaded after"):
            self.unloads += 1
        elif message.startswith("XTTS-v2 loaded again in "):
            # "XTTS-v2 loaded again in 12.3 s (resident 1.62 GB...)"
            words = message.split()
            self.reload_seconds.append(float(words[4]))
            if words[6] == "(resident":
                self.reloaded_resident.append(float(words[7]))

    async def wait_for_unloads(self, count: int) -> None:
        while self.unloads < count:
            await asyncio.sleep(0.05)


async def timed(port: int, label: str) -> tuple[float, float]:
    """`timed_synthesize`, logged as it starts and ends."""
    _LOGGER.info("%s: request sent", label)
    first, done = await timed_synthesize(port, REQUEST)
    _LOGGER.info("%s: first audio after %.2f s, audio-stop after %.2f s", label, first, done)
    return first, done


def memory(device: str) -> dict[str, float]:
    """The process's resident memory and, on a GPU, PyTorch's reserve and the driver's use (GB)."""
    figures = {"resident": (resident_bytes() or 0) / 1e9}
    if device.startswith("cuda") and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(device)
        figures["GPU reserved"] = torch.cuda.memory_reserved(device) / 1e9
        figures["GPU used (driver)"] = (total - free) / 1e9
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle-minutes", type=float, default=0.05)
    parser.add_argument("--device", default="cpu")
    add_model_options(parser)
    arguments = parser.parse_args()
    # The server's own lines on standard error, timed, beside the requests': where time went.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    log = EngineLog()
    logger = logging.getLogger("wyoming_xtts.engines.local.engine")
    logger.addHandler(log)
    logger.setLevel(logging.INFO)

    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = f"checkpoint {arguments.model_dir}"
        if arguments.model_dir is None:
            arguments.model_dir = Path(scratch) / "checkpoint"
            size = "full" if arguments.full_size else "tiny"
            checkpoint = f"{'full-size' if arguments.full_size else 'tiny'} random checkpoint"
            subprocess.run(
                [sys.executable, "-c", _BUILD, str(arguments.model_dir), size], check=True
            )
        steps: dict[str, list[dict[str, float]]] = {"after unload": [], "after request": []}
        loaded: list[tuple[float, float]] = []
        reloading: list[tuple[float, float]] = []
        before = memory(arguments.device)
        started = time.monotonic()
        async with in_process_server(arguments, unload_after=arguments.idle_minutes) as server:
            first_load = time.monotonic() - started
            after_load = memory(arguments.device)
            await timed(server.port, "conditioning the voice")  # once, outside the figures
            for run in range(arguments.runs):
                loaded.append(await timed(server.port, f"run {run + 1}, model loaded"))
                await log.wait_for_unloads(run + 1)
                steps["after unload"].append(memory(arguments.device))
                reloading.append(await timed(server.port, f"run {run + 1}, after an unload"))
                steps["after request"].append(memory(arguments.device))
            precision = server.core.speaking.engine.info.description.rsplit(", ", 1)[-1][:-1]

    print(
        f"device {arguments.device} ({precision}), {checkpoint}, unload after "
        f"{arguments.idle_minutes:g} min, {arguments.runs} runs, medians"
    )
    print(f"first load at start (warm-up included): {first_load:.1f} s")
    for name in before:
        row = [before[name], after_load[name]]
        row += [statistics.median(step[name] for step in steps[key]) for key in steps]
        print(
            f"{name + ' (GB)':24} before load {row[0]:.2f}   after load {row[1]:.2f}   "
            f"after unload {row[2]:.2f}   after reload and its request {row[3]:.2f}"
        )
    if log.reloaded_resident:
        print(
            f"resident when reloaded   {statistics.median(log.reloaded_resident):.2f} GB (logged)"
        )
    for label, index in (("first audio (s)", 0), ("audio-stop (s)", 1)):
        normal = statistics.median(run[index] for run in loaded)
        after = statistics.median(run[index] for run in reloading)
        print(
            f"{label:24} model loaded {normal:.2f}   first request after an unload {after:.2f}"
            f"   difference {after - normal:+.2f}"
        )
    print(f"reload as logged (s)     {', '.join(f'{s:.1f}' for s in log.reload_seconds)}")
    for run, (normal, after) in enumerate(zip(loaded, reloading, strict=True)):
        print(
            f"run {run + 1}: first audio / audio-stop (s): loaded {normal[0]:.2f} / {normal[1]:.2f}, "
            f"after an unload {after[0]:.2f} / {after[1]:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
