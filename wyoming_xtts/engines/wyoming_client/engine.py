"""A Wyoming text-to-speech server as an engine: one `synthesize` per segment, over TCP.

It stands in when the XTTS-v2 engine cannot speak (`core/fallback.py`): a Piper next to Home
Assistant speaks "the front door is open" in its own voice rather than leave the hall silent.
Each segment opens a connection, sends a plain `synthesize` (the voice a profile's
`fallback_voice` names, else none: the server's default voice) and reads `audio-start`, the
chunks and `audio-stop`, or an `error`. The 16-bit PCM it answers with becomes float32 at the
rate this engine announces, resampled as it arrives. Every wait is bounded (`WyomingTimeouts`).
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import numpy as np
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeVoice

from ...core.audio import XTTS_OUTPUT_RATE, StreamResampler, from_pcm
from ...core.engine import READY, EngineHealth, EngineInfo, Readiness
from ...core.errors import ErrorCode, SpeechError
from ...core.voices import Voice
from ...text.languages import XTTS_LANGUAGES

_LOGGER = logging.getLogger(__name__)

MAX_CONCURRENCY = 4
"""Segments sent to the server at once, all clients together (a Piper takes them in turn)."""


@dataclass(frozen=True)
class WyomingTimeouts:
    """How long each wait on the server may last; then `provider-timeout` (or, for the
    connection, `provider-unavailable`): the listener has already waited for the primary."""

    connect_s: float = 3.0
    """To open the TCP connection (a server on the same network answers in milliseconds)."""

    first_audio_s: float = 10.0
    """From sending `synthesize` to its first audio chunk (Piper: well under a second)."""

    total_s: float = 60.0
    """From sending `synthesize` to its `audio-stop` (a segment is at most 250 characters)."""


@dataclass(frozen=True)
class WyomingServer:
    """Where the server is."""

    host: str
    """Its host name or address."""

    port: int
    """Its TCP port."""

    @property
    def uri(self) -> str:
        """As the option names it: `tcp://HOST:PORT`."""
        return f"tcp://{self.host}:{self.port}"


class WyomingClientEngine:
    """The `Engine` for another Wyoming text-to-speech server."""

    def __init__(
        self,
        server: WyomingServer,
        sample_rate: int = XTTS_OUTPUT_RATE,
        timeouts: WyomingTimeouts | None = None,
    ) -> None:
        self._server = server
        self._rate = sample_rate
        self._timeouts = timeouts or WyomingTimeouts()
        self._failure: str | None = None
        """Why the last segment could not be spoken at all, until one is."""

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            description=f"The Wyoming text-to-speech server at {self._server.uri}",
            attribution_name=self._server.uri,
            attribution_url=self._server.uri,
            version="wyoming",
        )

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def languages(self) -> Sequence[str]:
        # Its voices speak what they speak: the primary's languages are the server's.
        return XTTS_LANGUAGES

    @property
    def max_concurrency(self) -> int:
        return MAX_CONCURRENCY

    @property
    def segments_in_flight(self) -> int:
        return 1  # it streams each segment's audio as it comes

    @property
    def cache_identity(self) -> None:
        return None  # another program's voices, which may change under it

    def spoke_itself(self, audio: AsyncGenerator[np.ndarray, None]) -> bool:
        return True

    def health(self) -> EngineHealth:
        if self._failure is not None:
            return EngineHealth(Readiness.FAILED, self._failure)
        return READY

    async def start(self) -> None:
        """Nothing to open: each segment connects (the server may start after this one)."""

    async def close(self) -> None:
        """Nothing held between segments."""

    def builtin_voices(self) -> Sequence[Voice]:
        return []

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        client = AsyncTcpClient(self._server.host, self._server.port)
        try:
            async with asyncio.timeout(self._timeouts.connect_s):
                await client.connect()
        except (OSError, TimeoutError) as err:
            raise self._failed(
                ErrorCode.PROVIDER_UNAVAILABLE,
                f"The Wyoming server at {self._server.uri} could not be reached "
                f"({type(err).__name__}{f': {err}' if str(err) else ''}).",
            ) from None
        try:
            name = voice.fallback_voice
            request = Synthesize(text=text, voice=SynthesizeVoice(name=name) if name else None)
            await client.write_event(request.event())
            async for piece in self._audio(client, voice):
                yield piece
        finally:
            await client.disconnect()
        self._failure = None

    async def _audio(
        self, client: AsyncTcpClient, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        """The reply's audio as it arrives, at this engine's rate, until `audio-stop`."""
        loop = asyncio.get_running_loop()
        sent = loop.time()
        resampler: StreamResampler | None = None
        source_rate = 0
        first_audio = min(self._timeouts.first_audio_s, self._timeouts.total_s)
        while True:
            waited = self._timeouts.total_s if resampler is not None else first_audio
            event = await self._next_event(client, sent + waited)
            if AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                if resampler is None:
                    resampler, source_rate = StreamResampler(chunk.rate, self._rate), chunk.rate
                elif chunk.rate != source_rate:
                    raise self._bad_audio(f"its rate changed from {source_rate} to {chunk.rate} Hz")
                try:
                    samples = from_pcm(chunk.audio, chunk.width, chunk.channels)
                except ValueError as err:
                    raise self._bad_audio(str(err)) from None
                piece = resampler.push(samples)
                if piece.size:
                    yield piece
            elif AudioStop.is_type(event.type):
                if resampler is not None:
                    rest = resampler.flush()
                    if rest.size:
                        yield rest
                return
            elif Error.is_type(event.type):
                raise self._refused(Error.from_event(event), voice)
            # audio-start (each chunk carries its format again) and anything else: nothing to do

    async def _next_event(self, client: AsyncTcpClient, deadline: float) -> Event:
        try:
            async with asyncio.timeout_at(deadline):
                event = await client.read_event()
        except TimeoutError:
            raise self._failed(
                ErrorCode.PROVIDER_TIMEOUT,
                f"The Wyoming server at {self._server.uri} did not deliver the audio in time "
                f"(first audio within {self._timeouts.first_audio_s:g} s, all of it within "
                f"{self._timeouts.total_s:g} s).",
            ) from None
        except (OSError, ValueError) as err:  # a reset, or bytes that are not events
            raise self._failed(
                ErrorCode.PROVIDER_UNAVAILABLE,
                f"The Wyoming server at {self._server.uri} broke off ({type(err).__name__}).",
            ) from None
        if event is None:
            raise self._failed(
                ErrorCode.PROVIDER_UNAVAILABLE,
                f"The Wyoming server at {self._server.uri} closed the connection before the "
                "end of the audio.",
            )
        return event

    def _refused(self, error: Error, voice: Voice) -> SpeechError:
        """The server's `error`: about the voice when one was named, else a failure."""
        said = f"{error.text[:300]}" + (f" ({error.code[:60]})" if error.code else "")
        if voice.fallback_voice:
            return SpeechError(
                ErrorCode.VOICE_UNUSABLE,
                f"The Wyoming server at {self._server.uri} cannot speak voice "
                f"{voice.fallback_voice!r} (fallback_voice of {voice.name!r}): {said}",
            )
        return SpeechError(
            ErrorCode.SYNTHESIS_FAILED,
            f"The Wyoming server at {self._server.uri} failed: {said}",
        )

    def _bad_audio(self, problem: str) -> SpeechError:
        return SpeechError(
            ErrorCode.PROVIDER_BAD_AUDIO,
            f"The Wyoming server at {self._server.uri} sent audio that cannot be read: {problem}.",
        )

    def _failed(self, code: ErrorCode, message: str) -> SpeechError:
        self._failure = message
        return SpeechError(code, message)
