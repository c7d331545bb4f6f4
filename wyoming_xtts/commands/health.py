"""`wyoming-xtts health`: can the server speak? For Docker's HEALTHCHECK and monitoring.

A describe → info round trip (the port answers, a TTS program with at least one voice), then
the server's own health report (`doors/wyoming/health.py`): a model that failed to load or a
provider refusing the credentials is unhealthy; a model unloaded on purpose (`--unload-after`)
or a primary engine replaced by its fallback is healthy, and says so. Exit status 0 when
healthy, 1 otherwise (with the reason on standard error).
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info

from ..core.settings import setting_from_environment
from ..doors.wyoming.health import HealthQuestion, HealthReport

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
        info, report = asyncio.run(asyncio.wait_for(_ask(args.uri), args.timeout))
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
    if report is None:
        return _unhealthy(f"{args.uri} closed the connection without a health report")
    if not report.healthy:
        return _unhealthy(f"{args.uri} cannot speak: {report.detail or report.readiness}")
    elapsed_ms = (time.monotonic() - started) * 1000
    state = "" if report.readiness == "ready" else f", {report.readiness}: {report.detail}"
    print(
        f"ok: {programs[0].name} {programs[0].version}, {voices} voice(s){state}, "
        f"{elapsed_ms:.0f} ms"
    )
    return 0


def local_uri(uri: str) -> str:
    """The address to reach a server listening on `uri` from the same machine."""
    return uri.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:").replace("tcp://:", "tcp://127.0.0.1:")


async def _ask(uri: str) -> tuple[Info | None, HealthReport | None]:
    """The server's `info` and its health report (None where the connection closed first)."""
    async with AsyncClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        await client.write_event(HealthQuestion().event())
        info = None
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                info = Info.from_event(event)
            elif HealthReport.is_type(event.type):
                return info, HealthReport.from_event(event)
    return info, None


def _unhealthy(reason: str) -> int:
    print(f"unhealthy: {reason}", file=sys.stderr)
    return 1
