"""`wyoming-xtts health`: a describe → info round trip, for Docker and monitoring.

Exit status 0 when the server answers with a TTS program that has at least one voice, 1
otherwise (with the reason on standard error).
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info

from ..core.settings import setting_from_environment

DEFAULT_TIMEOUT_S = 5.0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="wyoming-xtts health",
        description="Check that a wyoming-xtts server answers describe with its voices.",
    )
    parser.add_argument(
        "--uri",
        default=local_uri(setting_from_environment("uri")),
        help="server to ask (default: the one WYOMING_XTTS_URI configures, on this machine)",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        info = asyncio.run(asyncio.wait_for(_describe(args.uri), args.timeout))
    except TimeoutError:
        return _unhealthy(f"no info from {args.uri} within {args.timeout:g} s")
    except OSError as err:
        return _unhealthy(f"cannot connect to {args.uri}: {err.strerror or err}")
    if info is None:
        return _unhealthy(f"{args.uri} closed the connection without answering describe")
    programs = [program for program in info.tts if program.installed]
    if not programs:
        return _unhealthy(f"{args.uri} offers no text-to-speech program")
    voices = len(programs[0].voices)
    if not voices:
        return _unhealthy(f"{args.uri} has no usable voice (see the server log)")
    elapsed_ms = (time.monotonic() - started) * 1000
    print(f"ok: {programs[0].name} {programs[0].version}, {voices} voice(s), {elapsed_ms:.0f} ms")
    return 0


def local_uri(uri: str) -> str:
    """The address to reach a server listening on `uri` from the same machine."""
    return uri.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:").replace("tcp://:", "tcp://127.0.0.1:")


async def _describe(uri: str) -> Info | None:
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                return Info.from_event(event)
    return None


def _unhealthy(reason: str) -> int:
    print(f"unhealthy: {reason}", file=sys.stderr)
    return 1
