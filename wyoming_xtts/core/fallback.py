"""Two engines as one: the primary speaks, and when it cannot start a segment, the fallback does.

A household would rather hear "the front door is open" in another voice than not at all. When
the primary fails a segment before it has yielded any audio, for a reason that says nothing
about the request (the local model failed to load or ran out of memory, a cloud provider is
down, refuses the account, throttles, times out), or when the primary already has
`--max-waiting` segments queued (`engine-busy`), the same segment goes to the fallback with
the same voice. Once the primary has yielded audio, its failures end the reply as they always
did: a listener must never hear half a sentence in one voice and the rest in another.

Everything above this engine is the same whoever speaks: the speaking service's segments,
babble guard and language choice, the voice list (the primary's), the sample rate (the
primary's; the fallback's audio is resampled to it). Only the primary's own audio may be kept
in the audio cache (`spoke_itself`). Each cause is logged once until the primary speaks again,
with a count of the segments the fallback spoke, which `health()` reports too.
"""

import logging
import weakref
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

import numpy as np

from .admission import Admission
from .audio import StreamResampler
from .engine import Engine, EngineHealth, EngineInfo, EngineUnavailableError, Readiness
from .errors import ErrorCode, SpeechError
from .voices import Voice

_LOGGER = logging.getLogger(__name__)

FALLBACK_CODES: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.ENGINE_BUSY,
        ErrorCode.SYNTHESIS_FAILED,
        ErrorCode.PROVIDER_UNAVAILABLE,
        ErrorCode.PROVIDER_TIMEOUT,
        ErrorCode.PROVIDER_AUTH,
        ErrorCode.PROVIDER_BALANCE,
        ErrorCode.PROVIDER_THROTTLED,
        ErrorCode.PROVIDER_FAILED,
        ErrorCode.PROVIDER_BAD_AUDIO,
    }
)
"""The primary's failures the fallback answers: the engine or its provider could not speak,
whatever was asked, or had `--max-waiting` segments queued already (an unexpected exception counts as `synthesis-failed`, as the doors report
it). Not among them: what is wrong with the request or its voice (`voice-unusable`,
`voice-not-found`, `language-unsupported`, …), which would be as wrong at the fallback, and
`provider-rejected`, the provider's verdict on this input, which the fallback would only hide."""


@dataclass(frozen=True)
class FallbackNames:
    """How the log and `health()` name the two engines: as the options do (`replicate`,
    `tcp://192.168.1.20:10200`), which is what a user configured and recognises."""

    primary: str
    """`--engine`."""

    fallback: str
    """`--fallback-engine`."""


class _Answer:
    """Who spoke one `synthesize` call, for `spoke_itself`."""

    def __init__(self) -> None:
        self.primary_audio: AsyncGenerator[np.ndarray, None] | None = None
        """The primary's iterator, when it was asked."""

        self.by_fallback = False
        """The fallback spoke it (or was asked to)."""


