"""Conditioning latents per voice profile, computed once and cached in memory and on disk.

XTTS-v2 turns reference clips into a GPT conditioning latent and a speaker embedding; that
costs ~0.3 s per 6 s of audio and is the same for every request of a voice. The disk cache
lives under the data directory (never in the voices directory) and is keyed by everything
the result depends on: the clips' bytes, the conditioning settings and the model. A changed
clip therefore gets new latents; a truncated or corrupt cache file is ignored and rebuilt.

Used only from the model's single worker thread, so it needs no locking.
"""

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from TTS.tts.models.xtts import Xtts

from ...core.audio import XTTS_REFERENCE_RATE, load_clip
from ...core.files import atomic_writer
from ...core.voices import Voice

_LOGGER = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_LATENT_KEY = "gpt_cond_latent"
_EMBEDDING_KEY = "speaker_embedding"
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class ConditioningParams:
    """How reference audio becomes conditioning; read from the checkpoint's config.json."""

    gpt_cond_len: int
    """Seconds of (all clips joined) audio used for the GPT conditioning latent."""

    gpt_cond_chunk_len: int
    """The latent is averaged over chunks of this many seconds."""

    max_ref_len: int
    """Seconds of each clip used at most."""

    sound_norm_refs: bool
    """Peak-normalise each clip before use."""


@dataclass(frozen=True)
class Conditioning:
    """What XTTS-v2 needs to speak in a voice."""

    gpt_cond_latent: np.ndarray
    """GPT conditioning latent, shape [1, 32, model width]."""

    speaker_embedding: np.ndarray
    """HiFi-GAN speaker embedding, shape [1, 512, 1]."""


ComputeConditioning = Callable[[Sequence[Path]], Conditioning]


class ConditioningCache:
    """Conditioning per voice: memory first, then disk, then computed and stored."""

    def __init__(
        self,
        directory: Path,
        model_fingerprint: str,
        params: ConditioningParams,
        compute: ComputeConditioning,
    ) -> None:
        self._directory = directory
        self._model_fingerprint = model_fingerprint
        self._params = params
        self._compute = compute
        self._memory: dict[str, tuple[tuple[tuple[str, int, int], ...], Conditioning]] = {}

    def get(self, voice: Voice) -> Conditioning:
        """Conditioning for a profile voice; raises OSError/ValueError for unusable clips."""
        signature = tuple(
            (str(clip), stat.st_size, stat.st_mtime_ns)
            for clip, stat in ((clip, clip.stat()) for clip in voice.clips)
        )
        remembered = self._memory.get(voice.key)
        if remembered is not None and remembered[0] == signature:
            return remembered[1]

        key = self._key(voice.clips)
        path = self._directory / f"{key}.npz"
        conditioning = self._load(path)
        if conditioning is None:
            # Seconds on a CPU: worth a line, so a slow first reply in a new voice is explained.
            _LOGGER.info("Computing conditioning latents for voice %s", voice.key)
            conditioning = self._compute(voice.clips)
            self._store(path, conditioning)
        self._memory[voice.key] = (signature, conditioning)
        return conditioning

    def _key(self, clips: Sequence[Path]) -> str:
        digest = hashlib.sha256()
        header = {
            "format": _FORMAT_VERSION,
            "model": self._model_fingerprint,
            "params": asdict(self._params),
        }
        digest.update(json.dumps(header, sort_keys=True).encode())
        for clip in clips:
            digest.update(clip.name.encode() + b"\0")
            with clip.open("rb") as stream:
                while block := stream.read(_HASH_BLOCK):
                    digest.update(block)
            digest.update(b"\0")
        return digest.hexdigest()

    def _load(self, path: Path) -> Conditioning | None:
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                conditioning = Conditioning(
                    gpt_cond_latent=np.array(stored[_LATENT_KEY], dtype=np.float32),
                    speaker_embedding=np.array(stored[_EMBEDDING_KEY], dtype=np.float32),
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            _LOGGER.warning("Conditioning cache %s is unreadable (%s); recomputing", path, err)
            return None
        latent, embedding = conditioning.gpt_cond_latent, conditioning.speaker_embedding
        if (
            latent.ndim != 3
            or embedding.shape != (1, 512, 1)
            or not (np.isfinite(latent).all() and np.isfinite(embedding).all())
        ):
            _LOGGER.warning("Conditioning cache %s has unexpected contents; recomputing", path)
            return None
        return conditioning

    def _store(self, path: Path, conditioning: Conditioning) -> None:
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            with atomic_writer(path) as stream:
                np.savez(
                    stream,
                    gpt_cond_latent=conditioning.gpt_cond_latent,
                    speaker_embedding=conditioning.speaker_embedding,
                )
        except OSError as err:
            # A read-only or full data directory costs speed, not correctness.
            _LOGGER.warning("Could not write conditioning cache %s: %s", path, err)


def reference_recordings(clips: Sequence[Path], params: ConditioningParams) -> list[np.ndarray]:
    """A voice's clips as the model conditions on them: at its rate, at most `max_ref_len`
    seconds each, and loudness-normalised when the checkpoint asks for it."""
    recordings = []
    for clip in clips:
        samples = load_clip(clip, XTTS_REFERENCE_RATE)
        samples = samples[: XTTS_REFERENCE_RATE * params.max_ref_len]
        if params.sound_norm_refs:
            samples = samples / max(float(np.abs(samples).max()), 1e-6) * 0.75
        recordings.append(samples)
    return recordings


def conditioning_from(
    model: Xtts, device: str, recordings: Sequence[np.ndarray], params: ConditioningParams
) -> Conditioning:
    """The GPT's conditioning latents and the speaker embedding of these recordings, through
    coqui-tts' public model methods (clips loaded here, not by torchaudio: no FFmpeg)."""
    audios = [torch.from_numpy(samples).unsqueeze(0).to(device) for samples in recordings]
    embeddings = [model.get_speaker_embedding(audio, XTTS_REFERENCE_RATE) for audio in audios]
    latent = model.get_gpt_cond_latents(
        torch.cat(audios, dim=-1),
        XTTS_REFERENCE_RATE,
        length=params.gpt_cond_len,
        chunk_length=params.gpt_cond_chunk_len,
    )
    embedding = torch.stack(embeddings).mean(dim=0)
    return Conditioning(
        gpt_cond_latent=latent.float().cpu().numpy(),
        speaker_embedding=embedding.float().cpu().numpy(),
    )
