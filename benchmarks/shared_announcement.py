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
import time

from .in_process import add_model_options, in_process_server, timed_synthesize

SAME = "The washing machine is done."
DIFFERENT = (
    "The washing machine is done.",
    "The dryer has finished too.",
    "The front door is still open.",
    "Dinner will be ready soon.",
)


async def four_at_once(port: int, texts: tuple[str, ...]) -> tuple[float, float]:
    """The last client's first audio and the moment all four are done."""
    started = time.monotonic()
    results = await asyncio.gather(*(timed_synthesize(port, text, started) for text in texts))
    return max(first for first, _ in results), max(done for _, done in results)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    add_model_options(parser)
    arguments = parser.parse_args()

    shared: list[tuple[float, float]] = []
    separate: list[tuple[float, float]] = []
    async with in_process_server(arguments, audio_cache_mb=0) as server:
        await timed_synthesize(server.port, SAME)  # conditioning once, outside the figures
        for _ in range(arguments.runs):
            shared.append(await four_at_once(server.port, (SAME,) * 4))
            separate.append(await four_at_once(server.port, DIFFERENT))

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
