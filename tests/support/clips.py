"""Reference clips generated for tests: speech-like tones, silence, wrong formats."""

from pathlib import Path

import numpy as np
import soundfile


def speechlike(seconds: float, sample_rate: int = 22_050, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-paced signal (harmonics under a 4 Hz envelope) at about -12 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    signal = voiced * envelope + 0.02 * rng.standard_normal(t.size)
    return (0.25 * signal / np.abs(signal).max()).astype(np.float32)


def write_clip(
    path: Path,
    seconds: float = 7.0,
    sample_rate: int = 22_050,
    channels: int = 1,
    seed: int = 0,
    gain: float = 1.0,
) -> Path:
    """Write a speech-like clip (any container soundfile knows from the suffix)."""
    mono = speechlike(seconds, sample_rate, seed) * gain
    samples = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.clip(samples, -1, 1), sample_rate)
    return path


def write_silence(path: Path, seconds: float = 7.0, sample_rate: int = 22_050) -> Path:
    """Write a clip of near-silence (faint noise, as a muted microphone records)."""
    rng = np.random.default_rng(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, 1e-4 * rng.standard_normal(int(seconds * sample_rate)), sample_rate)
    return path


def write_profile(
    voices_dir: Path, name: str, toml: str | None = None, clips: int = 1, **clip_options: float
) -> Path:
    """A profile directory with `clips` speech-like clips and an optional voice.toml."""
    directory = voices_dir / name
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(clips):
        write_clip(directory / f"clip{index}.wav", seed=index, **clip_options)  # type: ignore[arg-type]
    if toml is not None:
        (directory / "voice.toml").write_text(toml)
    return directory


def phone_recording(path: Path, container: str, codec: str, seconds: float = 8.0) -> Path:
    """A recording as a phone (m4a/AAC) or a browser (WebM/Opus) makes it, encoded by FFmpeg."""
    import av

    rate = 48_000
    samples = (speechlike(seconds, rate) * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            output.mux(packet)
        for packet in stream.encode(None):  # type: ignore[attr-defined]
            output.mux(packet)
    return path


def zero_runs(pcm: bytes, rate: int = 24_000, shortest: int = 48) -> list[float]:
    """Seconds of each run of exact zeros (at least `shortest` samples) in 16-bit PCM: the
    silences a server inserted, where the audio around them never holds an exact zero."""
    samples = np.frombuffer(pcm, dtype="<i2")
    is_zero = np.concatenate([[False], samples == 0, [False]])
    edges = np.flatnonzero(np.diff(is_zero.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    return [
        round(float(end - start) / rate, 3)
        for start, end in zip(starts, ends, strict=True)
        if end - start >= shortest
    ]
