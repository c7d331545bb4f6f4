"""The `wyoming-xtts` sub-commands; without one, `wyoming-xtts` runs the server."""

import argparse
from collections.abc import Callable


def options_anywhere(
    declare: Callable[[argparse.ArgumentParser], object],
) -> argparse.ArgumentParser:
    """A parent parser holding a command's own options, for the command's parser and each of
    its sub-commands (`parents=[...]`), so that `voice list --voices-dir X` works as well as
    `voice --voices-dir X list`.

    Defaults are suppressed, so that a value given before the sub-command is not reset by the
    sub-command's copy of the option: read each with `getattr(args, name, default)`.
    """
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    declare(parent)
    return parent
