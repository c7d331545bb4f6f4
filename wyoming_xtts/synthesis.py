"""The service between the Wyoming handler and the engine.

It resolves voice names, segments text as it arrives, hands segments to the engine in a fair
order and turns the engine's audio into fixed-size PCM chunks. It knows nothing of Wyoming
events; the handler knows nothing of engines.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import numpy as np

from .audio import PcmChunker, to_pcm16
from .engines.base import Engine
from .errors import ErrorCode, SpeechError
from .languages import advertised_tag
from .text import SentenceStream
from .voices import Voice, VoiceLibrary, is_valid_voice_name

_LOGGER = logging.getLogger(__name__)

SENTENCE_PAUSE_SECONDS = 0.25
"""Silence inserted between segments: XTTS ends a sentence without a pause of its own."""

_MAX_NAMES_IN_ERROR = 12


@dataclass(frozen=True)
class ServiceSettings:
    """The service's share of the server settings."""

    default_voice: str | None
    """Voice for requests that name none; None picks the first profile, else a built-in."""

    samples_per_chunk: int
    """Samples per PCM chunk handed to the handler."""


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

    def __init__(self, engine: Engine, library: VoiceLibrary, settings: ServiceSettings) -> None:
        self.engine = engine
        self._library = library
        self._settings = settings
        # asyncio semaphores wake waiters in FIFO order, and a slot is held per segment, not
        # per response: a long reply cannot keep a short one waiting for more than a segment.
        self._slots = asyncio.Semaphore(engine.max_concurrency)

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM this service produces."""
        return self.engine.sample_rate

    async def list_voices(self) -> list[VoiceListing]:
        """Usable profiles (read from disk now) followed by the engine's built-in speakers.

        A voice is listed under the languages the engine can speak, and only if it can
        speak the voice's first language, the one it is spoken in.
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
            if voice.languages[0] in supported
        ]

    async def resolve_voice(self, name: str | None) -> Voice:
        """The voice for a requested name (None: the default); raises `SpeechError`."""
        if name is None:
            return await self._default_voice()
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

    def language_for(self, voice: Voice) -> str:
        """The language a voice speaks in this engine; raises `SpeechError` if unsupported."""
        language = voice.languages[0]
        if language not in self.engine.languages:
            raise SpeechError(
                ErrorCode.LANGUAGE_UNSUPPORTED,
                f"Voice {voice.name!r} speaks {language!r}, which this model cannot speak "
                f"(it speaks {', '.join(self.engine.languages)}).",
            )
        return language

    async def speak(self, text: AsyncIterable[str], voice: Voice) -> AsyncGenerator[bytes, None]:
        """PCM chunks (16-bit mono at `sample_rate`) for text arriving in pieces.

        The first segment is synthesized as soon as it is complete in the text received so
        far; closing the iterator stops the engine. Raises `SpeechError(EMPTY_TEXT)` when the
        text holds nothing to say.
        """
        language = self.language_for(voice)
        chunker = PcmChunker(self._settings.samples_per_chunk)
        pause = to_pcm16(np.zeros(int(self.sample_rate * SENTENCE_PAUSE_SECONDS), np.float32))
        segments = _Counted(_segments(text, language))
        depth = self.engine.segments_in_flight
        audio = (
            self._streamed(segments, language, voice)
            if depth <= 1
            else self._pipelined(segments, language, voice, depth)
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
        self, segments: AsyncIterator[str], language: str, voice: Voice
    ) -> AsyncGenerator[tuple[int, np.ndarray], None]:
        """Each segment's audio as the engine produces it, one segment at a time."""
        index = 0
        async for segment in segments:
            _LOGGER.debug("Segment %d (%s, %s): %r", index, language, voice.name, segment)
            # Closing explicitly (not at garbage collection) is what stops the engine
            # promptly when the client goes away mid-segment.
            async with (
                self._slots,
                aclosing(self.engine.synthesize(segment, language, voice)) as pieces,
            ):
                async for piece in pieces:
                    yield index, piece
            index += 1

    async def _pipelined(
        self, segments: AsyncIterator[str], language: str, voice: Voice, depth: int
    ) -> AsyncGenerator[tuple[int, np.ndarray], None]:
        """Up to `depth` segments synthesized at once, their audio delivered in order."""
        ahead = asyncio.Semaphore(depth)
        ready: asyncio.Queue[asyncio.Task[list[np.ndarray]] | Exception | None] = asyncio.Queue()
        running: set[asyncio.Task[list[np.ndarray]]] = set()

        async def start_segments() -> None:
            try:
                async for segment in segments:
                    await ahead.acquire()
                    _LOGGER.debug("Segment (%s, %s): %r", language, voice.name, segment)
                    task = asyncio.create_task(self._whole_segment(segment, language, voice))
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

    async def _whole_segment(self, segment: str, language: str, voice: Voice) -> list[np.ndarray]:
        async with (
            self._slots,
            aclosing(self.engine.synthesize(segment, language, voice)) as pieces,
        ):
            return [piece async for piece in pieces]


class _Counted:
    """Passes segments through, counting them."""

    def __init__(self, segments: AsyncGenerator[str, None]) -> None:
        self._segments = segments
        self.count = 0

    def __aiter__(self) -> "_Counted":
        return self

    async def __anext__(self) -> str:
        segment = await anext(self._segments)
        self.count += 1
        return segment

    async def aclose(self) -> None:
        await self._segments.aclose()


async def _segments(text: AsyncIterable[str], language: str) -> AsyncGenerator[str, None]:
    stream = SentenceStream(language)
    async for piece in text:
        for segment in stream.push(piece):
            yield segment
    for segment in stream.finish():
        yield segment
