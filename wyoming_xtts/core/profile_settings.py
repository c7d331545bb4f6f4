"""What a voice profile's `voice.toml` may say, read and checked: one sentence per fault.

The voice library (voices.py) reads profiles with these; the profile writer (profiles.py)
refuses a change with the same checks before it reaches the disk.
"""

import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..text.languages import XTTS_LANGUAGES, normalize_language
from .generation import GENERATION_LIMITS, GenerationSettings, OutOfRangeError

PROFILE_FILE = "voice.toml"
"""Name of the settings file inside a profile directory."""

_PUBLIC_URL = re.compile(r"^https?://[^\s/]+/\S*$")
"""What a `speaker_url` must look like: a cloud provider fetches it from the internet."""

MAX_FALLBACK_VOICE_CHARS = 200
"""Longest `fallback_voice`: a voice name of another server, not a document."""

TOP_LEVEL_KEYS = frozenset(
    {
        "description",
        "language",
        "languages",
        "detect_language",
        "synthesis",
        "speaker_url",
        "cleanup_voice",
        "default",
        "styles",
        "fallback_voice",
    }
)
STYLE_KEYS = frozenset(
    {"description", "synthesis", "speaker_url", "cleanup_voice", "fallback_voice"}
)
"""What a `[styles.NAME]` table may set."""


def settings_errors(settings: dict[str, Any], default_language: str) -> list[str]:
    """What is wrong with a profile's settings (the contents of a voice.toml), as sentences.

    The same checks the library makes when it reads a profile, for writers that want to
    refuse a change before it reaches the disk.
    """
    errors: list[str] = []
    unknown = sorted(set(settings) - TOP_LEVEL_KEYS)
    if unknown:
        errors.append(f"{PROFILE_FILE}: unknown setting(s) {', '.join(unknown)}.")
    read_description(settings, "", errors)
    read_languages(settings, default_language, errors)
    read_generation(settings.get("synthesis", {}), errors)
    read_fallback_voice(settings, errors)
    return errors


def provider_settings(
    table: dict[str, Any], where: str, default_cleanup: bool | None, errors: list[str]
) -> tuple[str | None, bool | None]:
    """`speaker_url` and `cleanup_voice` of a profile or a style, checked."""
    speaker_url = table.get("speaker_url")
    if speaker_url is not None and not (
        isinstance(speaker_url, str) and _PUBLIC_URL.match(speaker_url)
    ):
        errors.append(f"{where}: speaker_url must be an http:// or https:// URL.")
        speaker_url = None
    cleanup_voice = table.get("cleanup_voice", default_cleanup)
    if cleanup_voice is not None and not isinstance(cleanup_voice, bool):
        errors.append(f"{where}: cleanup_voice must be true or false.")
        cleanup_voice = default_cleanup
    return speaker_url, cleanup_voice


def read_fallback_voice(settings: dict[str, Any], errors: list[str]) -> str | None:
    """`fallback_voice`: the voice a Wyoming fallback server (`--fallback-engine tcp://…`)
    speaks this profile in; None: that server's default voice."""
    name = settings.get("fallback_voice")
    if name is None:
        return None
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_FALLBACK_VOICE_CHARS
        or not name.isprintable()
    ):
        errors.append(
            f"{PROFILE_FILE}: fallback_voice must be the name of a voice of the fallback "
            f"server, at most {MAX_FALLBACK_VOICE_CHARS} characters."
        )
        return None
    return name.strip()


def read_description(settings: dict[str, Any], default: str, errors: list[str]) -> str:
    description = settings.get("description")
    if description is None:
        return default
    if not isinstance(description, str) or not description.strip():
        errors.append(f"{PROFILE_FILE}: description must be a non-empty string.")
        return default
    return description


def read_settings_file(path: Path, errors: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        errors.append(f"{PROFILE_FILE}: is not valid TOML ({err}).")
        return {}
    except OSError as err:
        errors.append(f"{PROFILE_FILE}: cannot be read ({err.strerror}).")
        return {}
    unknown = sorted(set(settings) - TOP_LEVEL_KEYS)
    if unknown:
        errors.append(
            f"{PROFILE_FILE}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(TOP_LEVEL_KEYS))}."
        )
    return settings


def read_languages(settings: dict[str, Any], default: str, errors: list[str]) -> tuple[str, ...]:
    if "language" in settings and "languages" in settings:
        errors.append(f"{PROFILE_FILE}: set either language or languages, not both.")
    raw = settings.get("languages", settings.get("language", default))
    tags = [raw] if isinstance(raw, str) else raw
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        errors.append(f"{PROFILE_FILE}: languages must be a language code or a list of them.")
        return (default,)
    codes: list[str] = []
    for tag in tags:
        code = normalize_language(tag)
        if code is None:
            errors.append(
                f"{PROFILE_FILE}: XTTS-v2 cannot speak language {tag!r}; "
                f"it speaks {', '.join(XTTS_LANGUAGES)}."
            )
        elif code not in codes:
            codes.append(code)
    return tuple(codes) or (default,)


def read_generation(table: Any, errors: list[str]) -> GenerationSettings:
    if not isinstance(table, dict):
        errors.append(f"{PROFILE_FILE}: [synthesis] must be a table of settings.")
        return GenerationSettings()
    known = {f.name for f in fields(GenerationSettings)}
    unknown = sorted(set(table) - known)
    if unknown:
        errors.append(
            f"{PROFILE_FILE}: unknown [synthesis] setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}."
        )
    values: dict[str, Any] = {}
    for name in known & set(table):
        try:
            values[name] = GENERATION_LIMITS[name].check(f"[synthesis] {name}", table[name])
        except OutOfRangeError as err:
            errors.append(f"{PROFILE_FILE}: {err}")
    return GenerationSettings(**values)
