"""`wyoming-xtts say`: speak a text in a voice to a WAV file, without Home Assistant.

It loads the same engine with the same options as the server and goes through the same
synthesis service, so what it produces is what Home Assistant would hear.
"""

import argparse
import asyncio
import sys
import time
import wave
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import BinaryIO

from ..core.engine import EngineUnavailableError
from ..core.errors import SpeechError
from ..core.settings import Settings, configure_logging, parse_command
from ..core.speaking import whole_text
from ..server import build_core, create_engine
from ..text.markup import TextFormat

EXIT_SPEECH_FAILED = 1
EXIT_ENGINE_UNAVAILABLE = 2


def main(argv: Sequence[str]) -> int:
    settings, args = parse_command(
        argv,
        prog="wyoming-xtts say",
        description="Speak TEXT in a voice and write a WAV file (or standard output with -o -).",
        extra=_arguments,
    )
    configure_logging(settings)
    text = " ".join(args.text) if args.text else sys.stdin.read()
    started = time.monotonic()
    try:
        text_format = TextFormat.SSML if args.ssml else TextFormat.TEXT
        pcm, sample_rate = asyncio.run(
            _synthesize(settings, args.voice, text, args.style, text_format)
        )
    except EngineUnavailableError as err:
        print(f"wyoming-xtts: {err}", file=sys.stderr)
        return EXIT_ENGINE_UNAVAILABLE
    except SpeechError as err:
        print(f"wyoming-xtts: {err.message} ({err.code})", file=sys.stderr)
        return EXIT_SPEECH_FAILED
    if args.output == "-":
        _write_wav(sys.stdout.buffer, pcm, sample_rate)
        sys.stdout.buffer.flush()
    else:
        with Path(args.output).open("wb") as file:
            _write_wav(file, pcm, sample_rate)
    where = "standard output" if args.output == "-" else args.output
    _progress(
        f"Wrote {len(pcm) / 2 / sample_rate:.1f} s of audio to {where} "
        f"in {time.monotonic() - started:.1f} s."
    )
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="*", help="what to say (default: read standard input)")
    parser.add_argument(
        "--voice", help="voice profile or built-in speaker (default: as the server)"
    )
    parser.add_argument("--style", help="a speaking style of the voice (Wyoming's speaker)")
    parser.add_argument(
        "--ssml", action="store_true", help="the text is SSML (see docs/voices.md, SSML)"
    )
    parser.add_argument(
        "-o", "--output", default="say.wav", help="WAV file to write, or - for standard output"
    )


async def _synthesize(
    settings: Settings,
    voice_name: str | None,
    text: str,
    style: str | None = None,
    text_format: TextFormat = TextFormat.TEXT,
) -> tuple[bytes, int]:
    """16-bit mono PCM of `text` and its sample rate, through the server's own service."""
    _progress(f"Loading the {settings.engine} engine ...")
    engine = create_engine(settings)
    await engine.start()
    try:
        core = build_core(settings, engine)
        voice = await core.catalogue.resolve_voice(voice_name, style)
        _progress(
            f"Speaking as {voice.name!r} (a profile's first use computes its conditioning) ..."
        )
        speech = core.speaking.speak(whole_text(text), voice, text_format)
        async with aclosing(speech) as chunks:
            pcm = b"".join([chunk async for chunk in chunks])
        return pcm, core.speaking.sample_rate
    finally:
        await engine.close()


def _write_wav(file: BinaryIO, pcm: bytes, sample_rate: int) -> None:
    with wave.open(file, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
