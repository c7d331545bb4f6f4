"""Command line entry point (`wyoming-xtts`, `python -m wyoming_xtts`)."""

import asyncio
import sys

from .core.engine import EngineUnavailableError
from .core.settings import COMMAND_NAMES, configure_logging, parse_settings
from .server import serve

EXIT_ENGINE_UNAVAILABLE = 2
"""Exit status when the model cannot be loaded or downloaded."""


def run() -> None:
    """Run a sub-command, or parse settings, configure logging and serve until interrupted."""
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command in COMMAND_NAMES:
        sys.exit(_sub_command(command, sys.argv[2:]))
    settings = parse_settings()
    configure_logging(settings)
    try:
        asyncio.run(serve(settings))
    except EngineUnavailableError as err:
        print(f"wyoming-xtts: {err}", file=sys.stderr)
        sys.exit(EXIT_ENGINE_UNAVAILABLE)
    except KeyboardInterrupt:
        pass


def _sub_command(name: str, argv: list[str]) -> int:
    # Imported on demand: `voice` and `health` must not pay for loading engines.
    if name == "say":
        from .commands.say import main
    elif name == "voice":
        from .commands.voice import main
    elif name == "model":
        from .commands.model import main
    else:
        from .commands.health import main
    return main(argv)


if __name__ == "__main__":
    run()
