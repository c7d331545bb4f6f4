"""Wyoming protocol handling: one handler per connection, events in, events out.

The handler is a small state machine over the TTS events. It never synthesizes itself: each
request becomes a `RequestText` whose text is fed to the synthesis service by a per-connection
worker task, so the connection keeps being read while audio is produced (a client that hangs
up is noticed at once and its synthesis cancelled).

Every response is closed the same way, whatever happens: at most one `audio-start`, the
chunks, one `audio-stop` if audio started, an `error` if something failed, and for a stream
`synthesize-stopped` once the client's `synthesize-stop` has arrived. A plain `synthesize`
that fails before any audio gets its `error` and then the connection is closed: Home
Assistant's plain reader ignores `error` and waits for `audio-stop` or the end of the
connection, and an `audio-stop` with no audio would hand it an empty WAV to cache and play.
"""

import asyncio
import contextlib
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from ...core.audio import PCM_SAMPLE_WIDTH
from ...core.errors import ErrorCode, SpeechError
from ...core.service import Core
from ...text.markup import TextFormat
from .admission import Admission, Refusal
from .connections import Connections
from .health import HealthQuestion, HealthReport
from .info import build_info
from .request_text import RequestText
from .wire import WireError, WireLimits, read_event

_LOGGER = logging.getLogger(__name__)

_TEXT = "text"
_VOICE = "voice"
_VOICE_NAME = "name"
_VOICE_SPEAKER = "speaker"
_TEXT_FORMAT = "text_format"

MAX_PENDING_RESPONSES = 8
"""Requests one connection may have waiting behind the one being spoken."""

_LINGER_S = 2.0
_LINGER_BLOCK = 64 * 1024


