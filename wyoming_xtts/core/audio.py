"""Audio in and out: reference clips are read and checked here, model output becomes PCM here.

Clips and provider output are decoded with soundfile (libsndfile: WAV, FLAC, Ogg Vorbis/Opus,
MP3) and resampled with soxr, so nothing in this module needs torch. What libsndfile cannot
read (phones record m4a/AAC, browsers WebM/Opus) is decoded by FFmpeg's codecs through PyAV.
"""

import io
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import soxr

_LOGGER = logging.getLogger(__name__)

XTTS_OUTPUT_RATE = 24_000
"""Rate of XTTS-v2's speech (its HiFi-GAN decoder's output), run locally or at a provider."""

XTTS_REFERENCE_RATE = 22_050
"""Rate XTTS-v2 conditions on (reference clips), and in which its GPT's audio tokens count
(1024 samples each)."""

CLIP_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3")
"""File name endings recognised as reference clips in a profile (decoded by libsndfile)."""

RECORDING_SUFFIXES: tuple[str, ...] = (
    *CLIP_SUFFIXES,
    ".oga",
    ".opus",
    ".m4a",
    ".aac",
    ".mp4",
    ".webm",
    ".weba",
)
"""Recordings `voice add` and the studio accept: a profile's own clips are always WAV."""

RECOMMENDED_CLIP_SECONDS = (6.0, 30.0)
"""XTTS-v2 clones best from this much speech per clip; outside this range is a warning."""

RECOMMENDED_CLIP_LENGTH = f"{RECOMMENDED_CLIP_SECONDS[0]:.0f}-{RECOMMENDED_CLIP_SECONDS[1]:.0f} s"
"""`RECOMMENDED_CLIP_SECONDS` as every message and help text writes it ("6-30 s")."""

MAX_DECODED_SECONDS = 600.0
"""Longest recording decoded: a voice needs far less, and a longer file is probably a
mistake."""

MIN_CLIP_SECONDS = 3.0
"""Below this a clip holds too little of the voice to clone: the profile is unusable."""

MIN_SAMPLE_RATE = 16_000
"""Clips recorded below this rate (telephone audio) lack the detail cloning needs."""

MAX_CHANNELS = 2
"""Mono or stereo (downmixed); anything else is probably not a voice recording."""

SILENCE_DBFS = -45.0
"""A 30 ms frame quieter than this (RMS, dB full scale) counts as silence."""

MIN_SPEECH_SECONDS = 2.0
"""A clip with less non-silent audio than this is treated as silent."""

CLIPPING_FRACTION = 0.001
"""More than this share of samples at full scale means the recording is clipped."""

PCM_SAMPLE_WIDTH = 2
"""Bytes per sample of the PCM the server sends (16-bit signed little-endian)."""

_FRAME_SECONDS = 0.03
_FULL_SCALE = 0.999


@dataclass(frozen=True)
class ClipReport:
    """What one reference clip is and what is wrong with it."""

    path: Path
    """The clip file."""

    duration_s: float = 0.0
    """Length in seconds (0 when it could not be read)."""

    sample_rate: int = 0
    """Sample rate of the file in Hz."""

    channels: int = 0
    """Number of channels in the file."""

    speech_s: float = 0.0
    """Seconds of audio above the silence threshold."""

    errors: tuple[str, ...] = field(default_factory=tuple)
    """Problems that make the clip unusable, each a sentence naming the clip."""

    warnings: tuple[str, ...] = field(default_factory=tuple)
    """Problems that lower quality but leave the clip usable."""


