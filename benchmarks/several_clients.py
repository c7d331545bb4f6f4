"""Several clients at once: one announcement to every room, and different sentences sharing
the model's steps.

A real Wyoming server in this process over a checkpoint (`--model-dir`, a random checkpoint
of the released size with `--full-size`, else the test suite's tiny one), started in each run
twice, one after the other: generating up to four sentences together (`--batch-sentences 4`,
the default: one GPT step for all of them) and taking them in turns (`--batch-sentences 1`).
Each measures: one client alone; four clients asking at the same moment for the same
announcement (synthesized once, heard by all); four clients asking for four different
sentences. Prints medians over the runs and ratios measured in the same runs.

    .venv/bin/python -m benchmarks.several_clients [--runs 3] [--full-size] [--precision auto]
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
BATCHED, TURNS = "batched", "turns"


async def at_once(port: int, texts: tuple[str, ...]) -> tuple[float, float]:
    """The last client's first audio and the moment all are done."""
    started = time.monotonic()
    results = await asyncio.gather(*(timed_synthesize(port, text, started) for text in texts))
    return max(first for first, _ in results), max(done for _, done in results)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    add_model_options(parser)
    arguments = parser.parse_args()

    scenarios = {
        "one client": (DIFFERENT[1],),
        "same announcement x4": (SAME,) * 4,
        "four sentences": DIFFERENT,
    }
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(arguments.runs):
        for mode, batch in ((BATCHED, 4), (TURNS, 1)):
            # One server at a time: two idle model threads in one process would each keep
            # a team of PyTorch worker threads competing for the same cores.
            async with in_process_server(
                arguments, audio_cache_mb=0, batch_sentences=batch
            ) as server:
                await timed_synthesize(server.port, SAME)  # conditioning, outside the figures
                for scenario, texts in scenarios.items():
                    figures.setdefault((scenario, mode), []).append(
                        await at_once(server.port, texts)
                    )

    def median(scenario: str, mode: str, index: int) -> float:
        return statistics.median(run[index] for run in figures[(scenario, mode)])

    print(f"median of {arguments.runs} runs, precision {arguments.precision}")
    print(f"{'':42}{BATCHED:>9}{TURNS:>9}{'batched/turns':>15}")
    for scenario in scenarios:
        for label, index in (("last first audio (s)", 0), ("all done (s)", 1)):
            batched, turns = median(scenario, BATCHED, index), median(scenario, TURNS, index)
            print(f"{scenario + ': ' + label:42}{batched:9.2f}{turns:9.2f}{batched / turns:14.2f}x")
    for mode in (BATCHED, TURNS):
        ratio = statistics.median(
            four[1] / one[1]
            for four, one in zip(
                figures[("four sentences", mode)], figures[("one client", mode)], strict=True
            )
        )
        print(f"four sentences all done / one client done, {mode}: {ratio:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
