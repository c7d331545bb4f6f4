"""Numeric precision of the loaded model: fp32, int8 GPT on CPU, fp16 GPT on CUDA; `auto`
picks the fastest mode the device runs well.

The GPT's token-by-token sampling is most of XTTS-v2's cost. On a CPU each token is a chain
of matrix-vector products limited by memory bandwidth, so int8 weights (a quarter of the
bytes) make it about twice as fast; on a GPU fp16 does the same for tensor cores. The HiFi-GAN
decoder and the conditioning encoders stay in fp32 in every mode: they are a small part of
the time and the audio is most sensitive there.
"""

import contextlib
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize
from TTS.tts.models.xtts import Xtts

from ...core.engine import EngineUnavailableError, Precision
from .memory import release_freed_memory

_LOGGER = logging.getLogger(__name__)


def resolve_precision(
    requested: Precision, device: str, cpu_flags: frozenset[str] | None = None
) -> Precision:
    """`auto` → fp16 on CUDA; on a CPU int8 where PyTorch has fast int8 kernels for it, else
    fp32. Refuses modes the device cannot run."""
    on_gpu = device.startswith("cuda")
    if requested == "auto":
        if on_gpu:
            return "fp16"
        flags = cpu_flags if cpu_flags is not None else cpu_features()
        reason = int8_kernels(flags)
        if reason is None:
            _LOGGER.info(
                "Precision auto: fp32 (this CPU lacks AVX2 and NEON, which int8 needs to be fast)"
            )
            return "fp32"
        _LOGGER.info("Precision auto: int8 (%s); --precision fp32 for the reference output", reason)
        return "int8"
    if requested == "int8" and on_gpu:
        raise EngineUnavailableError(
            "--precision int8 is for CPUs (PyTorch's dynamic quantisation has no CUDA kernels); "
            "use --precision fp16 on a GPU."
        )
    if requested == "fp16" and not on_gpu:
        raise EngineUnavailableError(
            "--precision fp16 needs a CUDA GPU (on CPUs half precision is slower than fp32); "
            "use --precision int8 for the fastest CPU mode."
        )
    return requested


def cpu_features() -> frozenset[str]:
    """The CPU's feature flags (`flags` on x86, `Features` on ARM, from /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def int8_kernels(flags: frozenset[str]) -> str | None:
    """Which of PyTorch's int8 kernels suit this CPU, in words; None when none is fast.

    fbgemm (x86) needs AVX2 and uses VNNI (Intel N100 and newer mini PCs, Zen 4) or AMX when
    present; qnnpack (ARM) needs NEON, which every 64-bit ARM core has (a Raspberry Pi 5).
    """
    engines = set(torch.backends.quantized.supported_engines)
    if "avx2" in flags and engines & {"x86", "fbgemm"}:
        extras = sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        return "x86 int8 kernels on AVX2" + (f" with {', '.join(extras)}" if extras else "")
    if "asimd" in flags and "qnnpack" in engines:
        return "ARM int8 kernels on NEON" + (" with dot product" if "asimddp" in flags else "")
    return None


def prepare_for_inference(model: Xtts, precision: Precision) -> None:
    """Make a loaded model ready to serve in `precision` (changes the model in place)."""
    fold_weight_norm(model.hifigan_decoder.waveform_decoder)
    if precision == "int8":
        quantize_gpt_int8(model)


def gpt_autocast(precision: Precision, device: str) -> contextlib.AbstractContextManager[None]:
    """Context for the GPT's work: fp16 autocast in fp16 mode, nothing otherwise."""
    if precision == "fp16":
        return torch.autocast(device_type=device.split(":")[0], dtype=torch.float16)
    return contextlib.nullcontext()


def fold_weight_norm(module: torch.nn.Module) -> None:
    """Replace weight-norm parametrisations by the weights they compute.

    Training needs the split into direction and magnitude; inference would otherwise rebuild
    every convolution's weight on every call. The result is numerically the same weight.
    """
    for child in list(module.modules()):
        if parametrize.is_parametrized(child, "weight"):
            parametrize.remove_parametrizations(child, "weight", leave_parametrized=True)


def quantize_gpt_int8(model: Xtts) -> None:
    """Dynamic int8 quantisation of the GPT transformer's linear layers.

    GPT-2 blocks use `Conv1D` (a linear layer with a transposed weight), which PyTorch's
    quantiser does not know, so each is first rebuilt as the equivalent `nn.Linear`. Weights
    become int8 per tensor; activations are quantised on the fly per call. The output is not
    bit-identical to fp32: the sampled tokens follow slightly different probabilities.
    """
    from transformers.pytorch_utils import Conv1D

    transformer = model.gpt.gpt
    replaced = 0
    # Block by block, returning each block's fp32 weights to the system before the next: the
    # whole GPT at once would hold fp32 and int8 weights side by side (2.2 GB at the peak).
    for block in transformer.h:
        for parent in list(block.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, Conv1D):
                    setattr(parent, name, _as_linear(child))
                    replaced += 1
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao, whose int8 path
            # targets GPUs and torch.compile; the pinned torch (2.11) still ships this CPU path.
            warnings.simplefilter("ignore", DeprecationWarning)
            quantize: Callable[..., Any] = torch.ao.quantization.quantize_dynamic
            quantize(block, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        release_freed_memory(collect=False)
    _LOGGER.info("GPT quantised to int8 (%d linear layers)", replaced)


def _as_linear(layer: torch.nn.Module) -> torch.nn.Linear:
    weight = layer.get_parameter("weight")  # [in, out] in Conv1D
    bias = layer.get_parameter("bias")
    linear = torch.nn.Linear(weight.shape[0], weight.shape[1])
    with torch.no_grad():
        linear.weight.copy_(weight.T)
        linear.bias.copy_(bias)
    return linear
