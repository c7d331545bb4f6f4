"""Turning XTTS-v2's GPT latents into audio while they are generated, each latent decoded once.

coqui-tts' `inference_stream` runs the HiFi-GAN decoder over *all* latents generated so far at
every chunk and cross-fades the seams, so a sentence's decoding cost grows with the square of
its length. Here the decoder's input is built exactly as `HifiDecoder.forward` builds it (the
same linear interpolations, computed incrementally), and only a window around the new frames
is decoded: `_CONTEXT_FRAMES` frames on each side cover the decoder's receptive field, so the
pieces join into the audio a single decode of the whole sentence gives, without seams.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

_CONTEXT_FRAMES = 14
"""Decoder input frames on each side that influence an output frame. The HiFi-GAN decoder of
XTTS-v2 sees ±13.4 frames: conv_pre (±3), the first upsampling (±1), its residual blocks
(kernel 11 with dilations 1, 3, 5 and 1, 1, 1: ±60 samples at 8 samples per frame = ±7.5) and
shrinking amounts in the later stages."""


@dataclass(frozen=True)
class DecoderGeometry:
    """How GPT latents map to decoder input frames and frames to samples."""

    latent_to_frame: float
    """Decoder frames per GPT latent before resampling (XTTS-v2: 1024 / 256 = 4)."""

    rate_ratio: float
    """Output rate over the GPT's audio rate (24000 / 22050), 1.0 when they are equal."""

    samples_per_frame: int
    """Audio samples the waveform decoder makes per input frame (XTTS-v2: 256)."""


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
        self._decode = waveform_decoder
        self._speaker = speaker_embedding
        self._hop = geometry.samples_per_frame
        stages = [geometry.latent_to_frame]
        if geometry.rate_ratio != 1.0:
            stages.append(geometry.rate_ratio)
        if length_scale != 1.0:
            stages.insert(0, length_scale)
        self._stages = [_LinearStretch(scale) for scale in stages]
        self._pending: list[torch.Tensor] = []
        self._frames: torch.Tensor | None = None  # decoder input from `_frames_from` on
        self._frames_from = 0
        self._frames_total = 0
        self._emitted = 0  # frames whose audio has been returned

    @property
    def pending_latents(self) -> int:
        """Latents added since audio was last taken."""
        return len(self._pending)

    def add(self, latent: torch.Tensor) -> None:
        """One GPT latent ([C] or [1, C]) in generation order."""
        self._pending.append(latent.reshape(1, -1).float())

    def take_audio(self, final: bool = False) -> np.ndarray:
        """Audio for everything added that is already determined; with `final`, all the rest."""
        latents = torch.cat(self._pending) if self._pending else None
        self._pending.clear()
        frames = latents
        for stage in self._stages:
            frames = stage.push(frames, final)
        if frames is not None and frames.shape[0]:
            self._append_frames(frames)
        end = self._frames_total if final else self._frames_total - _CONTEXT_FRAMES
        if end <= self._emitted or self._frames is None:
            return np.zeros(0, dtype=np.float32)
        start = max(self._emitted - _CONTEXT_FRAMES, self._frames_from)
        window = self._frames[start - self._frames_from :]
        audio = self._decode(window.T.unsqueeze(0), g=self._speaker).reshape(-1)
        piece = audio[(self._emitted - start) * self._hop : (end - start) * self._hop]
        self._emitted = end
        self._drop_frames_before(end - _CONTEXT_FRAMES)
        samples: np.ndarray = piece.float().cpu().numpy()
        return samples

    def _append_frames(self, frames: torch.Tensor) -> None:
        self._frames = frames if self._frames is None else torch.cat((self._frames, frames))
        self._frames_total += frames.shape[0]

    def _drop_frames_before(self, index: int) -> None:
        if self._frames is not None and index > self._frames_from:
            self._frames = self._frames[index - self._frames_from :]
            self._frames_from = index
