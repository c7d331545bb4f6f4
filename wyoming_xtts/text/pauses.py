"""The silence after a segment, from how it ends: a paragraph longer than a sentence, a
sentence longer than a clause.

XTTS-v2 ends a segment without a pause of its own, and inside a segment it pauses at commas
and full stops by itself; these pauses are only inserted where the text was cut into
segments. They are for a voice's own pace: the speaking service divides them by the voice's
`speed`.
"""

import re
from enum import StrEnum


class Ending(StrEnum):
    """How a segment ends, as far as the pause after it goes."""

    PARAGRAPH = "paragraph"
    """A blank line follows it (a new paragraph, or a heading or list ended by one)."""

    TRAILING_OFF = "trailing-off"
    """An ellipsis: the speaker trails off ("Well…")."""

    SENTENCE = "sentence"
    """A full stop, question or exclamation mark (also a heading or list item's end)."""

    CLAUSE = "clause"
    """A comma, semicolon, colon or dash: a long sentence cut at a clause."""

    NONE = "none"
    """No punctuation: a sentence too long for the model, cut between words."""


PAUSE_SECONDS: dict[Ending, float] = {
    Ending.PARAGRAPH: 0.6,
    Ending.TRAILING_OFF: 0.45,
    Ending.SENTENCE: 0.25,
    Ending.CLAUSE: 0.12,
    Ending.NONE: 0.0,
}
"""Silence after each kind of ending, at the voice's own pace (speed 1.0)."""

_TRAILING_OFF = re.compile(r"(\.\.\.|…)[\"'”’)\]]*$")
_SENTENCE = re.compile(r"[.!?\u3002\uff01\uff1f][\"'”’)\]]*$")
_CLAUSE = re.compile(r"[,;:\u2013\u2014\uff0c\u3001\uff1b\uff1a-][\"'”’)\]]*$")


def ending_of(text: str, paragraph_end: bool) -> Ending:
    """The kind of ending of a segment's text."""
    if paragraph_end:
        return Ending.PARAGRAPH
    text = text.rstrip()
    if _TRAILING_OFF.search(text):
        return Ending.TRAILING_OFF
    if _SENTENCE.search(text):
        return Ending.SENTENCE
    if _CLAUSE.search(text):
        return Ending.CLAUSE
    return Ending.NONE


def pause_after(text: str, paragraph_end: bool = False) -> float:
    """Seconds of silence after a segment with this text, at speed 1.0."""
    return PAUSE_SECONDS[ending_of(text, paragraph_end)]
