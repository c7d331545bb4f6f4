"""`wyoming-xtts model download|info`: get the released XTTS-v2, or see what a checkpoint is.

`download` needs the CPML accepted (`--agree-cpml`, `COQUI_TOS_AGREED=1`, or `y` at the
prompt), shows a progress bar, resumes an interrupted download, checks each file's SHA-256
against the hub's record, and moves the model into place only once it is complete.
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.engine import EngineUnavailableError
from ..core.settings import setting_from_environment
from ..engines.local.model_files import (
    REQUIRED_FILES,
    SPEAKERS_FILE,
    ensure_release_model,
    missing_files,
    release_model_dir,
)
from . import options_anywhere

EXIT_PROBLEM = 1
EXIT_UNAVAILABLE = 2


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    data_dir = Path(getattr(args, "data_dir", setting_from_environment("data_dir"))).expanduser()

    if args.action == "download":
        accepted = args.agree_cpml or setting_from_environment("agree_cpml")
        try:
            directory = ensure_release_model(data_dir, accepted)
        except EngineUnavailableError as err:
            print(f"wyoming-xtts: {err}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        print(f"XTTS-v2 is ready in {directory}.")
        return 0
    return _info(args.model_dir or release_model_dir(data_dir))


def _parser() -> argparse.ArgumentParser:
    shared = options_anywhere(
        lambda parser: parser.add_argument(
            "--data-dir",
            help="where the released model is kept, under models/ "
            f"(default: {setting_from_environment('data_dir')})",
        )
    )
    parser = argparse.ArgumentParser(
        prog="wyoming-xtts model", description=__doc__.split("\n")[0], parents=[shared]
    )
    actions = parser.add_subparsers(dest="action", required=True)
    download = actions.add_parser(
        "download", parents=[shared], help="download the released XTTS-v2 (1.9 GB)"
    )
    download.add_argument("--agree-cpml", action="store_true", help="accept the CPML licence")
    info = actions.add_parser("info", parents=[shared], help="describe a checkpoint directory")
    info.add_argument("--model-dir", type=Path, help="checkpoint (default: the downloaded one)")
    return parser


def _info(directory: Path) -> int:
    if not directory.is_dir():
        print(f"No checkpoint at {directory}: run wyoming-xtts model download.", file=sys.stderr)
        return EXIT_PROBLEM
    missing = missing_files(directory)
    print(f"checkpoint: {directory}")
    for name in (*REQUIRED_FILES, SPEAKERS_FILE):
        path = directory / name
        size = f"{path.stat().st_size / 1e6:,.1f} MB" if path.is_file() else "missing"
        print(f"  {name:20} {size}")
    if missing:
        print(f"not usable: {', '.join(missing)} missing", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as err:
        print(f"not usable: config.json cannot be read ({err})", file=sys.stderr)
        return EXIT_PROBLEM
    model_args = config.get("model_args", {})
    print(
        f"  model: {config.get('model', '?')}, GPT {model_args.get('gpt_layers', '?')} layers "
        f"x {model_args.get('gpt_n_model_channels', '?')}"
    )
    print(f"  languages: {' '.join(config.get('languages', []))}")
    print(f"  writable: {'yes' if os.access(directory / 'model.pth', os.W_OK) else 'no'}")
    licence = directory / "cpml-accepted.txt"
    print(
        f"  licence: {'CPML accepted at download' if licence.is_file() else 'see where it came from'}"
    )
    return 0