class WyomingTtsHandler(AsyncEventHandler):
    """Answers one client connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        core: Core,
        max_text_chars: int,
        admission: Admission,
        connections: Connections,
        limits: WireLimits | None = None,
    ) -> None:
        super().__init__(reader, writer)
        self._core = core
        self._max_text_chars = max_text_chars
        self._admission = admission
        self._connections = connections
        self._limits = limits or WireLimits()
        self._responding = False
        self._last_activity = time.monotonic()
        self._linger = False
        self._queue: asyncio.Queue[RequestText] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._stream: RequestText | None = None
        self._hang_up = asyncio.Event()
        """Set when a response must end the connection (a failed plain request, a shutdown)."""
        self._closing_at: float | None = None
        """When the server is shutting down: the deadline for the reply in flight."""
        self._cutoff: asyncio.Timeout | None = None
        """The deadline of the reply being spoken, moved to `_closing_at` by a shutdown."""

    async def run(self) -> None:
        """Admit the client, then read events with bounded sizes until it leaves."""
        refusal = self._admission.admit(self.writer.get_extra_info("peername"))
        if refusal is not None:
            if refusal is Refusal.TOO_MANY_CONNECTIONS:
                with contextlib.suppress(ConnectionError):
                    await self._error(
                        ErrorCode.TOO_MANY_CONNECTIONS,
                        "The server has too many connections open; try again shortly.",
                    )
                    await self._drain_input()  # so that the request does not reset the error
            self.writer.close()
            return
        self._connections.opened(self)
        try:
            await self._read_events()
        finally:
            self._connections.closed(self)
            self._admission.release()

    def finish_and_close(self, deadline: float) -> None:
        """The server is shutting down: finish the replies already asked for, take no new
        one, close when done; at `deadline`, end the reply in flight as its client needs."""
        self._closing_at = deadline
        if self._cutoff is not None:
            self._cutoff.reschedule(deadline)
        self._close_if_done()

    def _close_if_done(self) -> None:
        if self._closing_at is not None and not self._busy and self._stream is None:
            self._linger = True
            self._hang_up.set()

    async def _read_events(self) -> None:
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await self._next_event()
                except _IdleError:
                    _LOGGER.info(
                        "Closing a connection idle for %g s", self._admission.policy.idle_timeout_s
                    )
                    await self._error(
                        ErrorCode.IDLE,
                        f"Closing the connection after {self._admission.policy.idle_timeout_s:g} s "
                        "without a request (--idle-timeout).",
                    )
                    break
                except WireError as err:
                    _LOGGER.info("Refused an event: %s", err.message)
                    refused = err.event_type or ""
                    if self._stream is not None and Synthesize.is_type(refused):
                        continue  # the compatibility copy of a stream's text: ignored anyway
                    if self._stream is not None and SynthesizeChunk.is_type(refused):
                        # The stream ends with this error, and synthesize-stopped as always.
                        self._stream.fail(SpeechError(err.code, err.message))
                        continue
                    await self._error(err.code, err.message)
                    is_request = Synthesize.is_type(refused) or SynthesizeStart.is_type(refused)
                    if err.resumable and not is_request:
                        continue
                    # A refused request would leave its client waiting for an answer.
                    self._linger = True
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                if event is None or not await self.handle_event(event):
                    break
                if self._hang_up.is_set():
                    break
        finally:
            await self.disconnect()
            if self._linger:
                await self._drain_input()
            self.writer.close()

    async def _drain_input(self) -> None:
        """Before closing on a client that is still sending, read (and drop) what it sends.

        Closing a socket with unread input makes the kernel reset the connection, which can
        destroy the error event just written before the client reads it.
        """
        with contextlib.suppress(TimeoutError, ConnectionError):
            self.writer.write_eof()
            async with asyncio.timeout(_LINGER_S):
                while await self.reader.read(_LINGER_BLOCK):
                    pass

    async def _next_event(self) -> Event | None:
        """The next event; `_IdleError` once the client is silent and nothing is being spoken;
        None at the end of the input or when a response hangs up."""
        idle_timeout = self._admission.policy.idle_timeout_s
        reading = asyncio.ensure_future(read_event(self.reader, self._limits))
        hanging_up = asyncio.ensure_future(self._hang_up.wait())
        try:
            while True:
                remaining = idle_timeout - (time.monotonic() - self._last_activity)
                done, _ = await asyncio.wait(
                    {reading, hanging_up},
                    timeout=max(remaining, 0.01),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if reading in done:
                    self._last_activity = time.monotonic()
                    return reading.result()
                if hanging_up in done:
                    return None
                if self._busy:
                    self._last_activity = time.monotonic()  # waiting for audio is not idling
                elif time.monotonic() - self._last_activity >= idle_timeout:
                    raise _IdleError
        finally:
            reading.cancel()
            hanging_up.cancel()
            # Let the read finish cancelling before anyone else reads (the lingering drain).
            await asyncio.wait({reading, hanging_up})

    @property
    def _busy(self) -> bool:
        return self._responding or not self._queue.empty()

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self._describe()
        elif Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif HealthQuestion.is_type(event.type):
            health = self._core.speaking.health()
            report = HealthReport(health.healthy, health.readiness.value, health.detail)
            await self.write_event(report.event())
        elif Synthesize.is_type(event.type):
            # Inside a stream Home Assistant also sends the whole text as a plain
            # `synthesize` for older servers: speaking it would say everything twice.
            if self._stream is None:
                if self._flooded():
                    return await self._cut_off()
                await self._start_response(event.data, streaming=False)
        elif SynthesizeStart.is_type(event.type):
            if self._flooded():
                return await self._cut_off()
            await self._start_stream(event.data)
        elif SynthesizeChunk.is_type(event.type):
            await self._add_chunk(event.data)
        elif SynthesizeStop.is_type(event.type):
            await self._stop_stream()
        else:
            _LOGGER.debug("Ignoring unknown event %s", event.type)
        return True

    async def disconnect(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    # -- events ---------------------------------------------------------------------------

    async def _describe(self) -> None:
        voices = await self._core.catalogue.list_voices()
        await self.write_event(build_info(self._core.program, voices).event())

    async def _start_stream(self, data: dict[str, Any]) -> None:
        if self._stream is not None:
            await self._reject(
                "synthesize-start arrived while a stream is still open; send synthesize-stop first."
            )
            return
        self._stream = await self._start_response(data, streaming=True)

    async def _add_chunk(self, data: dict[str, Any]) -> None:
        if self._stream is None:
            await self._reject("synthesize-chunk arrived without synthesize-start.")
            return
        text = data.get(_TEXT)
        if isinstance(text, str):
            self._stream.add_text(text)
        else:
            self._stream.fail(_bad_request("synthesize-chunk needs a 'text' string."))

    async def _stop_stream(self) -> None:
        if self._stream is None:
            await self._reject("synthesize-stop arrived without synthesize-start.")
            return
        stream, self._stream = self._stream, None
        stream.end_text()
        stream.client_stopped.set()

    async def _start_response(self, data: dict[str, Any], streaming: bool) -> RequestText:
        voice = data.get(_VOICE) or {}
        voice_name = voice.get(_VOICE_NAME) if isinstance(voice, dict) else None
        speaker = voice.get(_VOICE_SPEAKER) if isinstance(voice, dict) else None
        text = "" if streaming else data.get(_TEXT)
        try:
            text_format: TextFormat | None = TextFormat.parse(data.get(_TEXT_FORMAT))
        except ValueError:
            text_format = None
        response = RequestText(
            voice_name,
            streaming,
            self._max_text_chars,
            speaker if isinstance(speaker, str) else None,
            text_format or TextFormat.TEXT,
        )
        if not isinstance(voice, dict) or not isinstance(voice_name, (str, type(None))):
            response.failure = _bad_request("'voice' must be an object with a 'name' string.")
        elif not isinstance(speaker, (str, type(None))):
            response.failure = _bad_request("'voice.speaker' must be a string.")
        elif text_format is None:
            response.failure = _bad_request(
                f"text_format must be one of {', '.join(TextFormat)}, "
                f"not {str(data.get(_TEXT_FORMAT))[:20]!r}."
            )
        elif not isinstance(text, str):
            response.failure = _bad_request("synthesize needs a 'text' string.")
        elif not streaming:
            response.add_text(text)
        if self._closing_at is not None and response.failure is None:
            response.failure = SpeechError(
                ErrorCode.SHUTTING_DOWN,
                "The server is shutting down; ask again in a moment, once it is back.",
            )
        if not streaming:
            response.end_text()
            response.client_stopped.set()
        self._queue.put_nowait(response)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="wyoming-xtts response worker")
        return response

    def _flooded(self) -> bool:
        return self._queue.qsize() >= MAX_PENDING_RESPONSES

    async def _cut_off(self) -> bool:
        """A client that queues requests without waiting for audio is disconnected."""
        _LOGGER.warning("Disconnecting a client with %d requests waiting", self._queue.qsize())
        self._linger = True
        await self._error(
            ErrorCode.TOO_MANY_REQUESTS,
            f"More than {MAX_PENDING_RESPONSES} requests are waiting on this connection; "
            "wait for the audio of one before sending the next. Closing the connection.",
        )
        return False

    async def _error(self, code: ErrorCode, text: str) -> None:
        """Send an `error` event: readable text, stable code."""
        await self.write_event(Error(text=text, code=code).event())

    async def _reject(self, text: str) -> None:
        """Answer an event that belongs to no response."""
        error = _bad_request(text)
        _LOGGER.debug("Bad request: %s", error.message)
        await self._error(error.code, error.message)

    # -- responses ------------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            while True:
                response = await self._queue.get()
                self._responding = True
                try:
                    await self._respond(response)
                finally:
                    self._responding = False
                    self._last_activity = time.monotonic()
                self._close_if_done()
        except (ConnectionError, asyncio.CancelledError):
            _LOGGER.debug("Client gone; stopping its synthesis")

    async def _respond(self, response: RequestText) -> None:
        progress = _Progress()
        try:
            # No deadline, until a shutdown moves it to the end of its grace period.
            async with asyncio.timeout_at(self._closing_at) as cutoff:
                self._cutoff = cutoff
                await self._speak(response, progress)
                if progress.audio_started:
                    await self.write_event(AudioStop().event())
                    progress.audio_stopped = True
                if response.streaming:
                    await response.client_stopped.wait()
        except TimeoutError:
            if not cutoff.expired():
                raise
            await self._cut_short(response, progress)
            return
        finally:
            self._cutoff = None
        if response.streaming:
            await self.write_event(SynthesizeStopped().event())
        elif progress.failed and not progress.audio_started:
            _LOGGER.debug("Closing the connection after a failed plain request")
            self._linger = True
            self._hang_up.set()

    async def _speak(self, response: RequestText, progress: "_Progress") -> None:
        """The reply's audio, or the `error` that says why there is none (or no more)."""
        try:
            if response.failure is not None:
                raise response.failure
            voice = await self._core.catalogue.resolve_voice(response.voice_name, response.style)
            speech = self._core.speaking.speak(response.text(), voice, response.text_format)
            async with aclosing(speech) as chunks:
                async for pcm in chunks:
                    if not progress.audio_started:
                        await self.write_event(self._audio_start().event())
                        progress.audio_started = True
                    await self.write_event(self._audio_chunk(pcm).event())
            progress.failed = False
        except SpeechError as err:
            response.abandon()
            _LOGGER.info("Request failed (%s): %s", err.code, err.message)
            await self._error(err.code, err.message)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            response.abandon()
            _LOGGER.exception("Unexpected failure while speaking")
            await self._error(
                ErrorCode.SYNTHESIS_FAILED,
                "The server failed while speaking; see its log for details.",
            )

    async def _cut_short(self, response: RequestText, progress: "_Progress") -> None:
        """The grace period of a shutdown is over: end the reply where each reader listens
        (the plain reader at `audio-stop` or the socket closing, the streaming one at
        `synthesize-stopped`, sent without waiting for the client's `synthesize-stop`)."""
        response.abandon()
        _LOGGER.info("Shutting down: a reply was cut short after the grace period")
        await self._error(
            ErrorCode.SHUTTING_DOWN, "The server is shutting down; the reply was cut short."
        )
        if progress.audio_started and not progress.audio_stopped:
            await self.write_event(AudioStop().event())
        if response.streaming:
            await self.write_event(SynthesizeStopped().event())
        self._linger = True
        self._hang_up.set()

    def _audio_start(self) -> AudioStart:
        return AudioStart(rate=self._core.speaking.sample_rate, width=PCM_SAMPLE_WIDTH, channels=1)

    def _audio_chunk(self, pcm: bytes) -> AudioChunk:
        return AudioChunk(
            rate=self._core.speaking.sample_rate, width=PCM_SAMPLE_WIDTH, channels=1, audio=pcm
        )


@dataclass
class _Progress:
    """How far one reply has come."""

    audio_started: bool = False
    audio_stopped: bool = False
    failed: bool = True


class _IdleError(Exception):
    """The client has been silent for the idle timeout with nothing in progress."""


def _bad_request(text: str) -> SpeechError:
    return SpeechError(ErrorCode.BAD_REQUEST, text)
