"""Turning XTTS-v2's GPT latents into audio while they are generated, each latent decoded once.

coqui-tts' `inference_stream` runs the HiFi-GAN decoder over *all* latents generated so far at
every chunk and cross-fades the seams, so a sentence's decoding cost grows with the square of
its length. Here the decoder's input is built exactly as `HifiDecoder.forward` builds it (the
same linear interpolations, computed incrementally) and fed to the waveform decoder as a
stream (`StreamingHifigan`), each layer computing each position once, so the pieces join into
the audio a single decode of the whole sentence gives, without seams and without decoding any
frame twice.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from .streaming_hifigan import StreamingHifigan


@dataclass(frozen=True)
class DecoderGeometry:
    """How GPT latents map to decoder input frames."""

    latent_to_frame: float
    """Decoder frames per GPT latent before resampling (XTTS-v2: 1024 / 256 = 4)."""

    rate_ratio: float
    """Output rate over the GPT's audio rate (24000 / 22050), 1.0 when they are equal."""


class _LinearStretch:
    """`F.interpolate(mode="linear", align_corners=False, scale_factor=s)` along time, in pieces.

    An output frame is produced once both input frames it interpolates exist; at the end the
    last frames are clamped to the final input, as the one-shot interpolation does.
    """

    def __init__(self, scale: float) -> None:
        self._scale = scale
        # torch maps output j to input (j + 0.5) / scale - 0.5 in float32 for float32 tensors.
        self._inverse = np.float32(1.0 / scale)
        self._held: torch.Tensor | None = None
        self._held_from = 0  # index of the first held input frame
        self._received = 0
        self._emitted = 0

    def push(self, frames: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        """Add input frames [T, C] (or none); return the output frames [T', C] now determined."""
        if frames is None:
            if self._held is None:
                return None
            held = self._held
        else:
            held = frames if self._held is None else torch.cat((self._held, frames))
            self._received += frames.shape[0]
        if final:
            end = math.floor(self._received * self._scale)
        else:
            # Output j is final when its upper neighbour exists: floor(src_j) + 1 <= received - 1.
            end = max(self._emitted, math.ceil((self._received - 0.5) * self._scale) + 1)
            while end > self._emitted and self._source(end - 1) >= self._received - 1:
                end -= 1
        if end <= self._emitted or held.shape[0] == 0:
            self._held = held
            return held[:0]
        index = torch.arange(self._emitted, end, dtype=torch.float32, device=held.device)
        source = ((index + 0.5) * float(self._inverse) - 0.5).clamp(min=0.0)
        lower = source.floor().long()
        upper = torch.clamp(lower + 1, max=self._received - 1)
        weight = (source - lower.float()).unsqueeze(1).to(held.dtype)
        offset = self._held_from
        output = held[lower - offset] * (1.0 - weight) + held[upper - offset] * weight
        self._emitted = end
        # Later outputs start no earlier than the next output's lower neighbour.
        keep_from = min(self._source_floor(end), self._received - 1)
        self._held = held[keep_from - offset :]
        self._held_from = keep_from
        return output

    def _source(self, index: int) -> float:
        return max(float((np.float32(index) + np.float32(0.5)) * self._inverse - 0.5), 0.0)

    def _source_floor(self, index: int) -> int:
        return math.floor(self._source(index))


class StreamingDecoder:
    """Decodes one sentence's latents to audio, piece by piece, as they are added."""

    def __init__(
        self,
        waveform_decoder: torch.nn.Module,
        speaker_embedding: torch.Tensor,
        geometry: DecoderGeometry,
        length_scale: float = 1.0,
    ) -> None:
        self._waveform = StreamingHifigan(waveform_decoder, speaker_embedding)
        stages = [geometry.latent_to_frame]
        if geometry.rate_ratio != 1.0:
            stages.append(geometry.rate_ratio)
        if length_scale != 1.0:
            stages.insert(0, length_scale)
        self._stages = [_LinearStretch(scale) for scale in stages]
        self._pending: list[torch.Tensor] = []

    @property
    def pending_latents(self) -> int:
        """Latents added since audio was last taken."""
        return len(self._pending)

    def add(self, latent: torch.Tensor) -> None:
        """One GPT latent ([C] or [1, C]) in generation order."""
        self._pending.append(latent.reshape(1, -1).float())

    def take_audio(self, final: bool = False) -> np.ndarray:
        """Audio for everything added that is already determined; with `final`, all the rest."""
        frames = torch.cat(self._pending) if self._pending else None
        self._pending.clear()
        for stage in self._stages:
            frames = stage.push(frames, final)
        if frames is None:  # nothing added yet
            return np.zeros(0, dtype=np.float32)
        samples: np.ndarray = self._waveform.push(frames.T.unsqueeze(0), final).cpu().numpy()
        return samples
