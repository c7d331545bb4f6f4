"""Reading an XTTS-v2 checkpoint directory into a model, holding its weights once.

coqui-tts' `Xtts.load_checkpoint` builds the model with random weights twice (in the
constructor and again in `init_models`, the first still alive while the second is built) and
then loads the file's weights beside them to copy them over: with the release's 1.87 GB of
weights that peaks at 4.3 GB, more than a Raspberry Pi or a small mini PC may have free.
Here each set of random weights is dropped (moved to PyTorch's meta device: shapes without
memory) as soon as it is built, and the model then takes the loaded tensors themselves
(`load_state_dict(..., assign=True)`) instead of copies. The pieces are coqui-tts' public
ones, in the order `load_checkpoint` uses them: tokenizer, speakers, `init_models`,
`get_compatible_checkpoint_state_dict` (which also converts the release's original file
format), `init_gpt_for_inference`. (Building on the meta device outright is not possible:
torchaudio checks its mel filters' values while building them.)
"""

import errno
import hashlib
from itertools import chain
from pathlib import Path

from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
from TTS.tts.layers.xtts.xtts_manager import SpeakerManager
from TTS.tts.models.xtts import Xtts

from ...core.engine import EngineUnavailableError
from .memory import release_freed_memory
from .model_files import SPEAKERS_FILE


class CheckpointReadOnlyError(Exception):
    """coqui-tts had to rewrite model.pth (the release's original format) and could not."""


def read_checkpoint(directory: Path, use_deepspeed: bool) -> tuple[Xtts, XttsConfig]:
    """The model in `directory`, ready for inference on the CPU.

    Raises `CheckpointReadOnlyError` if the file must be converted and cannot be written,
    `EngineUnavailableError` if it cannot be read.
    """
    config = XttsConfig()
    config.load_json(str(directory / "config.json"))
    try:
        model = Xtts(config).to("meta")
        release_freed_memory(collect=False)
        model.tokenizer = VoiceBpeTokenizer(vocab_file=str(directory / "vocab.json"))
        speakers = directory / SPEAKERS_FILE
        model.speaker_manager = SpeakerManager(str(speakers)) if speakers.exists() else None
        model.init_models()  # sized by the tokenizer, as load_checkpoint does
        model.to("meta")
        release_freed_memory(collect=False)
        weights = model.get_compatible_checkpoint_state_dict(directory / "model.pth")
        try:
            model.load_state_dict(weights, strict=True, assign=True)
        except RuntimeError:
            # Checkpoints of XTTS v1 carry the inference model's keys too (as in coqui-tts).
            model.gpt.init_gpt_for_inference(kv_cache=model.args.kv_cache)
            model.gpt.to("meta")
            model.load_state_dict(weights, strict=True, assign=True)
        del weights
    except (RuntimeError, OSError) as err:
        # torch.save reports a refused write as RuntimeError("... open file failed ...").
        refused = isinstance(err, PermissionError) or (
            isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
        )
        if refused or "open file failed" in str(err):
            raise CheckpointReadOnlyError(str(err)) from err
        raise EngineUnavailableError(
            f"The checkpoint in {directory} could not be loaded ({err})."
        ) from err
    except (KeyError, ValueError) as err:
        raise EngineUnavailableError(
            f"The checkpoint in {directory} could not be loaded ({err})."
        ) from err
    unfilled = [
        name
        for name, tensor in chain(model.named_parameters(), model.named_buffers())
        if tensor.is_meta
    ]
    if unfilled:
        raise EngineUnavailableError(
            f"The checkpoint in {directory} has no weights for {', '.join(unfilled[:5])}"
            f"{' and others' if len(unfilled) > 5 else ''}: not an XTTS-v2 checkpoint this "
            "coqui-tts can load."
        )
    model.hifigan_decoder.eval()
    model.gpt.init_gpt_for_inference(kv_cache=model.args.kv_cache, use_deepspeed=use_deepspeed)
    model.gpt.eval()
    return model, config


def checkpoint_fingerprint(directory: Path) -> str:
    """Identifies the loaded weights cheaply: config bytes plus the model file's size and time."""
    digest = hashlib.sha256((directory / "config.json").read_bytes())
    stat = (directory / "model.pth").stat()
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()
