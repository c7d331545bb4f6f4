"""Test clients that read a TTS response exactly as Home Assistant 2026.2 reads it.

Home Assistant's `wyoming` integration (`homeassistant/components/wyoming/tts.py`, release
2026.2) has two readers, and neither looks at `error` events:

- the plain path (`async_get_tts_audio`: `tts.speak`, media URLs, servers without streaming)
  sends one `synthesize` and reads events until `audio-stop` (done) or the connection closing
  (`(None, None)`: Home Assistant reports that no audio came). It takes the WAV format from the
  first `audio-chunk` and writes every chunk's payload. An `audio-stop` before any chunk gives
  an empty WAV, which it caches and plays. It has no timeout of its own.
- the streaming path (`async_stream_tts_audio`) sends `synthesize-start`, one
  `synthesize-chunk` per text delta, the whole text again as a plain `synthesize` (for older
  servers), then `synthesize-stop`, and reads until `synthesize-stopped` or the connection
  closing. The WAV header comes from the first `audio-start`; every `audio-chunk` payload is
  appended; later `audio-start`/`audio-stop` are ignored. No timeout either.

These clients add only what a test needs on top: when the reader's wait ended, measured from
the `error` event it ignored.
"""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

GIVE_UP_S = 60.0
"""The test's own limit: Home Assistant has none and would wait forever."""


@dataclass
class Reply:
    """What one Home Assistant reader got, and how its wait ended."""

    audio: bytes | None
    """The audio it would play (None: Home Assistant reports that no audio came)."""

    ended_by: str
    """"audio-stop", "synthesize-stopped" or "closed"."""

    errors: list[dict] = field(default_factory=list)
    """The `error` events that arrived (Home Assistant ignores them; the test does not)."""

    wait_after_error_s: float | None = None
    """Seconds from the first `error` event to the end of the wait."""


def plain_request(text: str, voice: str | None) -> list[Event]:
    """What the plain path sends."""
    return [Synthesize(text=text, voice=_voice(voice)).event()]


def streaming_request(chunks: Sequence[str], voice: str | None) -> list[Event]:
    """What the streaming path sends: start, the deltas, the compatibility copy, stop."""
    return [
        SynthesizeStart(voice=_voice(voice)).event(),
        *(SynthesizeChunk(text=chunk).event() for chunk in chunks),
        Synthesize(text="".join(chunks), voice=_voice(voice)).event(),
        SynthesizeStop().event(),
    ]


async def plain(port: int, request: Sequence[Event]) -> Reply:
    """Home Assistant's plain reader after sending `request` (see `plain_request`)."""
    return await _exchange(port, request, streaming=False)


async def streaming(port: int, request: Sequence[Event]) -> Reply:
    """Home Assistant's streaming reader after sending `request` (see `streaming_request`)."""
    return await _exchange(port, request, streaming=True)


async def _exchange(port: int, request: Sequence[Event], streaming: bool) -> Reply:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        for event in request:
            try:
                await client.write_event(event)
            except ConnectionError:
                break  # the server already answered and closed; read what it sent
        return await _read(client, streaming)


async def _read(client: AsyncTcpClient, streaming: bool) -> Reply:
    audio: bytearray | None = None
    errors: list[dict] = []
    first_error_at: float | None = None

    async def loop() -> str:
        nonlocal audio, first_error_at
        while True:
            try:
                event = await client.read_event()
            except OSError:  # Home Assistant catches OSError and reports no audio
                event = None
            if event is None:
                audio = None if not streaming else audio
                return "closed"
            if event.type == "error":
                errors.append(event.data)
                first_error_at = first_error_at or time.monotonic()
            elif streaming and SynthesizeStopped.is_type(event.type):
                return "synthesize-stopped"
            elif streaming and AudioStart.is_type(event.type):
                audio = audio if audio is not None else bytearray()
            elif AudioChunk.is_type(event.type):
                audio = audio if audio is not None else bytearray()
                audio += AudioChunk.from_event(event).audio
            elif not streaming and AudioStop.is_type(event.type):
                audio = audio if audio is not None else bytearray()  # an empty WAV
                return "audio-stop"

    ended_by = await asyncio.wait_for(loop(), GIVE_UP_S)
    waited = None if first_error_at is None else time.monotonic() - first_error_at
    return Reply(None if audio is None else bytes(audio), ended_by, errors, waited)


def _voice(name: str | None) -> SynthesizeVoice | None:
    return SynthesizeVoice(name=name) if name else None