class FallbackEngine:
    """The `Engine` of a primary engine with a fallback behind it."""

    def __init__(
        self,
        primary: Engine,
        fallback: Engine,
        names: FallbackNames,
        max_waiting: int | None = None,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._names = names
        # The primary's queue is bounded here rather than above (the speaking service admits
        # as many segments as both engines can speak): a segment it would keep waiting goes
        # to the fallback at once. The fallback's queue is not bounded: it is the last resort.
        self._primary_slots = Admission(primary.max_concurrency, max_waiting, names.primary)
        self._fallback_slots = Admission(fallback.max_concurrency)
        self._primary_down: SpeechError | None = None
        """Why the primary could not start: every segment goes to the fallback."""
        self._fallback_down: str | None = None
        """Why the fallback could not start: the primary speaks alone."""
        self._causes: dict[ErrorCode, SpeechError] = {}
        """The causes logged since the primary last spoke, in order; the last is the latest."""
        self._spoken = 0
        """Segments handed to the fallback since the start."""
        self._spoken_in_outage = 0
        """Segments handed to the fallback since the primary last spoke."""
        self._answers: weakref.WeakKeyDictionary[AsyncGenerator[np.ndarray, None], _Answer]
        self._answers = weakref.WeakKeyDictionary()

    @property
    def info(self) -> EngineInfo:
        return self._primary.info

    @property
    def sample_rate(self) -> int:
        return self._primary.sample_rate

    @property
    def languages(self) -> Sequence[str]:
        return self._primary.languages

    @property
    def max_concurrency(self) -> int:
        # Both at once: each engine's own admission (above) holds it to its share.
        return self._primary.max_concurrency + self._fallback.max_concurrency

    @property
    def segments_in_flight(self) -> int:
        return self._speaker.segments_in_flight

    @property
    def _speaker(self) -> Engine:
        """The engine that speaks when nothing fails: it sets the pace of a reply."""
        return self._fallback if self._primary_down is not None else self._primary

    @property
    def cache_identity(self) -> str | None:
        # The primary's: a segment the fallback spoke is not kept (`spoke_itself`), so that
        # a repeat is never the fallback's voice replayed as the primary's.
        return self._primary.cache_identity

    def spoke_itself(self, audio: AsyncGenerator[np.ndarray, None]) -> bool:
        answer = self._answers.get(audio)
        if answer is None or answer.by_fallback or answer.primary_audio is None:
            return False
        return self._primary.spoke_itself(answer.primary_audio)

    @property
    def fallback_segments(self) -> int:
        """Segments handed to the fallback since the start."""
        return self._spoken

    def health(self) -> EngineHealth:
        fallback = self._fallback.health()
        if self._primary_down is not None:
            if not fallback.healthy:
                return EngineHealth(
                    Readiness.FAILED,
                    f"{self._primary_down.message} The fallback engine "
                    f"{self._names.fallback} cannot speak either: {fallback.detail}",
                )
            return EngineHealth(
                Readiness.DEGRADED,
                f"{self._names.primary} cannot start ({self._primary_down.message}): "
                f"{self._counted(self._spoken)}",
            )
        primary = self._primary.health()
        cause = next(reversed(self._causes.values()), None)
        if cause is None and primary.healthy:
            if self._fallback_down is not None:
                return EngineHealth(primary.readiness, primary.detail or self._fallback_down)
            return primary
        if self._fallback_down is None and fallback.healthy:
            reason = f"{cause.code.value}: {cause.message}" if cause else primary.detail
            return EngineHealth(
                Readiness.DEGRADED,
                f"{self._names.primary} cannot speak ({reason}): "
                f"{self._counted(self._spoken_in_outage)}",
            )
        return primary

    def _counted(self, segments: int) -> str:
        return f"{segments} segment(s) spoken by the fallback engine {self._names.fallback}"

    async def start(self) -> None:
        """Both engines; either one failing leaves the other to speak alone (logged), both
        failing is the primary's failure, with the fallback's reason added."""
        try:
            await self._fallback.start()
        except EngineUnavailableError as err:
            self._fallback_down = f"The fallback engine {self._names.fallback} cannot start: {err}"
        try:
            await self._primary.start()
        except EngineUnavailableError as err:
            if self._fallback_down is not None:
                raise EngineUnavailableError(f"{err} {self._fallback_down}") from err
            self._primary_down = SpeechError(ErrorCode.SYNTHESIS_FAILED, str(err))
            _LOGGER.warning(
                "%s cannot start: %s Every segment is spoken by the fallback engine %s "
                "(restart to try %s again)",
                self._names.primary,
                err,
                self._names.fallback,
                self._names.primary,
            )
        if self._fallback_down is not None:
            _LOGGER.warning("%s: %s speaks alone", self._fallback_down, self._names.primary)
        elif self._primary_down is None:
            _LOGGER.info(
                "%s speaks; the fallback engine %s stands in when it cannot",
                self._names.primary,
                self._names.fallback,
            )

    async def close(self) -> None:
        try:
            await self._primary.close()
        finally:
            await self._fallback.close()

    def builtin_voices(self) -> Sequence[Voice]:
        return self._primary.builtin_voices()

    def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        answer = _Answer()
        audio = self._speak(text, language, voice, answer)
        self._answers[audio] = answer
        return audio

    async def _speak(
        self, text: str, language: str, voice: Voice, answer: _Answer
    ) -> AsyncGenerator[np.ndarray, None]:
        cause = self._primary_down
        if cause is None:
            started = False
            try:
                async with self._primary_slots.slot():
                    keeps_up = self._primary_slots.waiting == 0
                    primary = self._primary.synthesize(text, language, voice)
                    answer.primary_audio = primary
                    async with aclosing(primary) as pieces:
                        async for piece in pieces:
                            if not started:
                                started = True
                                self._primary_speaks(keeps_up)
                            yield piece
            except Exception as err:
                cause = self._stand_in_for(err, started)
                if cause is None:
                    raise
            if cause is None:
                return
        answer.by_fallback = True
        self._spoken += 1
        self._spoken_in_outage += 1
        if cause is not self._primary_down:  # that one was logged at the start
            self._note_cause(cause)
        async with (
            self._fallback_slots.slot(),
            aclosing(self._from_fallback(text, language, voice, cause)) as pieces,
        ):
            async for piece in pieces:
                yield piece

    def _stand_in_for(self, error: Exception, started: bool) -> SpeechError | None:
        """The cause to hand this segment to the fallback for; None: the error is the reply's."""
        if started or self._fallback_down is not None:
            return None
        if isinstance(error, SpeechError):
            return error if error.code in FALLBACK_CODES else None
        # The doors would report it as synthesis-failed, with its traceback in the log: the
        # traceback is kept here, once per cause, as the log line below is.
        if ErrorCode.SYNTHESIS_FAILED not in self._causes:
            _LOGGER.error("%s failed unexpectedly", self._names.primary, exc_info=error)
        return SpeechError(
            ErrorCode.SYNTHESIS_FAILED,
            f"{self._names.primary} failed ({type(error).__name__}: {error}).",
        )

    async def _from_fallback(
        self, text: str, language: str, voice: Voice, cause: SpeechError
    ) -> AsyncGenerator[np.ndarray, None]:
        resampler = StreamResampler(self._fallback.sample_rate, self.sample_rate)
        started = False
        async with aclosing(self._fallback.synthesize(text, language, voice)) as pieces:
            try:
                async for piece in pieces:
                    started = True
                    resampled = resampler.push(piece)
                    if resampled.size:
                        yield resampled
            except SpeechError as err:
                if started:
                    raise
                # Its code is the fallback's (a voice it cannot speak is that voice's error);
                # its text says why the primary did not speak either.
                raise SpeechError(
                    err.code,
                    f"{cause.message} The fallback engine {self._names.fallback} could not "
                    f"speak it either: {err.message}",
                ) from err
        rest = resampler.flush()
        if rest.size:
            yield rest

    def _note_cause(self, cause: SpeechError) -> None:
        """Logged the first time since the primary last spoke; kept, latest last, for health."""
        known = self._causes.pop(cause.code, None) is not None
        self._causes[cause.code] = cause
        if known:
            return
        _LOGGER.warning(
            "%s cannot speak (%s: %s): the fallback engine %s speaks instead, until it can "
            "again; %d segment(s) spoken by the fallback since the start",
            self._names.primary,
            cause.code.value,
            cause.message,
            self._names.fallback,
            self._spoken,
        )

    def _primary_speaks(self, keeps_up: bool) -> None:
        """The primary began a segment; `keeps_up`: none was waiting behind it. Being busy is
        over only then, not whenever the (busy) primary speaks: else a queue kept full would
        log its cause again at every overflow."""
        busy = None if keeps_up else self._causes.get(ErrorCode.ENGINE_BUSY)
        if not self._causes or (busy is not None and len(self._causes) == 1):
            return
        _LOGGER.info(
            "%s speaks again; the fallback engine %s spoke %d segment(s) meanwhile "
            "(%d since the start)",
            self._names.primary,
            self._names.fallback,
            self._spoken_in_outage,
            self._spoken,
        )
        self._causes.clear()
        self._spoken_in_outage = 0
        if busy is not None:
            self._causes[ErrorCode.ENGINE_BUSY] = busy
