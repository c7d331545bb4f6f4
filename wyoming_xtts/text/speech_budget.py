"""How much audio a segment's text can justify: the guard against XTTS babbling.

XTTS-v2 sometimes keeps generating after the text is spoken (mumbling, breathing, a made-up
language), worst on short input. A segment's audio is cut once it runs past what a slow
speaker would need for its text; the cut closes the engine's stream, so generation stops
there too.
"""

SLOWEST_CHARS_PER_SECOND = 6.0
"""Characters a slow speaker still manages per second in alphabetic languages (normal
speech is about 14)."""

_SLOWEST_BY_LANGUAGE = {"zh-cn": 2.0, "ja": 2.5, "ko": 2.5}
"""Characters per second for scripts with one syllable (or more) per character."""

MARGIN_S = 1.5
"""Allowance on top, for breaths and the pause XTTS leaves at the end."""


def max_speech_seconds(text: str, language: str, speed: float = 1.0) -> float:
    """The longest plausible reading of `text` in `language` at `speed`."""
    rate = _SLOWEST_BY_LANGUAGE.get(language, SLOWEST_CHARS_PER_SECOND)
    return (len(text) / rate + MARGIN_S) / speed
