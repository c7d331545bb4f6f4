"""What the declared options (`OPTIONS`) and the settings' defaults (`Settings`) give the
world outside the parser: the options table of the manual (docs/options.md, compared by a
test) and the environment the Home Assistant add-on's options stand for (run.sh).

    python -m wyoming_xtts.core.option_exports table
    python -m wyoming_xtts.core.option_exports addon-environment OPTIONS.JSON
"""

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from .options import ADDON_SECRETS, OPTIONS, SECRET_VARIABLES
from .settings import Settings


def options_table(defaults: Settings) -> str:
    """The manual's options table, in Markdown."""
    rows = ["| Option | Default | Meaning |", "|---|---|---|"]
    for option in OPTIONS:
        default = getattr(defaults, option.field)
        if option.switch:
            shown = "off"
        elif option.when_unset is not None and default in (None, ""):
            shown = option.when_unset
        else:
            shown = f"`{default:g}`" if isinstance(default, float) else f"`{default}`"
        name = f"--{option.name}" + (" [NAME]" if option.bare_value else "")
        rows.append(f"| `{name}` | {shown} | {option.meaning} |")
    rows.append("| `--version` | | Print the version and exit |")
    return "\n".join(rows) + "\n"


def addon_environment(addon_options: dict[str, Any]) -> dict[str, str]:
    """The environment a Home Assistant add-on's options stand for (see run.sh)."""
    environment: dict[str, str] = {}
    for option in OPTIONS:
        if option.addon is None or option.addon not in addon_options:
            continue
        value = addon_options[option.addon]
        if option.switch:
            if bool(value) != option.inverted:
                environment[option.environment] = "1"
        elif value not in (None, ""):
            environment[option.environment] = str(value)
    for name, provider in ADDON_SECRETS.items():
        if addon_options.get(name):
            environment[SECRET_VARIABLES[provider]] = str(addon_options[name])
    return environment


def _main(argv: list[str]) -> int:
    if argv[:1] == ["table"]:
        print(options_table(Settings()), end="")
        return 0
    if len(argv) == 2 and argv[0] == "addon-environment":
        options = json.loads(Path(argv[1]).read_text())
        for name, value in addon_environment(options).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
