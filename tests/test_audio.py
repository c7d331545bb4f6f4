"""Audio conversion: decoding provider output, loudness, the reference sent to providers."""

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wyoming_xtts.core.audio import (
    TARGET_LOUDNESS_DBFS,
    decode_audio,
    encode_reference,
    normalize_loudness,
)

from .support.clips import write_clip


def encoded(signal: np.ndarray, rate: int, container: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate, format=container)
    return buffer.getvalue()


def tone(seconds: float, rate: int, level: float = 0.5, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return level * np.sin(2 * np.pi * frequency * t)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("container", ["WAV", "FLAC", "OGG", "MP3"])
def test_provider_output_is_decoded_and_resampled_to_the_server_rate(container: str) -> None:
    data = encoded(tone(1.0, 44_100), 44_100, container)

    audio = decode_audio(data, 24_000)

    assert audio.dtype == np.float32
    assert abs(audio.size / 24_000 - 1.0) < 0.08  # MP3 frames pad a little
    assert abs(dominant_frequency(audio, 24_000) - 440) < 5


def test_stereo_output_is_mixed_to_mono() -> None:
    stereo = np.stack([tone(0.5, 24_000), tone(0.5, 24_000)], axis=1)

    audio = decode_audio(encoded(stereo, 24_000, "WAV"), 24_000)

    assert audio.ndim == 1 and audio.size == 12_000


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<html>502 Bad Gateway</html>", "not a readable audio file"),
        (b"", "not a readable audio file"),
        (encoded(np.zeros(0), 24_000, "WAV"), "holds no samples"),
    ],
)
def test_unreadable_or_empty_output_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_audio(data, 24_000)


def test_quiet_and_loud_replies_come_out_equally_loud() -> None:
    quiet, loud = tone(1.0, 24_000, level=0.05), tone(1.0, 24_000, level=0.9)

    levels = [
        20 * np.log10(np.sqrt(np.mean(np.square(normalize_loudness(x.astype(np.float32), 24_000)))))
        for x in (quiet, loud)
    ]

    assert levels[0] == pytest.approx(TARGET_LOUDNESS_DBFS, abs=0.5)
    assert levels[1] == pytest.approx(TARGET_LOUDNESS_DBFS, abs=0.5)


def test_loudness_gain_never_pushes_peaks_to_full_scale() -> None:
    spiky = np.zeros(24_000, np.float32)
    spiky[::2400] = 0.5  # sparse clicks: a large gain would be needed to reach the target RMS
    spiky += tone(1.0, 24_000, level=0.01).astype(np.float32)

    assert np.abs(normalize_loudness(spiky, 24_000)).max() <= 0.95 + 1e-6


def test_silence_is_left_alone() -> None:
    silence = np.zeros(24_000, np.float32)

    assert np.array_equal(normalize_loudness(silence, 24_000), silence)


def test_reference_joins_clips_into_one_ogg_capped_in_length(tmp_path: Path) -> None:
    clips = [
        write_clip(tmp_path / f"c{i}.wav", seconds=12.0, sample_rate=44_100, seed=i)
        for i in range(3)
    ]

    reference = encode_reference(clips, max_seconds=30.0)

    assert reference.startswith(b"OggS")
    info = soundfile.info(io.BytesIO(reference))
    assert info.samplerate == 22_050 and info.channels == 1
    assert info.duration == pytest.approx(30.0, abs=0.05)
    assert len(reference) < 256 * 1024


def _encoded(format: str, subtype: str, seconds: float = 2.0) -> bytes:
    buffer = io.BytesIO()
    tone = (0.3 * np.sin(np.arange(int(24_000 * seconds)) / 10)).astype(np.float32)
    soundfile.write(buffer, tone, 24_000, format=format, subtype=subtype)
    return buffer.getvalue()


FORMATS = [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")]


@pytest.mark.parametrize(("format", "subtype"), FORMATS, ids=[f for f, _ in FORMATS])
def test_a_whole_file_of_every_accepted_format_decodes_in_full(format: str, subtype: str) -> None:
    assert len(decode_audio(_encoded(format, subtype), 24_000)) == 48_000


@pytest.mark.parametrize(("format", "subtype"), FORMATS, ids=[f for f, _ in FORMATS])
@pytest.mark.parametrize("kept", [0.5, 0.9])
def test_a_file_cut_short_is_refused_in_every_accepted_format(
    format: str, subtype: str, kept: float
) -> None:
    data = _encoded(format, subtype)

    with pytest.raises(ValueError, match="cut short|not a readable|no samples"):
        decode_audio(data[: int(len(data) * kept)], 24_000)


def test_a_wav_written_while_streaming_without_a_length_is_accepted() -> None:
    data = bytearray(_encoded("WAV", "PCM_16"))
    data_chunk = data.index(b"data")
    data[data_chunk + 4 : data_chunk + 8] = (0xFFFFFFFF).to_bytes(4, "little")

    assert len(decode_audio(bytes(data), 24_000)) == 48_000
