"""The service between the Wyoming handler and the engine.

It resolves voice names, segments text as it arrives, hands segments to the engine in a fair
order and turns the engine's audio into fixed-size PCM chunks. It knows nothing of Wyoming
events; the handler knows nothing of engines.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace

import numpy as np

from .audio import PcmChunker, to_pcm16
from .engines.base import Engine
from .errors import ErrorCode, SpeechError
from .language_detection import LanguageDetector, ReplyLanguage
from .languages import advertised_tag, normalize_language
from .speech_budget import max_speech_seconds
from .text import Segment, reply_segments
from .voices import Voice, VoiceLibrary, is_valid_voice_name

_LOGGER = logging.getLogger(__name__)

SENTENCE_PAUSE_SECONDS = 0.25
"""Silence inserted between segments: XTTS ends a sentence without a pause of its own."""

_MAX_NAMES_IN_ERROR = 12
_LANGUAGE_SUFFIX = "@"


@dataclass(frozen=True)
class ServiceSettings:
    """The service's share of the server settings."""

    default_voice: str | None
    """Voice for requests that name none; None picks the first profile, else a built-in."""

    samples_per_chunk: int
    """Samples per PCM chunk handed to the handler."""

    detect_language: bool = True
    """Let voices with several languages speak each segment in the language it is in."""


@dataclass(frozen=True)
class VoiceListing:
    """One voice as `describe` advertises it."""

    name: str
    """Name clients ask for."""

    description: str
    """Label shown to users."""

    languages: tuple[str, ...]
    """Language tags as Home Assistant's pipelines spell them (`en`, `zh-CN`)."""

    builtin: bool
    """A speaker that ships with the model rather than a profile on disk."""


