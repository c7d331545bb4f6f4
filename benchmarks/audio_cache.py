"""First audio of a repeated announcement: spoken by the model, then from the audio cache.

A real Wyoming server in this process over the local engine (`--model-dir`, `--full-size`,
else the test suite's tiny random checkpoint), a voice with a `seed`, and a client asking for
the same announcement again and again with a fresh audio cache each round: the first request
of a round is spoken by the model, the next ones come from the cache. Prints medians of the
time to the first `audio-chunk` and to `audio-stop`, and their ratios.

    .venv/bin/python -m benchmarks.audio_cache [--runs 10] [--model-dir DIR]
"""

import argparse
import asyncio
import shutil
import statistics

from .in_process import add_model_options, in_process_server, timed_synthesize

ANNOUNCEMENT = "The washing machine is done."


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    add_model_options(parser)
    arguments = parser.parse_args()

    spoken: list[tuple[float, float]] = []
    cached: list[tuple[float, float]] = []
    seeded = 'languages = ["en"]\n[synthesis]\nseed = 7\n'
    async with in_process_server(arguments, seeded) as server:
        await timed_synthesize(server.port, ANNOUNCEMENT)  # conditioning, outside the figures
        for _ in range(arguments.runs):
            shutil.rmtree(server.data_dir / "audio-cache", ignore_errors=True)
            spoken.append(await timed_synthesize(server.port, ANNOUNCEMENT))
            cached.append(await timed_synthesize(server.port, ANNOUNCEMENT))

    for label, index in (("first audio", 0), ("audio-stop", 1)):
        model = statistics.median(run[index] for run in spoken) * 1000
        cache = statistics.median(run[index] for run in cached) * 1000
        print(
            f"{label:12}  model {model:8.1f} ms   cache {cache:6.1f} ms   ratio {cache / model:.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
