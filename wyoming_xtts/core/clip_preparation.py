"""Turning a recording into a clean reference clip for a voice profile (`voice add`).

Each clip is mixed to mono, resampled to 22.05 kHz (the rate XTTS-v2 conditions on),
optionally denoised, trimmed of leading and trailing silence and brought to the same speech
level as every other clip, then written as 16-bit WAV. The original file is only read.
"""

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from .audio import (
    MIN_CLIP_SECONDS,
    XTTS_REFERENCE_RATE,
    load_clip,
    normalize_loudness,
    trim_silence,
)


class ClipPreparationError(Exception):
    """A clip that cannot be turned into a usable reference; the message says why."""


@dataclass(frozen=True)
class PreparedClip:
    """A cleaned reference clip, ready to be written into a profile."""

    source: Path
    """The original recording (left untouched)."""

    samples: np.ndarray
    """Mono float32 samples at `XTTS_REFERENCE_RATE`."""

    trimmed_s: float
    """Seconds of leading and trailing silence removed."""

    @property
    def duration_s(self) -> float:
        """Length of the prepared clip in seconds."""
        return self.samples.size / XTTS_REFERENCE_RATE


def prepare_clip(path: Path, denoise: bool = False) -> PreparedClip:
    """Decode, clean and level one recording; raises `ClipPreparationError`."""
    try:
        mono = load_clip(path, XTTS_REFERENCE_RATE)
    except ValueError as err:
        raise ClipPreparationError(f"{path.name}: {err}.") from None
    if denoise:
        mono = _denoised(mono)
    trimmed = trim_silence(mono, XTTS_REFERENCE_RATE)
    if trimmed.size < MIN_CLIP_SECONDS * XTTS_REFERENCE_RATE:
        raise ClipPreparationError(
            f"{path.name}: only {trimmed.size / XTTS_REFERENCE_RATE:.1f} s of speech is left "
            f"after trimming silence; at least {MIN_CLIP_SECONDS:.0f} s is needed."
        )
    levelled = normalize_loudness(trimmed, XTTS_REFERENCE_RATE)
    return PreparedClip(path, levelled, (mono.size - trimmed.size) / XTTS_REFERENCE_RATE)


def write_clip(clip: PreparedClip, destination: Path | BinaryIO) -> None:
    """Write a prepared clip as 16-bit mono WAV (to a path or an open binary file).

    A path is written from memory: libsndfile writing to a full disk says only "System
    error.", where Python's own write raises the `OSError` that says the disk is full.
    """
    if isinstance(destination, Path):
        encoded = io.BytesIO()
        write_clip(clip, encoded)
        destination.write_bytes(encoded.getvalue())
        return
    soundfile.write(destination, clip.samples, XTTS_REFERENCE_RATE, format="WAV", subtype="PCM_16")


def _denoised(mono: np.ndarray) -> np.ndarray:
    try:
        import noisereduce
    except ImportError:
        raise ClipPreparationError(
            "--denoise needs the noisereduce package: pip install noisereduce "
            "(it comes with the local engine's install)."
        ) from None
    cleaned = noisereduce.reduce_noise(y=mono, sr=XTTS_REFERENCE_RATE, stationary=True)
    return np.asarray(cleaned, dtype=np.float32)
