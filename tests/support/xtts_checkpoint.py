"""Build a random-initialised XTTS-v2 checkpoint in the release layout.

No machine that runs the tests can download the real weights, so tests and benchmarks build a
checkpoint with the same files (`config.json`, `model.pth`, `vocab.json`, `speakers_xtts.pth`)
and load it through exactly the code path that loads the real one. The stop token is made
unreachable (random weights would emit it at random), so `max_audio_tokens` or the text's
speech budget bounds every generation call: each GPT token is 1024 samples at 22.05 kHz
(46.4 ms of audio).
"""

import json
import string
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, models
from TTS.tts.configs.xtts_config import XttsArgs, XttsAudioConfig, XttsConfig
from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
from TTS.tts.models.xtts import Xtts

from wyoming_xtts.text.languages import XTTS_LANGUAGES

_SPECIAL_TOKENS = ("[STOP]", "[UNK]", "[SPACE]", "[START]")
_NEVER = -1e4
"""The stop token's output bias: no sampling setting makes a logit this low win."""
_CHARACTERS = string.ascii_lowercase + string.digits + ".,!?;:'\"-()" + "äöüßéèêàçñíóúãõ"


@dataclass(frozen=True)
class CheckpointShape:
    """Size of the GPT part of a generated checkpoint (decoder and speaker encoder are fixed)."""

    layers: int = 2
    """GPT transformer layers (the release has 30)."""

    model_channels: int = 64
    """GPT width (the release has 1024); also the decoder's input width."""

    heads: int = 4
    """Attention heads (the release has 16)."""

    max_audio_tokens: int = 24
    """`gpt_max_audio_tokens`: generation stops after this many tokens minus the 3 reserved."""


TINY = CheckpointShape()
"""A 23 M-parameter checkpoint that builds in under a second: for tests."""

RELEASE_SIZE = CheckpointShape(layers=30, model_channels=1024, heads=16, max_audio_tokens=605)
"""The real XTTS-v2 architecture (467 M parameters, 1.87 GB): for benchmarks."""


def _write_vocab(path: Path) -> None:
    """A character-level BPE vocabulary with the special and language tokens XTTS expects."""
    tokens = [*_SPECIAL_TOKENS, *(f"[{code}]" for code in XTTS_LANGUAGES), *_CHARACTERS]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.add_special_tokens([token for token in vocab if token.startswith("[")])
    tokenizer.save(str(path))


def _config(shape: CheckpointShape, vocab_path: Path) -> XttsConfig:
    config = XttsConfig()
    args = config.model_args
    args.gpt_layers = shape.layers
    args.gpt_n_model_channels = shape.model_channels
    args.gpt_n_heads = shape.heads
    args.decoder_input_dim = shape.model_channels
    args.gpt_max_audio_tokens = shape.max_audio_tokens
    args.gpt_num_audio_tokens = 1026
    args.gpt_start_audio_token = 1024
    args.gpt_stop_audio_token = 1025
    args.gpt_use_masking_gt_prompt_approach = True
    args.gpt_use_perceiver_resampler = True
    args.tokenizer_file = str(vocab_path)
    # The release config.json's inference settings.
    config.languages = list(XTTS_LANGUAGES)
    config.temperature = 0.75
    config.repetition_penalty = 5.0
    config.gpt_cond_len = 30
    config.gpt_cond_chunk_len = 4
    config.max_ref_len = 30
    return config


def build_checkpoint(
    directory: Path,
    shape: CheckpointShape = TINY,
    speakers: tuple[str, ...] = ("Ana Florence",),
    pickled_config: bool = False,
) -> Path:
    """Write a random-initialised checkpoint into `directory` and return it.

    With `pickled_config`, model.pth also holds the XttsConfig object, as the released file
    does (coqui-tts then rewrites model.pth on its first load).
    """
    directory.mkdir(parents=True, exist_ok=True)
    vocab_path = directory / "vocab.json"
    _write_vocab(vocab_path)
    config = _config(shape, vocab_path)

    torch.manual_seed(0)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(vocab_path))
    model.init_models()
    with torch.no_grad():
        # Random weights would sample the stop token now and then, at random lengths: tests
        # and benchmarks count on every sentence running to its cap or speech budget.
        model.gpt.mel_head.bias[config.model_args.gpt_stop_audio_token] = _NEVER
    checkpoint: dict[str, object] = {"model": model.state_dict()}
    if pickled_config:
        checkpoint["config"] = config
        _save_as_released(checkpoint, directory / "model.pth")
    else:
        torch.save(checkpoint, directory / "model.pth")

    config.model_args.tokenizer_file = ""
    (directory / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    latent_shape = (1, 32, shape.model_channels)
    torch.save(
        {
            name: {
                "gpt_cond_latent": torch.randn(latent_shape) * 0.1,
                "speaker_embedding": torch.nn.functional.normalize(torch.randn(1, 512, 1), dim=1),
            }
            for name in speakers
        },
        directory / "speakers_xtts.pth",
    )
    return directory


def _save_as_released(checkpoint: dict[str, object], path: Path) -> None:
    """Pickle as the release did, when these classes lived in TTS.tts.models.xtts."""
    moved = (XttsArgs, XttsAudioConfig)
    homes = [cls.__module__ for cls in moved]
    try:
        for cls in moved:
            cls.__module__ = "TTS.tts.models.xtts"
        torch.save(checkpoint, path)
    finally:
        for cls, home in zip(moved, homes, strict=True):
            cls.__module__ = home
