"""Text arriving in arbitrary pieces → segments XTTS-v2 speaks well.

The pipeline of one reply: Markdown/emoji clean-up (`text_cleanup`), sentences, the language
of each sentence (`language_detection`), times/dates/units in words (`spoken_forms`), the
length limit of that language.

Sentence boundaries come from pysbd (rule-based, per language, handles "Dr.", "3.5", "e.g.",
ellipses and quotes). A sentence counts as complete only once a word of the next one has
arrived, so a boundary is never guessed from a prefix ("It costs 3." + "5 euros"). Segments are
kept within the per-language character limit (split at clause punctuation, else between
words) and fragments too short to speak well are merged with the next sentence, because XTTS
tends to babble on very short input.
"""

import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

import pysbd
from pysbd.languages import LANGUAGE_CODES

from .cleanup import SpeechTextCleaner
from .language_detection import ReplyLanguage
from .languages import XTTS_CHAR_LIMITS
from .pauses import PAUSE_SECONDS, Ending, pause_after
from .spoken_forms import speakable

MIN_SEGMENT_SHARE = 0.08
"""A segment shorter than this share of the language's limit (20 characters for English,
7 for Chinese) is merged with its neighbour."""

_SENTENCE_BREAK = re.compile(r"[.!?](?=\s|$)|[\u3002\uff01\uff1f]")
_CLAUSE_BREAK = re.compile(
    r"[,;:\u2013\u2014\uff0c\u3001\uff1b\uff1a](?=\s|$)|[\uff0c\u3001\uff1b\uff1a]"
)
_WHITESPACE = re.compile(r"\s+")
_PARAGRAPH_END = re.compile(r"\n[^\S\n]*\n\s*$")
_FALLBACK_SEGMENTER_LANGUAGE = "en"


@dataclass(frozen=True)
class Segment:
    """A piece of a reply to synthesize in one model call."""

    text: str
    """Cleaned text, within the language's character limit."""

    language: str
    """XTTS language code to speak it in."""

    pause_after: float = PAUSE_SECONDS[Ending.SENTENCE]
    """Seconds of silence after it at the voice's own pace, from how it ends (pauses.py)."""


@dataclass(frozen=True)
class SplitSentence:
    """A complete sentence (or a piece of one within the limits) from `SentenceStream`."""

    text: str
    """The sentence, whitespace collapsed."""

    paragraph_end: bool = False
    """A blank line came after it."""


async def reply_segments(
    pieces: AsyncIterable[str], language: ReplyLanguage, cleanup: bool = True
) -> AsyncGenerator[Segment, None]:
    """A reply arriving in pieces → cleaned segments, each in its language, as they complete.

    Sentences are found with the rules of the voice's first language; each is then spoken
    in the language it is written in, and split again if that language takes less text.
    `cleanup` removes Markdown, emoji and URLs first (not for SSML's text, which is no
    Markdown).
    """
    cleaner = SpeechTextCleaner() if cleanup else None
    sentences = SentenceStream(language.primary)
    async for piece in pieces:
        for sentence in sentences.push(cleaner.push(piece) if cleaner else piece):
            for segment in _in_its_language(sentence, language):
                yield segment
    rest = sentences.push(cleaner.finish()) if cleaner else []
    for sentence in rest + sentences.finish():
        for segment in _in_its_language(sentence, language):
            yield segment


def _in_its_language(sentence: SplitSentence, language: ReplyLanguage) -> list[Segment]:
    code = language.of(sentence.text)
    limit = XTTS_CHAR_LIMITS.get(code, XTTS_CHAR_LIMITS["en"])
    parts = split_long(speakable(sentence.text, code), limit)
    return [
        Segment(part, code, pause_after(part, sentence.paragraph_end and last))
        for last, part in zip(_last_flags(len(parts)), parts, strict=True)
    ]


def _last_flags(count: int) -> list[bool]:
    return [index == count - 1 for index in range(count)]


def segment_limits(language: str) -> tuple[int, int]:
    """(shortest, longest) segment in characters for an XTTS language code."""
    longest = XTTS_CHAR_LIMITS.get(language, XTTS_CHAR_LIMITS["en"])
    return max(4, round(longest * MIN_SEGMENT_SHARE)), longest


def is_speakable(text: str) -> bool:
    """True when the text holds at least one letter or digit."""
    return any(character.isalnum() for character in text)


class SentenceStream:
    """Incremental segmenter for one response: push text pieces, take finished segments."""

    def __init__(self, language: str) -> None:
        code = language.split("-")[0]
        self._segmenter = pysbd.Segmenter(
            language=code if code in LANGUAGE_CODES else _FALLBACK_SEGMENTER_LANGUAGE,
            clean=False,
            char_span=True,
        )
        self._min_chars, self._max_chars = segment_limits(language)
        self._buffer = ""
        self._held: SplitSentence | None = None

    def push(self, text: str) -> list[SplitSentence]:
        """Add a piece of text; return the segments that are now complete."""
        self._buffer += text
        spans = self._segmenter.segment(self._buffer)
        # The last sentence is complete only once the next has begun with a letter or digit:
        # a trailing "." may be the rest of an ellipsis still arriving.
        if len(spans) < 2 or not is_speakable(spans[-1].sent):
            return []
        complete = [span.sent for span in spans[:-1]]
        self._buffer = self._buffer[spans[-1].start :]
        return [segment for sentence in complete for segment in self._accept(sentence)]

    def finish(self) -> list[SplitSentence]:
        """The text is complete: return every remaining segment."""
        rest, self._buffer = self._buffer, ""
        segments = self._accept(rest)
        if self._held is not None:
            segments.append(self._held)
            self._held = None
        return segments

    def _accept(self, sentence: str) -> list[SplitSentence]:
        paragraph_end = bool(_PARAGRAPH_END.search(sentence))
        sentence = _WHITESPACE.sub(" ", sentence).strip()
        if not is_speakable(sentence):
            return []
        ready: list[SplitSentence] = []
        pieces = split_long(sentence, self._max_chars)
        for last, text in zip(_last_flags(len(pieces)), pieces, strict=True):
            piece = SplitSentence(text, paragraph_end and last)
            if self._held is not None:
                # Merged across a paragraph end too: a fragment alone makes XTTS babble.
                merged = _join(self._held.text, piece.text)
                if len(merged) <= self._max_chars:
                    piece = SplitSentence(merged, piece.paragraph_end)
                else:
                    ready.append(self._held)
                self._held = None
            if len(piece.text) < self._min_chars:
                self._held = piece
            else:
                ready.append(piece)
        return ready


def _join(first: str, second: str) -> str:
    # Chinese and Japanese put no space between sentences.
    separator = "" if _is_cjk(first[-1]) or _is_cjk(second[0]) else " "
    return f"{first}{separator}{second}"


def _is_cjk(character: str) -> bool:
    return "\u2e80" <= character <= "\u9fff" or "\uff00" <= character <= "\uffef"


def split_long(sentence: str, max_chars: int) -> list[str]:
    """Split a sentence longer than `max_chars` at clause punctuation, else between words."""
    pieces: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        floor = max_chars // 3
        cut = _last_break(_SENTENCE_BREAK, window, floor, max_chars) or _last_break(
            _CLAUSE_BREAK, window, floor, max_chars
        )
        if not cut:
            space = window.rfind(" ")
            cut = space if space >= floor else max_chars
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _last_break(breaks: re.Pattern[str], window: str, floor: int, ceiling: int) -> int:
    ends = [match.end() for match in breaks.finditer(window) if floor <= match.end() <= ceiling]
    return ends[-1] if ends else 0
