"""SSML, read as it arrives: what to say, in which voice, language and pace, and where to pause.

The supported subset (docs/voices.md, "SSML"):

- `<speak>` (the root; `xml:lang` sets the language), `<p>`, `<s>`: segment boundaries, a
  paragraph's end pausing longer;
- `<break time="700ms"/>` or `strength="…"`: exactly that much silence;
- `<prosody rate="…">`: the speaking speed of the enclosed text (XTTS-v2's own speed);
- `<lang xml:lang="de">`: the language of the enclosed text;
- `<voice name="…" style="…">`: another voice, or a speaking style, for the enclosed text;
- `<say-as interpret-as="characters|cardinal|ordinal|date|time|telephone">`, `<sub alias>`;
- every other element (`<emphasis>`, `<phoneme>`, `<mark>`, vendor extensions): its text is
  spoken and the element itself ignored, logged once per request.

Parsed incrementally by expat (the standard library's XML parser), so tags may be split
anywhere across `synthesize-chunk`s. No DTD, no entity declarations (a document carrying
either is refused before anything is expanded), bounded nesting.
"""

import logging
import re
from dataclasses import dataclass, replace
from typing import Any
from xml.parsers import expat

from .languages import XTTS_LANGUAGES, normalize_language
from .spoken_forms import speakable, spoken_date, spoken_ordinal

_LOGGER = logging.getLogger(__name__)


class SsmlError(ValueError):
    """The document cannot be read; the message is one sentence for the person who wrote it."""


class SsmlLanguageError(SsmlError):
    """The document asks for a language XTTS-v2 does not speak."""


MAX_DEPTH = 32
"""Deepest element nesting accepted."""

MAX_BREAK_SECONDS = 10.0
"""Longest silence one `<break>` asks for (longer is cut to this)."""

_SPEAK = "speak"
_LANG_ATTRIBUTE = "xml:lang"
_BREAK_STRENGTHS = {
    "none": 0.0,
    "x-weak": 0.1,
    "weak": 0.2,
    "medium": 0.4,
    "strong": 0.7,
    "x-strong": 1.2,
}
_RATE_WORDS = {
    "x-slow": 0.6,
    "slow": 0.8,
    "medium": 1.0,
    "default": 1.0,
    "fast": 1.25,
    "x-fast": 1.5,
}
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
_RATE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")
_WHITESPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Context:
    """How the text inside the current elements is to be spoken."""

    voice: str | None = None
    """A `<voice name>`: another voice (None: the request's)."""

    style: str | None = None
    """A `<voice style>`: a speaking style (None: the voice's plain clips)."""

    language: str | None = None
    """An XTTS code from `xml:lang` (None: the voice's languages decide)."""

    rate: float = 1.0
    """Speed relative to the voice's own, from `<prosody rate>` (multiplied when nested)."""


@dataclass(frozen=True)
class Say:
    """Text to speak in a context."""

    text: str
    """Whitespace collapsed to single spaces."""

    context: Context
    """The voice, style, language and rate it is spoken in."""


@dataclass(frozen=True)
class Boundary:
    """A segment boundary from `<p>` or `<s>`."""

    paragraph: bool
    """The end of a `<p>`: a paragraph's pause."""


@dataclass(frozen=True)
class Break:
    """An exact silence from `<break>`."""

    seconds: float
    """How long, already bounded by `MAX_BREAK_SECONDS`."""


SsmlEvent = Say | Boundary | Break


@dataclass
class _Frame:
    """One open element."""

    name: str
    context: Context
    collect: list[str] | None = None  # say-as and sub: their text is spoken at the end
    attributes: dict[str, str] | None = None


