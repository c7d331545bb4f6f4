"""The languages XTTS-v2 speaks, and how much text it takes in one go for each."""

from collections.abc import Mapping
from types import MappingProxyType

# Characters per generation call above which XTTS-v2 quality drops (coqui-tts warns past
# these). Text is split into segments no longer than this before it reaches the model.
_XTTS_CHAR_LIMITS: dict[str, int] = {
    "en": 250,
    "de": 253,
    "fr": 273,
    "es": 239,
    "it": 213,
    "pt": 203,
    "pl": 224,
    "tr": 226,
    "ru": 182,
    "nl": 251,
    "cs": 186,
    "ar": 166,
    "zh-cn": 82,
    "hu": 224,
    "ko": 95,
    "ja": 71,
    "hi": 150,
}

XTTS_CHAR_LIMITS: Mapping[str, int] = MappingProxyType(_XTTS_CHAR_LIMITS)
"""XTTS-v2 language code → the longest segment, in characters, sent to the model."""

XTTS_LANGUAGES: tuple[str, ...] = tuple(_XTTS_CHAR_LIMITS)
"""Every language code XTTS-v2 accepts, in the model's own spelling (`zh-cn`)."""

# Spellings people (and Home Assistant) use for the one XTTS code that is not a bare tag.
_ALIASES = {"zh": "zh-cn", "zh-hans": "zh-cn", "zh-cn": "zh-cn"}


def normalize_language(tag: str) -> str | None:
    """Return the XTTS code for a language tag (`en`, `en-US`, `zh-CN`), or None if unknown."""
    lowered = tag.strip().lower().replace("_", "-")
    if lowered in _XTTS_CHAR_LIMITS:
        return lowered
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    primary = lowered.split("-", 1)[0]
    if primary == "zh":
        return "zh-cn"
    return primary if primary in _XTTS_CHAR_LIMITS else None


def advertised_tag(code: str) -> str:
    """The tag Home Assistant's pipelines use for an XTTS code (`zh-cn` → `zh-CN`)."""
    primary, _, region = code.partition("-")
    return f"{primary}-{region.upper()}" if region else primary
