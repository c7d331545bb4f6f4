"""Speech as a file that plays while it is being made: streamed WAV, PCM, MP3, Opus, FLAC, AAC.

Each format is encoded by FFmpeg's codecs (PyAV) into a sink that only ever appends, so every
byte can be sent as soon as it exists: the muxers see an output they cannot seek and write
headers that do not need rewriting (a WAV of unknown length, FLAC without a total, no MP3
Xing frame). The speaking service's 16-bit mono PCM goes in; the codec's own frames come out.
"""

import io
from dataclasses import dataclass

import av
import numpy as np


@dataclass(frozen=True)
class ResponseFormat:
    """One `response_format` of the speech endpoint."""

    name: str
    """The name clients ask for (OpenAI's `response_format` values)."""

    content_type: str
    """The response's Content-Type."""

    container: str | None
    """FFmpeg muxer; None for raw PCM, sent as it is."""

    codec: str | None
    """FFmpeg encoder."""

    rate: int | None = None
    """Rate the codec encodes at when it cannot take the speech's own (None: the same)."""

    options: tuple[tuple[str, str], ...] = ()
    """Muxer options: small Ogg pages so Opus leaves in pieces of 0.1 s, not 1 s."""


FORMATS: dict[str, ResponseFormat] = {
    fmt.name: fmt
    for fmt in (
        ResponseFormat("mp3", "audio/mpeg", "mp3", "libmp3lame"),
        ResponseFormat(
            "opus", "audio/ogg", "ogg", "libopus", options=(("page_duration", "100000"),)
        ),
        ResponseFormat("aac", "audio/aac", "adts", "aac"),
        ResponseFormat("flac", "audio/flac", "flac", "flac"),
        ResponseFormat("wav", "audio/wav", "wav", "pcm_s16le"),
        ResponseFormat("pcm", "audio/pcm", None, None),
    )
}
"""Every format the speech endpoint offers, by name."""

_OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)


class _Appended(io.RawIOBase):
    """A write-only, unseekable file that hands over what was written since the last look."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._pending += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._pending)
        self._pending.clear()
        return data


class StreamEncoder:
    """Encodes 16-bit mono PCM pushed in pieces; each call returns the bytes ready to send.

    CPU-bound (MP3 of a second of speech takes about 5 ms): call it off the event loop.
    """

    def __init__(self, fmt: ResponseFormat, sample_rate: int) -> None:
        self.format = fmt
        self._rate = sample_rate
        self._sink = _Appended()
        self._container: av.container.OutputContainer | None = None
        self._stream: av.audio.stream.AudioStream | None = None
        self._pts = 0
        if fmt.container is not None and fmt.codec is not None:
            rate = fmt.rate or sample_rate
            if fmt.codec == "libopus" and rate not in _OPUS_RATES:
                rate = 48_000
            self._container = av.open(
                self._sink, "w", format=fmt.container, options=dict(fmt.options)
            )
            self._stream = self._container.add_stream(fmt.codec, rate=rate, layout="mono")  # type: ignore[assignment]

    def push(self, pcm: bytes) -> bytes:
        """Encode a piece of PCM; the bytes of the file that are ready now (maybe none)."""
        if self._container is None or self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        """Flush the codec and close the file; the last bytes."""
        if self._container is None or self._stream is None:
            return b""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._sink.take()

    def close(self) -> None:
        """Release the codec without finishing (the client went away)."""
        if self._container is not None:
            try:
                self._container.close()
            except (av.error.FFmpegError, OSError, ValueError):
                pass  # a half-written file nobody will read
            self._container = None
