"""What one option of the server is (`Option`), and the readers that turn an option's text
into its value with one sentence for whatever is wrong (`SettingsError`). The options
themselves are declared in options.py."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..text.languages import XTTS_LANGUAGES, normalize_language
from .generation import NumberRange, OutOfRangeError
from .networks import parse_networks

ENV_PREFIX = "WYOMING_XTTS_"
"""Prefix of the environment variables that set options."""


class SettingsError(ValueError):
    """An option value that cannot work; the message says which and why."""


@dataclass(frozen=True)
class Option:
    """One option of the server (and of `say`, which takes them all)."""

    field: str
    """The `Settings` field it sets."""

    meaning: str
    """What it does, in one sentence or two: `--help` and the manual's table say this, and
    nothing else in the code does (`Settings` documents only what code must know)."""

    parse: Callable[[str, str], Any] | None = None
    """Turns the text given into the field's value, or raises `SettingsError`; called with the
    option's command-line name and the text. None: the text as it is."""

    switch: bool = False
    """Takes no value: given (or its variable set to 1, true, yes or on) means on."""

    inverted: bool = False
    """A switch that turns its field off: `--no-builtin-speakers` sets `builtin_speakers`."""

    flag: str | None = None
    """Command-line name when it is not the field's own (`zeroconf` for `zeroconf_name`)."""

    choices: tuple[str, ...] = ()
    """The only values accepted, when there is such a list."""

    when_unset: str | None = None
    """What the manual says the default is when the field's default is None."""

    bare_value: Callable[[], str] | None = None
    """The value when the option is given with no value (`--zeroconf` alone)."""

    addon: str | None = None
    """Its name in the Home Assistant add-on's options (`homeassistant-addon/config.yaml`)."""

    also_on_when: str | None = None
    """Another environment variable that turns this switch on when set to exactly "1"."""

    @property
    def name(self) -> str:
        """The command-line name, without the dashes."""
        return self.flag or ("no-" if self.inverted else "") + self.field.replace("_", "-")

    @property
    def environment(self) -> str:
        """The environment variable that sets it."""
        return ENV_PREFIX + self.name.upper().replace("-", "_")


def in_range(limits: NumberRange) -> Callable[[str, str], Any]:
    def parse(name: str, text: str) -> int | float:
        try:
            return limits.parse(f"--{name}", text)
        except OutOfRangeError as err:
            raise SettingsError(str(err)) from None

    return parse


def whole(low: int, high: int) -> Callable[[str, str], int]:
    return in_range(NumberRange(int, low, high))


def seconds(low: float, high: float) -> Callable[[str, str], float]:
    return in_range(NumberRange(float, low, high, unit="seconds"))


def minutes(low: float, high: float) -> Callable[[str, str], float]:
    return in_range(NumberRange(float, low, high, unit="minutes"))


def matching(pattern: re.Pattern[str], shape: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        if not pattern.match(text):
            raise SettingsError(f"--{name} {text!r} must {shape}")
        return text

    return parse


def unless_empty(parse: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    """`parse` for a non-empty text; an empty one (a variable set to "") means unset."""
    return lambda name, text: parse(name, text) if text else None


def path_or_none(name: str, text: str) -> Path | None:
    return Path(text).expanduser() if text else None


def text_or_none(name: str, text: str) -> str | None:
    return text or None


def language(name: str, text: str) -> str:
    language = normalize_language(text)
    if language is None:
        raise SettingsError(
            f"--{name} {text!r} is not one XTTS-v2 speaks ({', '.join(XTTS_LANGUAGES)})"
        )
    return language


def networks(name: str, text: str) -> str:
    try:
        parse_networks(text)
    except ValueError as err:
        raise SettingsError(f"--{name}: {err}") from None
    return text.strip()