class SsmlReader:
    """One request's SSML: `push` text as it arrives, `finish` at its end; each returns the
    events now complete. Raises `SsmlError` with the position of a fault."""

    def __init__(self, default_language: str = "en") -> None:
        self._default_language = default_language
        self._parser = expat.ParserCreate()
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._parser.StartDoctypeDeclHandler = self._refuse_doctype
        self._parser.EntityDeclHandler = self._refuse_entity
        self._stack: list[_Frame] = []
        self._events: list[SsmlEvent] = []
        self._seen_root = False
        self._ignored: set[str] = set()

    def push(self, text: str) -> list[SsmlEvent]:
        """Parse a piece of the document."""
        self._parse(text, final=False)
        return self._take()

    def finish(self) -> list[SsmlEvent]:
        """The document is complete; an unclosed element is an error."""
        self._parse("", final=True)
        if not self._seen_root:
            raise _malformed("the document is empty; SSML is text inside <speak>…</speak>")
        return self._take()

    def _take(self) -> list[SsmlEvent]:
        events, self._events = self._events, []
        return events

    def _parse(self, text: str, final: bool) -> None:
        try:
            self._parser.Parse(text, final)
        except expat.ExpatError as err:
            raise _malformed(
                f"{expat.ErrorString(err.code)} at line {err.lineno}, column {err.offset + 1}"
            ) from None

    # -- expat's handlers -------------------------------------------------------------------

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        if not self._stack:
            if name != _SPEAK or self._seen_root:
                raise self._fault(f"the root element must be <speak>, not <{name[:40]}>")
            self._seen_root = True
        if len(self._stack) >= MAX_DEPTH:
            raise self._fault(f"elements are nested deeper than {MAX_DEPTH}")
        context = self._stack[-1].context if self._stack else Context()
        frame = _Frame(name, context)
        language = attributes.get(_LANG_ATTRIBUTE)
        if language is not None and name in (_SPEAK, "lang", "voice", "p", "s"):
            frame.context = replace(frame.context, language=self._language(language))
        if name in ("p", "s"):
            self._events.append(Boundary(paragraph=False))
        elif name == "break":
            self._events.append(Break(self._break_seconds(attributes)))
        elif name == "prosody":
            rate = attributes.get("rate")
            if rate is not None:
                frame.context = replace(frame.context, rate=frame.context.rate * _rate(rate))
            self._ignore_once("prosody", set(attributes) - {"rate"})
        elif name == "voice":
            voice, style = attributes.get("name"), attributes.get("style")
            if voice:
                frame.context = replace(frame.context, voice=voice.strip(), style=None)
            if style:
                frame.context = replace(frame.context, style=style.strip())
        elif name in ("say-as", "sub"):
            frame.collect = []
            frame.attributes = dict(attributes)
        elif name not in (_SPEAK, "lang"):
            self._ignore_once(name, {"element"})
        self._stack.append(frame)

    def _end(self, name: str) -> None:
        frame = self._stack.pop()
        if frame.collect is not None and frame.attributes is not None:
            text = _collapse("".join(frame.collect))
            spoken = (
                frame.attributes.get("alias", text)
                if name == "sub"
                else self._interpret(text, frame.attributes, frame.context)
            )
            self._say(spoken)
        if name == "p":
            self._events.append(Boundary(paragraph=True))
        elif name == "s":
            self._events.append(Boundary(paragraph=False))

    def _text(self, data: str) -> None:
        if not self._stack:
            return  # whitespace around the root
        collecting = next((f for f in reversed(self._stack) if f.collect is not None), None)
        if collecting is not None:
            assert collecting.collect is not None
            collecting.collect.append(data)
        else:
            self._say(data)

    def _say(self, text: str) -> None:
        text = _WHITESPACE.sub(" ", text)
        if not text:
            return
        context = self._stack[-1].context if self._stack else Context()
        last = self._events[-1] if self._events else None
        if isinstance(last, Say) and last.context == context:
            self._events[-1] = Say(last.text + text, context)  # expat splits text freely
        else:
            self._events.append(Say(text, context))

    def _refuse_doctype(self, *_: Any) -> None:
        raise self._fault("a document type declaration (DTD) is not accepted")

    def _refuse_entity(self, *_: Any) -> None:
        raise self._fault("entity declarations are not accepted")

    # -- attribute values -------------------------------------------------------------------

    def _language(self, tag: str) -> str:
        code = normalize_language(tag)
        if code is None:
            raise SsmlLanguageError(
                f"xml:lang={tag[:20]!r} is not a language XTTS-v2 speaks "
                f"({', '.join(XTTS_LANGUAGES)}).",
            )
        return code

    def _break_seconds(self, attributes: dict[str, str]) -> float:
        time = attributes.get("time")
        if time is not None:
            match = _TIME.match(time)
            if match is None:
                raise self._fault(f'<break time="{time[:20]}"> must look like 700ms or 1.5s')
            seconds = float(match[1]) / (1000 if match[2] == "ms" else 1)
        else:
            strength = attributes.get("strength", "medium")
            if strength not in _BREAK_STRENGTHS:
                raise self._fault(
                    f'<break strength="{strength[:20]}"> must be one of '
                    f"{', '.join(_BREAK_STRENGTHS)}"
                )
            seconds = _BREAK_STRENGTHS[strength]
        return min(seconds, MAX_BREAK_SECONDS)

    def _interpret(self, text: str, attributes: dict[str, str], context: Context) -> str:
        """`<say-as>`: the enclosed text in words the model reads right."""
        kind = attributes.get("interpret-as", "")
        language = context.language or self._default_language
        if kind in ("characters", "spell-out", "verbatim"):
            return " ".join(character for character in text if not character.isspace())
        if kind in ("cardinal", "number"):
            return "".join(_DIGITS.findall(text)) or text
        if kind == "ordinal":
            digits = "".join(_DIGITS.findall(text))
            return spoken_ordinal(int(digits), language) if digits else text
        if kind == "date":
            return spoken_date(text, language, attributes.get("format"))
        if kind == "time":
            return speakable(text, language)
        if kind == "telephone":
            groups = [" ".join(group) for group in _DIGITS.findall(text)]
            return ("plus " if text.strip().startswith("+") else "") + ", ".join(groups)
        self._ignore_once(f'say-as interpret-as="{kind}"', {"value"})
        return text

    def _ignore_once(self, name: str, what: set[str]) -> None:
        if what and name not in self._ignored:
            self._ignored.add(name)
            _LOGGER.info("SSML: <%s> is not interpreted; its text is spoken as it is", name)

    def _fault(self, message: str) -> SsmlError:
        return _malformed(
            f"{message} (line {self._parser.CurrentLineNumber}, "
            f"column {self._parser.CurrentColumnNumber + 1})"
        )


def _rate(value: str) -> float:
    """A `<prosody rate>` as a multiple of the current rate."""
    if value in _RATE_WORDS:
        return _RATE_WORDS[value]
    match = _RATE.match(value)
    if match is None:
        raise _malformed(
            f'<prosody rate="{value[:20]}"> must be x-slow, slow, medium, fast, x-fast, a '
            "percentage (80%, +20%) or a multiple (1.2)"
        )
    number, percent = float(match[1]), match[2]
    if percent:
        relative = match[1][0] in "+-"
        return 1.0 + number / 100 if relative else number / 100
    return number


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _malformed(message: str) -> SsmlError:
    return SsmlError(f"The SSML cannot be read: {message}.")
