"""Where a spoken sentence's time goes in the server: the GPT's steps or the HiFi-GAN decoder.

A real Wyoming server in the benchmark's process (`in_process.py`) speaks the same long
sentence several times to one client; the engine's own debug line for each sentence ("Spoke
...": its audio, the time it took and the part of it spent decoding) gives the split. The rest
of a sentence's time is its GPT steps (prompt and tokens), sampling and the token loop. The
first request conditions the voice and is left out.

    .venv/bin/python -m benchmarks.time_split --full-size [--runs 3] [--precision auto]
        [--decoder-precision bf16]
"""

import argparse
import asyncio
import logging
import statistics

from .in_process import add_model_options, in_process_server, timed_synthesize

LONG = "The garage door has been open for twenty minutes now."


class _SentenceLog(logging.Handler):
    """The engine's "Spoke ..." records: (audio s, took s, decoding s) each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sentences: list[tuple[float, float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Spoke ") and isinstance(record.args, tuple):
            _, audio, took, _, decoding, _ = record.args
            self.sentences.append((float(audio), float(took), float(decoding)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_options(parser)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--decoder-precision", default="fp32", choices=("fp32", "bf16"))
    arguments = parser.parse_args()
    handler = _SentenceLog()
    logger = logging.getLogger("wyoming_xtts.engines.local.xtts_stream")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the table says it; the lines would repeat it
    async with in_process_server(
        arguments, decoder_precision=arguments.decoder_precision
    ) as server:
        await timed_synthesize(server.port, LONG)  # conditions the voice
        handler.sentences.clear()
        for _ in range(arguments.runs):
            await timed_synthesize(server.port, LONG)
    print(
        f"{arguments.runs} runs of one long sentence, one client; RTF = seconds per second of audio"
    )
    print(f"{'run':>4} {'audio s':>8} {'RTF':>6} {'decoder':>8} {'the rest':>9}")
    for run, (audio, took, decoding) in enumerate(handler.sentences, 1):
        print(
            f"{run:4} {audio:8.2f} {took / audio:6.3f} {decoding / audio:8.3f} "
            f"{(took - decoding) / audio:9.3f}"
        )
    ratios = [
        (took / audio, decoding / audio, (took - decoding) / audio)
        for audio, took, decoding in handler.sentences
    ]
    rtf, decoder, rest = (statistics.median(column) for column in zip(*ratios, strict=True))
    print(
        f"median: RTF {rtf:.3f} = decoder {decoder:.3f} "
        f"+ GPT steps, sampling and the loop {rest:.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