class SynthesisService:
    """Speaks text in a voice through one engine, for any number of connections."""

    def __init__(
        self,
        engine: Engine,
        library: VoiceLibrary,
        settings: ServiceSettings,
        detector: LanguageDetector | None = None,
    ) -> None:
        self.engine = engine
        self._library = library
        self._settings = settings
        self._detector = detector or LanguageDetector()
        # asyncio semaphores wake waiters in FIFO order, and a slot is held per segment, not
        # per response: a long reply cannot keep a short one waiting for more than a segment.
        self._slots = asyncio.Semaphore(engine.max_concurrency)

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM this service produces."""
        return self.engine.sample_rate

    async def list_voices(self) -> list[VoiceListing]:
        """Usable profiles (read from disk now) followed by the engine's built-in speakers.

        A voice is listed under those of its languages the engine can speak, and not at
        all if the engine speaks none of them.
        """
        profiles = await asyncio.to_thread(self._library.scan)
        voices = [
            (profile.voice, profile.description, False) for profile in profiles if profile.usable
        ]
        taken = {voice.name for voice, _, _ in voices}
        voices.extend(
            (voice, f"{voice.name} (XTTS-v2 studio speaker)", True)
            for voice in self.engine.builtin_voices()
            if voice.name not in taken
        )
        supported = set(self.engine.languages)
        return [
            VoiceListing(
                name=voice.name,
                description=description,
                languages=tuple(
                    advertised_tag(code) for code in voice.languages if code in supported
                ),
                builtin=builtin,
            )
            for voice, description, builtin in voices
            if supported.intersection(voice.languages)
        ]

    async def resolve_voice(self, name: str | None) -> Voice:
        """The voice for a requested name (None: the default); raises `SpeechError`.

        `NAME@LANG` (e.g. `grandma@de`) is voice NAME always speaking LANG: the override for
        automations when detection is not wanted.
        """
        if name is None:
            return await self._default_voice()
        base, suffix, tag = name.rpartition(_LANGUAGE_SUFFIX)
        if suffix and base:
            language = normalize_language(tag)
            if language is None:
                raise SpeechError(
                    ErrorCode.LANGUAGE_UNSUPPORTED,
                    f"{tag[:20]!r} in {name[:80]!r} is not a language XTTS-v2 speaks.",
                )
            voice = await self.resolve_voice(base)
            return replace(voice, languages=(language,), detect_language=False)
        if is_valid_voice_name(name):
            profile = await asyncio.to_thread(self._library.find, name)
            if profile is not None:
                if not profile.usable:
                    raise SpeechError(
                        ErrorCode.VOICE_UNUSABLE,
                        f"Voice {name!r} cannot be used: {' '.join(profile.errors)}",
                    )
                return profile.voice
        for voice in self.engine.builtin_voices():
            if voice.name == name:
                return voice
        known = [listing.name for listing in await self.list_voices()]
        shown = ", ".join(known[:_MAX_NAMES_IN_ERROR]) + (
            ", ..." if len(known) > _MAX_NAMES_IN_ERROR else ""
        )
        raise SpeechError(
            ErrorCode.VOICE_NOT_FOUND,
            f"There is no voice named {name[:80]!r}. Available: {shown or 'none'}.",
        )

    async def _default_voice(self) -> Voice:
        if self._settings.default_voice is not None:
            return await self.resolve_voice(self._settings.default_voice)
        profiles = await asyncio.to_thread(self._library.scan)
        for profile in profiles:
            if profile.usable:
                return profile.voice
        builtin = self.engine.builtin_voices()
        if builtin:
            return builtin[0]
        raise SpeechError(
            ErrorCode.VOICE_NOT_FOUND,
            "No voice was requested and there is no usable voice profile to fall back on; "
            "add one to the voices directory.",
        )

    def _check_language(self, voice: Voice, language: str) -> None:
        if language not in self.engine.languages:
            raise SpeechError(
                ErrorCode.LANGUAGE_UNSUPPORTED,
                f"Voice {voice.name!r} would speak {language!r} here, which this engine cannot "
                f"speak (it speaks {', '.join(self.engine.languages)}).",
            )

    async def speak(self, text: AsyncIterable[str], voice: Voice) -> AsyncGenerator[bytes, None]:
        """PCM chunks (16-bit mono at `sample_rate`) for text arriving in pieces.

        The first segment is synthesized as soon as it is complete in the text received so
        far; closing the iterator stops the engine. Raises `SpeechError(EMPTY_TEXT)` when the
        text holds nothing to say.
        """
        reply_language = ReplyLanguage(
            self._detector,
            voice.languages,
            voice.detect_language and self._settings.detect_language,
        )
        if reply_language.detects and not self._detector.loaded:
            await asyncio.to_thread(self._detector.load)  # once; about 0.5 s
        chunker = PcmChunker(self._settings.samples_per_chunk)
        pause = to_pcm16(np.zeros(int(self.sample_rate * SENTENCE_PAUSE_SECONDS), np.float32))
        segments = _Counted(reply_segments(text, reply_language))
        depth = self.engine.segments_in_flight
        audio = (
            self._streamed(segments, voice)
            if depth <= 1
            else self._pipelined(segments, voice, depth)
        )
        current = 0
        async with aclosing(segments), aclosing(audio) as pieces:
            async for index, piece in pieces:
                if index != current:
                    current = index
                    for chunk in chunker.push(pause):
                        yield chunk
                for chunk in chunker.push(to_pcm16(piece)):
                    yield chunk
        if not segments.count:
            raise SpeechError(ErrorCode.EMPTY_TEXT, "There is no text to speak.")
        rest = chunker.flush()
        if rest:
            yield rest

    async def _streamed(
        self, segments: AsyncIterator[Segment], voice: Voice
    ) -> AsyncGenerator[tuple[int, np.ndarray], None]:
        """Each segment's audio as the engine produces it, one segment at a time."""
        index = 0
        async for segment in segments:
            self._check_language(voice, segment.language)
            _LOGGER.debug(
                "Segment %d (%s, %s): %r", index, segment.language, voice.name, segment.text
            )
            # Closing explicitly (not at garbage collection) is what stops the engine
            # promptly when the client goes away mid-segment.
            async with (
                self._slots,
                aclosing(self.engine.synthesize(segment.text, segment.language, voice)) as audio,
                aclosing(self._within_budget(audio, segment, voice)) as pieces,
            ):
                async for piece in pieces:
                    yield index, piece
            index += 1

    async def _pipelined(
        self, segments: AsyncIterator[Segment], voice: Voice, depth: int
    ) -> AsyncGenerator[tuple[int, np.ndarray], None]:
        """Up to `depth` segments synthesized at once, their audio delivered in order."""
        ahead = asyncio.Semaphore(depth)
        ready: asyncio.Queue[asyncio.Task[list[np.ndarray]] | Exception | None] = asyncio.Queue()
        running: set[asyncio.Task[list[np.ndarray]]] = set()

        async def start_segments() -> None:
            try:
                async for segment in segments:
                    await ahead.acquire()
                    _LOGGER.debug(
                        "Segment (%s, %s): %r", segment.language, voice.name, segment.text
                    )
                    task = asyncio.create_task(self._whole_segment(segment, voice))
                    running.add(task)
                    ready.put_nowait(task)
                ready.put_nowait(None)
            except Exception as err:  # noqa: BLE001 - re-raised in order by the consumer below
                ready.put_nowait(err)

        producer = asyncio.create_task(start_segments())
        try:
            index = 0
            while (item := await ready.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                pieces = await item
                running.discard(item)
                for piece in pieces:
                    yield index, piece
                ahead.release()
                index += 1
        finally:
            producer.cancel()
            for task in running:
                task.cancel()
            await asyncio.gather(producer, *running, return_exceptions=True)

    async def _whole_segment(self, segment: Segment, voice: Voice) -> list[np.ndarray]:
        self._check_language(voice, segment.language)
        async with (
            self._slots,
            aclosing(self.engine.synthesize(segment.text, segment.language, voice)) as audio,
            aclosing(self._within_budget(audio, segment, voice)) as pieces,
        ):
            return [piece async for piece in pieces]

    async def _within_budget(
        self, audio: AsyncIterator[np.ndarray], segment: Segment, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        """The engine's audio, cut where it runs longer than the text can justify."""
        seconds = max_speech_seconds(segment.text, segment.language, voice.generation.speed)
        budget = int(seconds * self.sample_rate)
        async for piece in audio:
            if piece.size > budget:
                _LOGGER.warning(
                    "Cut %s's audio for %r at %.1f s: longer than the text can take (babble)",
                    voice.name,
                    segment.text[:60],
                    seconds,
                )
                if budget:
                    yield piece[:budget]
                return
            budget -= piece.size
            yield piece


class _Counted:
    """Passes segments through, counting them."""

    def __init__(self, segments: AsyncGenerator[Segment, None]) -> None:
        self._segments = segments
        self.count = 0

    def __aiter__(self) -> "_Counted":
        return self

    async def __anext__(self) -> Segment:
        segment = await anext(self._segments)
        self.count += 1
        return segment

    async def aclose(self) -> None:
        await self._segments.aclose()
