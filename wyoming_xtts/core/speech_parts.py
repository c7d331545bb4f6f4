"""A request's text as the parts the speaking service speaks: segments, each in its voice, and
the pauses between them.

Plain text is one run in the request's voice. SSML (text/ssml.py) is a sequence of runs, one
per change of voice, style, language or pace, with boundaries and exact breaks between them;
each run goes through the same text pipeline as plain text (segmentation, language choice,
spoken forms), only without the Markdown clean-up.
"""

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from ..text.language_detection import ReplyLanguage
from ..text.pauses import PAUSE_SECONDS, Ending
from ..text.segmentation import Segment, reply_segments
from ..text.ssml import (
    Boundary,
    Break,
    Context,
    Say,
    SsmlError,
    SsmlEvent,
    SsmlLanguageError,
    SsmlReader,
)
from .errors import ErrorCode, SpeechError
from .generation import GENERATION_LIMITS
from .voices import Voice

VoiceResolver = Callable[[str | None, str | None], Awaitable[Voice]]
"""Looks a voice up by name and speaking style (the catalogue's `resolve_voice`)."""

LanguageFor = Callable[[Voice], Awaitable[ReplyLanguage]]
"""How a voice chooses the language of each segment."""


@dataclass(frozen=True)
class Spoken:
    """A segment to synthesize, in the voice (with its settings) that speaks it."""

    segment: Segment
    """Text, language, and the pause after it at the voice's own pace."""

    voice: Voice
    """The voice, style and settings (speed included) to speak it in."""


@dataclass(frozen=True)
class Pause:
    """Silence asked for between segments."""

    seconds: float
    """How long."""

    exact: bool
    """A `<break>`: exactly this long. Otherwise (a paragraph's end) at the voice's pace."""


Part = Spoken | Pause


async def plain_parts(
    text: AsyncIterable[str], voice: Voice, language_for: LanguageFor
) -> AsyncGenerator[Part, None]:
    """Plain text: Markdown cleaned up, segmented, spoken in the request's voice."""
    async for segment in reply_segments(text, await language_for(voice)):
        yield Spoken(segment, voice)


async def ssml_parts(
    text: AsyncIterable[str],
    voice: Voice,
    language_for: LanguageFor,
    resolve: VoiceResolver | None,
) -> AsyncGenerator[Part, None]:
    """SSML, read as it arrives: each run of text in its context becomes segments in the
    voice that context names, with the boundaries and breaks between them."""
    events = _Lookahead(_ssml_events(text, voice.languages[0]))
    voices: dict[Context, Voice] = {}
    while (event := await events.peek()) is not None:
        if isinstance(event, Break):
            await events.take()
            yield Pause(event.seconds, exact=True)
        elif isinstance(event, Boundary):
            await events.take()
            if event.paragraph:
                yield Pause(PAUSE_SECONDS[Ending.PARAGRAPH], exact=False)
        else:
            context = event.context
            if context not in voices:
                voices[context] = await _voice_in(context, voice, resolve)
            run_voice = voices[context]
            run = _run_text(events, context)
            async for segment in reply_segments(run, await language_for(run_voice), False):
                yield Spoken(segment, run_voice)


async def _ssml_events(text: AsyncIterable[str], language: str) -> AsyncGenerator[SsmlEvent, None]:
    reader = SsmlReader(language)
    try:
        async for piece in text:
            for event in reader.push(piece):
                yield event
        for event in reader.finish():
            yield event
    except SsmlLanguageError as error:
        raise SpeechError(ErrorCode.LANGUAGE_UNSUPPORTED, str(error)) from error
    except SsmlError as error:
        raise SpeechError(ErrorCode.BAD_REQUEST, str(error)) from error


async def _run_text(events: "_Lookahead", context: Context) -> AsyncGenerator[str, None]:
    """The text of consecutive `Say` events in one context."""
    while (event := await events.peek()) is not None:
        if not isinstance(event, Say) or event.context != context:
            return
        await events.take()
        yield event.text


async def _voice_in(context: Context, voice: Voice, resolve: VoiceResolver | None) -> Voice:
    """The request's voice as a context changes it: another voice or style, a fixed
    language, a speed (XTTS-v2's own, within its range)."""
    if context.voice is not None or context.style is not None:
        if resolve is None:
            raise SpeechError(ErrorCode.BAD_REQUEST, "<voice> cannot switch voices here.")
        voice = await resolve(context.voice or voice.name, context.style)
    if context.language is not None:
        voice = replace(voice, languages=(context.language,), detect_language=False)
    if context.rate != 1.0:
        limits = GENERATION_LIMITS["speed"]
        speed = min(max(voice.generation.speed * context.rate, limits.low), limits.high)
        voice = replace(voice, generation=replace(voice.generation, speed=speed))
    return voice


class _Lookahead:
    """An async iterator that can show its next item without taking it."""

    def __init__(self, items: AsyncIterator[SsmlEvent]) -> None:
        self._items = items
        self._next: SsmlEvent | None = None
        self._done = False

    async def peek(self) -> SsmlEvent | None:
        if self._next is None and not self._done:
            try:
                self._next = await anext(self._items)
            except StopAsyncIteration:
                self._done = True
        return self._next

    async def take(self) -> SsmlEvent | None:
        item = await self.peek()
        self._next = None
        return item
