"""The Dockerfile and the Home Assistant add-on use only options the server has."""

import re
from pathlib import Path

import pytest

from wyoming_xtts.core.settings import parse_settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE_VALUES = {
    "ENGINE": "replicate",
    "URI": "tcp://0.0.0.0:10200",
    "DEVICE": "auto",
    "DEFAULT_LANGUAGE": "de",
    "DEFAULT_VOICE": "oma",
    "VOICES_DIR": "/voices",
    "DATA_DIR": "/data",
}


@pytest.mark.parametrize("path", ["Dockerfile", "homeassistant-addon/run.sh"])
def test_every_environment_variable_set_for_the_server_is_an_option(path: str) -> None:
    names = set(re.findall(r"WYOMING_XTTS_([A-Z_]+)", (REPO / path).read_text()))
    assert names, "the file configures the server through the environment"
    env = {f"WYOMING_XTTS_{name}": SAMPLE_VALUES.get(name, "1") for name in names}

    settings = parse_settings([], env)

    unknown = [name for name in names if name.lower() not in _option_names()]
    assert unknown == []
    assert settings.voices_dir.is_absolute()


def test_every_add_on_option_is_passed_to_the_server() -> None:
    config = (REPO / "homeassistant-addon" / "config.yaml").read_text()
    options = re.search(r"^options:\n((?:  .+\n)+)", config, re.MULTILINE)
    assert options
    names = re.findall(r"^  (\w+):", options.group(1), re.MULTILINE)
    run_script = (REPO / "homeassistant-addon" / "run.sh").read_text()

    assert names and all(f"'{name}'" in run_script for name in names)
    assert "discovery:\n  - wyoming" in config


def _option_names() -> set[str]:
    from wyoming_xtts.core.settings import Settings

    fields = {name for name in Settings.__dataclass_fields__}
    # Flags whose option name differs from the field they set.
    return fields | {"no_builtin_speakers", "no_language_detection", "zeroconf"}
