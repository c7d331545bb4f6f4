"""Command line entry point (`wyoming-xtts`, `python -m wyoming_xtts`)."""

import asyncio
import logging
import sys

from .engines.base import EngineUnavailableError
from .server import serve
from .settings import parse_settings

EXIT_ENGINE_UNAVAILABLE = 2
"""Exit status when the model cannot be loaded or downloaded."""


def run() -> None:
    """Parse settings, configure logging and serve until interrupted."""
    settings = parse_settings()
    # Logs go to stderr: with --uri stdio:// stdout carries the protocol.
    logging.basicConfig(level=settings.log_level, format=settings.log_format, stream=sys.stderr)
    # One line per provider HTTP request is only worth reading when debugging; httpcore's
    # connection traces never are.
    logging.getLogger("httpx").setLevel(logging.DEBUG if settings.debug else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(settings))
    except EngineUnavailableError as err:
        print(f"wyoming-xtts: {err}", file=sys.stderr)
        sys.exit(EXIT_ENGINE_UNAVAILABLE)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    run()
