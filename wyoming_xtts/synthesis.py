"""The service between the Wyoming handler and the engine.

It resolves voice names, segments text as it arrives, hands segments to the engine in a fair
order and turns the engine's audio into fixed-size PCM chunks. It knows nothing of Wyoming
events; the handler knows nothing of engines.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable
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
        """Usable profiles (read from disk now) followed by the engine's built-in speakers."""
        profiles = await asyncio.to_thread(self._library.scan)
        listings = [
            VoiceListing(
                name=profile.name,
                description=profile.description,
                languages=tuple(advertised_tag(code) for code in profile.voice.languages),
                builtin=False,
            )
            for profile in profiles
            if profile.usable
        ]
        taken = {listing.name for listing in listings}
        listings.extend(
            VoiceListing(
                name=voice.name,
                description=f"{voice.name} (XTTS-v2 studio speaker)",
                languages=tuple(advertised_tag(code) for code in voice.languages),
                builtin=True,
            )
            for voice in self.engine.builtin_voices()
            if voice.name not in taken
        )
        return listings

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
        spoken = 0
        async with aclosing(_segments(text, language)) as segments:
            async for segment in segments:
                if spoken:
                    for chunk in chunker.push(pause):
                        yield chunk
                _LOGGER.debug("Segment %d (%s, %s): %r", spoken, language, voice.name, segment)
                # Closing explicitly (not at garbage collection) is what stops the engine
                # promptly when the client goes away mid-segment.
                async with (
                    self._slots,
                    aclosing(self.engine.synthesize(segment, language, voice)) as audio_pieces,
                ):
                    async for audio in audio_pieces:
                        for chunk in chunker.push(to_pcm16(audio)):
                            yield chunk
                spoken += 1
        if not spoken:
            raise SpeechError(ErrorCode.EMPTY_TEXT, "There is no text to speak.")
        rest = chunker.flush()
        if rest:
            yield rest


async def _segments(text: AsyncIterable[str], language: str) -> AsyncGenerator[str, None]:
    stream = SentenceStream(language)
    async for piece in text:
        for segment in stream.push(piece):
            yield segment
    for segment in stream.finish():
        yield segment
