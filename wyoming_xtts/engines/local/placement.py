"""Where and how the model runs: the device, the precision each GPT runtime can run, what
DeepSpeed needs, and the GPT moved onto ONNX Runtime (`--gpt-runtime onnx`)."""

import logging
from functools import partial
from pathlib import Path

import torch
from TTS.tts.models.xtts import Xtts

from ...core.engine import EngineUnavailableError, Precision
from ...core.files import disk_full_sentence, is_disk_full
from .memory import release_freed_memory
from .onnx_gpt import OnnxExportError, OnnxGpt, load_onnx_gpt
from .stack import stack_failure

_LOGGER = logging.getLogger(__name__)


def pick_device(requested: str) -> str:
    """Resolve `auto` and check that a requested GPU exists."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EngineUnavailableError(
                f"--device {requested} was requested but PyTorch sees no CUDA GPU; "
                "use --device cpu or install a CUDA build of torch."
            )
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise EngineUnavailableError(
                f"--device {requested} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist."
            )
    return requested


def gpt_on_onnx(model: Xtts, data_dir: Path, fingerprint: str, precision: Precision) -> OnnxGpt:
    """The GPT on ONNX Runtime in `precision` (fp32, int8 or int4); PyTorch's copy of the
    transformer's blocks is then dropped (moved to the meta device: the graph holds the
    weights)."""
    if precision not in ("fp32", "int8", "int4"):
        raise EngineUnavailableError(f"--gpt-runtime onnx has no precision {precision}.")
    try:
        import onnxruntime  # noqa: F401
    except (ImportError, OSError) as err:
        raise stack_failure("importing ONNX Runtime", err) from err
    try:
        session, export = load_onnx_gpt(
            model.gpt, data_dir, fingerprint, precision, partial(_drop_torch_blocks, model)
        )
    except OSError as err:
        if is_disk_full(err):
            raise EngineUnavailableError(disk_full_sentence(data_dir)) from err
        raise EngineUnavailableError(
            f"The GPT's ONNX export under {data_dir / 'onnx'} could not be written or read ({err})."
        ) from err
    except (OnnxExportError, RuntimeError) as err:
        raise stack_failure("exporting the GPT to ONNX", err) from err
    _drop_torch_blocks(model)
    if export.seconds:
        release_freed_memory()  # what writing and quantising the graph held (GBs at its peak)
    _LOGGER.info(
        "GPT on ONNX Runtime (%s) from %s%s",
        precision,
        export.directory,
        f", exported in {export.seconds:.1f} s" if export.seconds else "",
    )
    return session


def _drop_torch_blocks(model: Xtts) -> None:
    """PyTorch's copy of the transformer's blocks, no longer needed once the graph has its
    weights: moved to the meta device and the memory handed back (once)."""
    if not next(model.gpt.gpt.h.parameters()).is_meta:
        model.gpt.gpt.h.to("meta")
        release_freed_memory()


def check_deepspeed(device: str) -> None:
    """DeepSpeed's inference kernels need a GPU and the package; say which is missing."""
    if not device.startswith("cuda"):
        raise EngineUnavailableError("--deepspeed needs a CUDA GPU (--device cuda).")
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise EngineUnavailableError(
            "--deepspeed was requested but DeepSpeed is not installed: "
            "pip install deepspeed (it builds CUDA kernels on first use)."
        ) from None
