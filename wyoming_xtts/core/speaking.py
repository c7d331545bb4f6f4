"""The speaking service: text arriving in pieces, spoken in a voice, as PCM chunks.

It segments text as it arrives (the text pipeline), hands segments to the engine in a fair
order (a slot per segment, not per response: `admission.py`), pipelines them where the engine wants several
in flight, holds each to its speech budget, and turns the engine's audio into fixed-size
16-bit PCM chunks. It knows nothing of protocols; the front doors know nothing of engines.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import asdict, dataclass

import numpy as np

from ..text.language_detection import LanguageDetector, ReplyLanguage
from ..text.markup import TextFormat
from ..text.segmentation import Segment
from ..text.speech_budget import max_speech_seconds
from .admission import Admission
from .audio import PcmChunker, to_pcm16
from .audio_cache import AudioCache
from .engine import Engine, EngineHealth
from .errors import ErrorCode, SpeechError
from .shared_segments import SharedSegment
from .speech_parts import Part, Pause, Spoken, VoiceResolver, plain_parts, ssml_parts
from .voices import Voice

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeakingSettings:
    """The speaking service's share of the server settings."""

    samples_per_chunk: int
    """Samples per PCM chunk handed to the handler."""

    detect_language: bool = True
    """Let voices with several languages speak each segment in the language it is in."""


async def whole_text(text: str) -> AsyncIterator[str]:
    """A text that is complete at once, as the stream of pieces `SpeakingService.speak` reads."""
    yield text