def inspect_clip(path: Path) -> ClipReport:
    """Decode a clip and check length, sample rate, channels, silence and clipping."""
    name = path.name
    try:
        samples, sample_rate = read_recording(path)
    except ValueError as err:
        return ClipReport(path, errors=(f"{name}: {err}.",))

    frames, channels = samples.shape
    duration = frames / sample_rate if sample_rate else 0.0
    mono = samples.mean(axis=1)
    speech = _speech_seconds(mono, sample_rate)
    errors: list[str] = []
    warnings: list[str] = []

    if channels > MAX_CHANNELS:
        errors.append(f"{name}: has {channels} channels; use a mono or stereo recording.")
    if sample_rate < MIN_SAMPLE_RATE:
        errors.append(
            f"{name}: sample rate {sample_rate} Hz is too low to clone a voice; "
            f"record at {MIN_SAMPLE_RATE} Hz or more (22050 Hz or 44100 Hz is ideal)."
        )
    if duration < MIN_CLIP_SECONDS:
        errors.append(
            f"{name}: is {duration:.1f} s long; a clip needs at least {MIN_CLIP_SECONDS:.0f} s "
            f"of speech ({RECOMMENDED_CLIP_LENGTH} works best)."
        )
    elif speech < MIN_SPEECH_SECONDS:
        errors.append(
            f"{name}: is silent or nearly so (only {speech:.1f} s above {SILENCE_DBFS:.0f} dBFS); "
            "check the recording level."
        )
    else:
        low, high = RECOMMENDED_CLIP_SECONDS
        if duration < low:
            warnings.append(
                f"{name}: is {duration:.1f} s long; {RECOMMENDED_CLIP_LENGTH} of speech clones better."
            )
        elif duration > high:
            warnings.append(
                f"{name}: is {duration:.1f} s long; only the first {high:.0f} s is used."
            )
    if channels == 2:
        warnings.append(f"{name}: is stereo; it is mixed down to mono.")
    if frames and np.mean(np.abs(samples) >= _FULL_SCALE) > CLIPPING_FRACTION:
        warnings.append(f"{name}: is clipped (distorted at full scale); record a little quieter.")

    return ClipReport(
        path=path,
        duration_s=duration,
        sample_rate=sample_rate,
        channels=channels,
        speech_s=speech,
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


def _speech_seconds(mono: np.ndarray, sample_rate: int) -> float:
    """Seconds of 30 ms frames louder than the silence threshold."""
    loud = _frame_rms(mono, sample_rate) > 10 ** (SILENCE_DBFS / 20)
    return float(np.count_nonzero(loud) * _frame_length(sample_rate) / sample_rate)


def trim_silence(mono: np.ndarray, sample_rate: int, padding_s: float = 0.2) -> np.ndarray:
    """`mono` without the silence before the first and after the last non-silent frame."""
    loud = np.flatnonzero(_frame_rms(mono, sample_rate) > 10 ** (SILENCE_DBFS / 20))
    if loud.size == 0:
        return mono[:0]
    frame, padding = _frame_length(sample_rate), int(padding_s * sample_rate)
    start = max(0, int(loud[0]) * frame - padding)
    end = min(len(mono), (int(loud[-1]) + 1) * frame + padding)
    return mono[start:end]


def _frame_length(sample_rate: int) -> int:
    return max(1, int(sample_rate * _FRAME_SECONDS))


def _frame_rms(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS of each whole 30 ms frame."""
    frame = _frame_length(sample_rate)
    usable = (len(mono) // frame) * frame
    frames = mono[:usable].reshape(-1, frame)
    levels: np.ndarray = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    return levels


def read_recording(path: Path) -> tuple[np.ndarray, int]:
    """A recording's samples (float32, frames × channels) and rate; raises ValueError.

    libsndfile first (it reads every profile clip); FFmpeg's decoders (PyAV) for what it
    cannot read, such as a phone's m4a or a browser's WebM recording.
    """
    try:
        samples, rate = soundfile.read(
            path, dtype="float32", always_2d=True, frames=_max_frames(path)
        )
    except (soundfile.LibsndfileError, RuntimeError) as err:
        libsndfile_error: Exception = err
    except OSError as err:
        raise ValueError(f"cannot be read ({err.strerror or 'input/output error'})") from None
    else:
        return samples, rate
    try:
        return _read_with_ffmpeg(path)
    except ValueError as err:
        # The decoders' own words name paths and codecs: for the log, not for the user.
        _LOGGER.debug("%s: libsndfile: %s; FFmpeg: %s", path, libsndfile_error, err)
        raise ValueError(
            "cannot be decoded as audio; record or export it as WAV, FLAC, Ogg, MP3, "
            "m4a (AAC) or WebM"
        ) from None


def _max_frames(path: Path) -> int:
    info = soundfile.info(str(path))
    if info.duration > MAX_DECODED_SECONDS:
        raise ValueError(
            f"is {info.duration:.0f} s long; at most {MAX_DECODED_SECONDS:.0f} s is read"
        )
    return -1


def _read_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    import av  # ~0.1 s to import; only recordings libsndfile cannot read need it

    pieces: list[np.ndarray] = []
    rate = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ValueError("it holds no audio stream")
            stream = container.streams.audio[0]
            # Planar float keeps each channel apart whatever the codec's own sample format.
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name)
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    rate = converted.sample_rate
                    pieces.append(converted.to_ndarray())
                    if sum(p.shape[1] for p in pieces) > MAX_DECODED_SECONDS * rate:
                        raise ValueError(f"it is longer than {MAX_DECODED_SECONDS:.0f} s")
    except av.error.FFmpegError as err:
        raise ValueError(str(err)) from None
    if not pieces:
        raise ValueError("it holds no audio")
    return np.ascontiguousarray(np.concatenate(pieces, axis=1).T, dtype=np.float32), rate


def load_clip(path: Path, sample_rate: int) -> np.ndarray:
    """Decode a clip to mono float32 in [-1, 1] at `sample_rate`."""
    samples, source_rate = read_recording(path)
    mono = samples.mean(axis=1)
    if source_rate != sample_rate:
        mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] → 16-bit signed little-endian PCM (out-of-range values clipped)."""
    scaled = np.clip(samples, -1.0, 1.0) * 32767.0
    return bytes(scaled.astype("<i2").tobytes())


_PCM_TYPES = {2: "<i2", 4: "<i4"}
"""Sample widths (bytes) of the PCM read from other servers, and their numpy types."""


def from_pcm(pcm: bytes, width: int, channels: int) -> np.ndarray:
    """Signed little-endian PCM (16 or 32 bits, interleaved channels) → mono float32 in [-1, 1].

    Raises ValueError for another width or a byte count that is not whole frames."""
    dtype = _PCM_TYPES.get(width)
    if dtype is None or channels < 1:
        raise ValueError(f"{8 * width}-bit PCM in {channels} channel(s) cannot be read")
    if len(pcm) % (width * channels):
        raise ValueError(f"{len(pcm)} bytes are not whole {channels}-channel frames")
    samples = np.frombuffer(pcm, dtype=dtype).astype(np.float32) / float(2 ** (8 * width - 1))
    mono: np.ndarray = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return mono


class StreamResampler:
    """Audio arriving in pieces at one rate, leaving at another, with no seam where the pieces
    meet (each piece resampled alone would click at its edges). A pass-through when the rates
    are the same."""

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self._stream = (
            None
            if source_rate == target_rate
            else soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")
        )

    def push(self, samples: np.ndarray) -> np.ndarray:
        """The resampled audio available so far (the resampler holds back a few ms)."""
        if self._stream is None:
            return samples
        resampled: np.ndarray = self._stream.resample_chunk(
            np.ascontiguousarray(samples, dtype=np.float32)
        )
        return resampled

    def flush(self) -> np.ndarray:
        """What the resampler held back, at the end of the audio."""
        if self._stream is None:
            return np.zeros(0, np.float32)
        rest: np.ndarray = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        return rest


class PcmChunker:
    """Regroups PCM bytes of any size into chunks of a fixed number of samples."""

    def __init__(self, samples_per_chunk: int, sample_width: int = PCM_SAMPLE_WIDTH) -> None:
        self._chunk_bytes = samples_per_chunk * sample_width
        self._pending = bytearray()

    def push(self, pcm: bytes) -> list[bytes]:
        """Add PCM; return every full chunk now available."""
        self._pending += pcm
        full = len(self._pending) - len(self._pending) % self._chunk_bytes
        chunks = [
            bytes(self._pending[start : start + self._chunk_bytes])
            for start in range(0, full, self._chunk_bytes)
        ]
        del self._pending[:full]
        return chunks

    def flush(self) -> bytes:
        """Return what is left (shorter than a chunk), possibly nothing."""
        rest = bytes(self._pending)
        self._pending.clear()
        return rest


TARGET_LOUDNESS_DBFS = -20.0
"""RMS level cloud audio is brought to, so replies sound equally loud whatever the provider did."""

_PEAK_CEILING = 0.95


def decode_audio(data: bytes, sample_rate: int) -> np.ndarray:
    """Decode an audio file held in memory (WAV, FLAC, Ogg, MP3) to mono float32 at `sample_rate`.

    Raises ValueError when the bytes are not audio, hold no samples, or are cut short: a WAV
    whose header declares more audio than the bytes hold, a file that declares more frames
    than decode (MP3's Xing header, FLAC), or a decoder that loses its way (FLAC, Ogg).
    Decoders alone would play the first part of a cut file without a word.
    """
    shortfall = _wav_shortfall(data)
    if shortfall is not None:
        raise ValueError(f"the file is cut short: {shortfall}")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as file:
            declared, source_rate = file.frames, file.samplerate
            samples = file.read(dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(f"not a readable audio file ({err})") from err
    if samples.size == 0:
        raise ValueError("the audio file holds no samples")
    if len(samples) < declared:
        raise ValueError(
            f"the file is cut short: it declares {declared} frames but only {len(samples)} decode"
        )
    mono = samples.mean(axis=1)
    if not np.isfinite(mono).all():
        raise ValueError("the audio holds invalid samples")
    if source_rate != sample_rate:
        mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


_RIFF_HEADER = struct.Struct("<4sI4s")
_RIFF_CHUNK = struct.Struct("<4sI")
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # written by encoders that stream without seeking back


def _wav_shortfall(data: bytes) -> str | None:
    """What a RIFF/WAVE file lacks against its own header; None if whole or not a WAV."""
    if len(data) < _RIFF_HEADER.size:
        return None
    riff, _, wave = _RIFF_HEADER.unpack_from(data)
    if riff != b"RIFF" or wave != b"WAVE":
        return None
    position = _RIFF_HEADER.size
    while position + _RIFF_CHUNK.size <= len(data):
        chunk, size = _RIFF_CHUNK.unpack_from(data, position)
        body = position + _RIFF_CHUNK.size
        if chunk == b"data":
            available = len(data) - body
            if size in _UNKNOWN_SIZES or size <= available:
                return None
            return f"its header declares {size} bytes of audio but {available} arrived"
        position = body + size + (size & 1)
    return "it ends before its audio data"


def normalize_loudness(
    samples: np.ndarray, sample_rate: int, target_dbfs: float = TARGET_LOUDNESS_DBFS
) -> np.ndarray:
    """Scale to an RMS of `target_dbfs` over the non-silent frames, never past a -0.4 dBFS peak."""
    rms = _frame_rms(samples, sample_rate)
    voiced = rms[rms > 10 ** (SILENCE_DBFS / 20)]
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if voiced.size == 0 or peak == 0.0:
        return samples
    gain = 10 ** (target_dbfs / 20) / float(np.sqrt(np.mean(np.square(voiced))))
    return (samples * min(gain, _PEAK_CEILING / peak)).astype(np.float32)


def encode_reference(
    clips: Sequence[Path], max_seconds: float, sample_rate: int = XTTS_REFERENCE_RATE
) -> bytes:
    """Join clips (mono, `sample_rate`, at most `max_seconds`) into one compact Ogg Vorbis file.

    Cloud providers take a single reference file by URL; Ogg keeps a 30 s reference near 200 KB
    where 16-bit WAV would be 1.3 MB.
    """
    joined = np.concatenate([load_clip(clip, sample_rate) for clip in clips])
    joined = joined[: int(max_seconds * sample_rate)]
    buffer = io.BytesIO()
    soundfile.write(buffer, joined, sample_rate, format="OGG", subtype="VORBIS")
    return buffer.getvalue()
