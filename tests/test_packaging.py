"""The Dockerfile and the Home Assistant add-on use only options the server has, every
option is declared once, and the manual's options table (docs/options.md) is the declared one."""

import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from wyoming_xtts.core.option_exports import addon_environment, options_table
from wyoming_xtts.core.options import ADDON_SECRETS, OPTIONS
from wyoming_xtts.core.settings import Settings, parse_settings

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


def test_every_settings_field_has_exactly_one_option() -> None:
    declared = [option.field for option in OPTIONS]

    assert sorted(declared) == sorted(field.name for field in fields(Settings))
    assert len({option.name for option in OPTIONS}) == len(OPTIONS)


def test_the_manuals_options_table_is_the_declared_one() -> None:
    manual = (REPO / "docs" / "options.md").read_text()

    assert options_table(Settings()) in manual, (
        "docs/options.md's options table differs from the declared options: paste the output "
        "of `python -m wyoming_xtts.core.option_exports table`"
    )


@pytest.mark.parametrize("path", ["Dockerfile", "homeassistant-addon/run.sh"])
def test_every_environment_variable_set_for_the_server_is_an_option(path: str) -> None:
    names = set(re.findall(r"WYOMING_XTTS_([A-Z_]+)", (REPO / path).read_text()))
    assert names, "the file configures the server through the environment"
    env = {f"WYOMING_XTTS_{name}": SAMPLE_VALUES.get(name, "1") for name in names}

    settings = parse_settings([], env)

    assert names <= {option.environment.removeprefix("WYOMING_XTTS_") for option in OPTIONS}
    assert settings.voices_dir.is_absolute()


def test_every_add_on_option_reaches_the_server() -> None:
    config = (REPO / "homeassistant-addon" / "config.yaml").read_text()
    options = re.search(r"^options:\n((?:  .+\n)+)", config, re.MULTILINE)
    assert options
    schema = re.search(r"^schema:\n((?:  .+\n)+)", config, re.MULTILINE)
    assert schema
    names = set(re.findall(r"^  (\w+):", options.group(1), re.MULTILINE))
    # An optional option (`int?`) has no default, so Home Assistant wants it left out of
    # `options`: it is named in the schema only.
    optional = set(re.findall(r"^  (\w+): int\(.*\)\?$", schema.group(1), re.MULTILINE))

    assert names.isdisjoint(optional)
    assert names | optional == {option.addon for option in OPTIONS if option.addon} | set(
        ADDON_SECRETS
    )
    assert "discovery:\n  - wyoming" in config


def test_add_on_options_become_the_servers_settings(tmp_path: Path) -> None:
    addon = {
        "engine": "replicate",
        "voices_dir": "/share/wyoming-xtts/voices",
        "agree_cpml": True,
        "device": "cpu",
        "precision": "int8",
        "unload_after": 7.5,
        "max_waiting": 2,
        "default_voice": "",
        "default_language": "de",
        "replicate_api_token": "r8_secret",
        "pixazo_api_key": "",
        "cleanup_voice": True,
        "language_detection": False,
        "debug_logging": False,
    }
    (tmp_path / "options.json").write_text(json.dumps(addon))
    printed = subprocess.run(
        [sys.executable, "-m", "wyoming_xtts.core.option_exports", "addon-environment"]
        + [str(tmp_path / "options.json")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    environment = addon_environment(addon)
    settings = parse_settings([], environment)

    assert printed.splitlines() == [f"export {k}={v}" for k, v in environment.items()]
    assert environment["REPLICATE_API_TOKEN"] == "r8_secret"
    assert "PIXAZO_API_KEY" not in environment
    assert settings == Settings(
        engine="replicate",
        voices_dir=Path("/share/wyoming-xtts/voices"),
        agree_cpml=True,
        device="cpu",
        precision="int8",
        unload_after=7.5,
        max_waiting=2,
        default_language="de",
        cleanup_voice=True,
        language_detection=False,
    )