class SpeakingService:
    """Speaks text in a voice through one engine, for any number of connections."""

    def __init__(
        self,
        engine: Engine,
        settings: SpeakingSettings,
        detector: LanguageDetector | None = None,
        cache: AudioCache | None = None,
        resolve: VoiceResolver | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.engine = engine
        self._resolve = resolve
        self._settings = settings
        self._detector = detector or LanguageDetector()
        self._cache = cache
        self._admission = admission or Admission(engine.max_concurrency)
        """The engine's slots, held per segment; unbounded unless a bound is given."""
        # Syntheses running now, by segment key: an identical request listens to the same.
        self._in_flight: dict[str, SharedSegment] = {}

    @property
    def sample_rate(self) -> int:
        """Rate of the PCM this service produces."""
        return self.engine.sample_rate

    def health(self) -> EngineHealth:
        """Whether the engine behind this service can speak now."""
        return self.engine.health()

    def _check_language(self, voice: Voice, language: str) -> None:
        if language not in self.engine.languages:
            raise SpeechError(
                ErrorCode.LANGUAGE_UNSUPPORTED,
                f"Voice {voice.name!r} would speak {language!r} here, which this engine cannot "
                f"speak (it speaks {', '.join(self.engine.languages)}).",
            )

    async def speak(
        self, text: AsyncIterable[str], voice: Voice, text_format: TextFormat = TextFormat.TEXT
    ) -> AsyncGenerator[bytes, None]:
        """PCM chunks (16-bit mono at `sample_rate`) for text arriving in pieces.

        The first segment is synthesized as soon as it is complete in the text received so
        far; closing the iterator stops the engine. Between segments comes the pause their
        punctuation (or SSML) asks for. Raises `SpeechError(EMPTY_TEXT)` when the text holds
        nothing to say.
        """
        if text_format is TextFormat.SSML:
            parts = ssml_parts(text, voice, self._language_for, self._resolve)
        else:
            parts = plain_parts(text, voice, self._language_for)
        counted = _Counted(parts)
        depth = self.engine.segments_in_flight
        audio = self._streamed(counted) if depth <= 1 else self._pipelined(counted, depth)
        chunker = PcmChunker(self._settings.samples_per_chunk)
        pause = _Pauses(self.sample_rate)
        async with aclosing(counted), aclosing(audio) as pieces:
            async for part, piece in pieces:
                for silence in pause.before(part):
                    for chunk in chunker.push(silence):
                        yield chunk
                if piece is not None:
                    for chunk in chunker.push(to_pcm16(piece)):
                        yield chunk
        if not counted.spoken:
            raise SpeechError(ErrorCode.EMPTY_TEXT, "There is no text to speak.")
        for silence in pause.at_end():
            for chunk in chunker.push(silence):
                yield chunk
        rest = chunker.flush()
        if rest:
            yield rest

    async def _language_for(self, voice: Voice) -> ReplyLanguage:
        reply_language = ReplyLanguage(
            self._detector,
            voice.languages,
            voice.detect_language and self._settings.detect_language,
        )
        if reply_language.detects and not self._detector.loaded:
            await asyncio.to_thread(self._detector.load)  # once; about 0.5 s
        return reply_language

    async def _streamed(
        self, parts: AsyncIterator[Part]
    ) -> AsyncGenerator[tuple[Part, np.ndarray | None], None]:
        """Each segment's audio as the engine produces it, one segment at a time."""
        async for part in parts:
            if isinstance(part, Pause):
                yield part, None
                continue
            self._check_language(part.voice, part.segment.language)
            _LOGGER.debug(
                "Segment (%s, %s): %r", part.segment.language, part.voice.key, part.segment.text
            )
            # Closing explicitly (not at garbage collection) is what stops the engine
            # promptly when the client goes away mid-segment.
            async with aclosing(self._segment_audio(part.segment, part.voice)) as pieces:
                async for piece in pieces:
                    yield part, piece

    async def _pipelined(
        self, parts: AsyncIterator[Part], depth: int
    ) -> AsyncGenerator[tuple[Part, np.ndarray | None], None]:
        """Up to `depth` segments synthesized at once, their audio delivered in order."""
        ahead = asyncio.Semaphore(depth)
        ready: asyncio.Queue[tuple[Part, asyncio.Task[list[np.ndarray]] | None] | Exception | None]
        ready = asyncio.Queue()
        running: set[asyncio.Task[list[np.ndarray]]] = set()

        async def start_segments() -> None:
            try:
                async for part in parts:
                    if isinstance(part, Pause):
                        ready.put_nowait((part, None))
                        continue
                    await ahead.acquire()
                    _LOGGER.debug(
                        "Segment (%s, %s): %r",
                        part.segment.language,
                        part.voice.key,
                        part.segment.text,
                    )
                    task = asyncio.create_task(self._whole_segment(part.segment, part.voice))
                    running.add(task)
                    ready.put_nowait((part, task))
                ready.put_nowait(None)
            except Exception as err:  # noqa: BLE001 - re-raised in order by the consumer below
                ready.put_nowait(err)

        producer = asyncio.create_task(start_segments())
        try:
            while (item := await ready.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                part, task = item
                if task is None:
                    yield part, None
                    continue
                pieces = await task
                running.discard(task)
                for piece in pieces:
                    yield part, piece
                ahead.release()
        finally:
            producer.cancel()
            for task in running:
                task.cancel()
            await asyncio.gather(producer, *running, return_exceptions=True)

    async def _whole_segment(self, segment: Segment, voice: Voice) -> list[np.ndarray]:
        self._check_language(voice, segment.language)
        async with aclosing(self._segment_audio(segment, voice)) as pieces:
            return [piece async for piece in pieces]

    async def _segment_audio(
        self, segment: Segment, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        """One segment's audio: from the cache when it was spoken before; else from a
        synthesis of the same segment already running for another request; else from the
        engine (holding one of its slots), stored once it has been spoken in full."""
        key = await asyncio.to_thread(self._cache_key, segment, voice)  # stats the clips
        cache = self._cache
        repeatable = voice.generation.seed is not None and self.engine.cache_identity is not None
        storable = cache is not None and repeatable and key is not None
        if storable:
            assert cache is not None and key is not None
            cached = await asyncio.to_thread(cache.get, key)
            if cached is not None:
                _LOGGER.debug("Segment from the audio cache: %r", segment.text)
                yield cached
                return
        shared = self._in_flight.get(key) if key is not None else None
        if shared is None or not shared.open:
            shared = self._start(segment, voice, key, store=storable)
        else:
            _LOGGER.debug("Segment shared with a request already speaking it: %r", segment.text)
        async with aclosing(shared.listen()) as pieces:
            async for piece in pieces:
                yield piece

    def _start(self, segment: Segment, voice: Voice, key: str | None, store: bool) -> SharedSegment:
        """Run the engine for a segment as a task that others asking for it can listen to;
        with `store`, its audio goes into the audio cache once it is complete."""

        async def produce() -> AsyncGenerator[np.ndarray, None]:
            spoken: list[np.ndarray] = []
            synthesis = self.engine.synthesize(segment.text, segment.language, voice)
            async with (
                self._admission.slot(),
                aclosing(synthesis) as audio,
                aclosing(self._within_budget(audio, segment, voice)) as pieces,
            ):
                async for piece in pieces:
                    spoken.append(piece)
                    yield piece
            # Reached only when the segment was spoken in full: the last listener gone
            # cancels the task above. A fallback's audio is not the engine's own: not kept.
            kept = store and spoken and self.engine.spoke_itself(synthesis)
            if kept and self._cache is not None and key is not None:
                await asyncio.to_thread(self._cache.put, key, np.concatenate(spoken))

        def ended() -> None:
            if key is not None and self._in_flight.get(key) is shared:
                del self._in_flight[key]

        shared = SharedSegment(produce, ended)
        if key is not None:
            self._in_flight[key] = shared
        return shared

    def _cache_key(self, segment: Segment, voice: Voice) -> str | None:
        """The segment's key in the audio cache; None when a clip cannot be read."""
        clips = []
        for clip in voice.clips:
            try:
                stat = clip.stat()
            except OSError:
                return None  # the engine will say what is wrong with the voice
            clips.append((str(clip), stat.st_size, stat.st_mtime_ns))
        return AudioCache.key(
            {
                "engine": self.engine.cache_identity,
                "rate": self.sample_rate,
                "text": segment.text,
                "language": segment.language,
                "voice": voice.key,
                "clips": clips,
                "generation": asdict(voice.generation),
            }
        )

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
    """Passes parts through, counting the spoken ones."""

    def __init__(self, parts: AsyncGenerator[Part, None]) -> None:
        self._parts = parts
        self.spoken = 0

    def __aiter__(self) -> "_Counted":
        return self

    async def __anext__(self) -> Part:
        part = await anext(self._parts)
        if isinstance(part, Spoken):
            self.spoken += 1
        return part

    async def aclose(self) -> None:
        await self._parts.aclose()


class _Pauses:
    """The silence due between segments: the punctuation's pause of the segment before (at its
    voice's pace), replaced by exact `<break>`s, lengthened to a paragraph's pause."""

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._current: Spoken | None = None
        self._due = 0.0
        self._exact = False

    def before(self, part: Part) -> list[bytes]:
        """Silence to send before this part's audio (none within a segment)."""
        if isinstance(part, Pause):
            speed = self._current.voice.generation.speed if self._current else 1.0
            seconds = part.seconds if part.exact else part.seconds / speed
            if part.exact:
                self._due = self._due + seconds if self._exact else seconds
                self._exact = True
            elif not self._exact:
                self._due = max(self._due, seconds)
            return []
        if part is self._current:
            return []
        silence = self._silence() if (self._current is not None or self._exact) else []
        self._current = part
        self._due = part.segment.pause_after / part.voice.generation.speed
        self._exact = False
        return silence

    def at_end(self) -> list[bytes]:
        """An exact break at the very end is kept; a punctuation pause is not."""
        return self._silence() if self._exact else []

    def _silence(self) -> list[bytes]:
        samples = round(self._due * self._rate)
        self._due, self._exact = 0.0, False
        return [to_pcm16(np.zeros(samples, np.float32))] if samples else []
