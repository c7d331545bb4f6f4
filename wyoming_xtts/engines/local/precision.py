"""What runs the GPT and in which precision: `auto` picks the fastest the device runs well.

The GPT's token-by-token sampling is most of XTTS-v2's cost. On a CPU each token is a chain of
matrix-vector products limited by memory bandwidth, so smaller weights make it faster: the
GPT runs on ONNX Runtime with its weight matrices quantised in blocks of 32 (`int8`, or
`int4` for a quarter of int8's bytes again; engines/local/onnx_gpt.py), multiplied by int8
kernels that quantise each sentence's activations on their own. On a GPU, PyTorch runs fp16
for the tensor cores. PyTorch fp32 is the reference everywhere. The HiFi-GAN decoder and the
conditioning encoders stay in fp32 in every mode: the audio is most sensitive there.
"""

import contextlib
import logging
from pathlib import Path

import torch
from torch.nn.utils import parametrize
from TTS.tts.models.xtts import Xtts

from ...core.engine import DecoderPrecision, EngineUnavailableError, GptRuntime, Precision

_LOGGER = logging.getLogger(__name__)

QUANTISED: frozenset[Precision] = frozenset({"int8", "int4"})
"""The block-quantised precisions: ONNX Runtime on a CPU only."""


def resolve_gpt(
    precision: Precision,
    runtime: GptRuntime,
    device: str,
    cpu_flags: frozenset[str] | None = None,
) -> tuple[GptRuntime, Precision]:
    """The runtime and precision to run the GPT in, `auto` resolved: PyTorch fp16 on CUDA;
    on a CPU ONNX Runtime in int8 where the CPU has int8 dot products (AVX2, NEON), else
    fp32. Refuses what the device or runtime cannot run, saying what would."""
    on_gpu = device.startswith("cuda")
    if runtime == "auto":
        runtime = "torch" if on_gpu else "onnx"
    if on_gpu:
        return runtime, _gpu_precision(precision, runtime)
    if precision == "fp16":
        raise EngineUnavailableError(
            "--precision fp16 needs a CUDA GPU (on CPUs half precision is slower than fp32); "
            "use --precision int8 for the fastest CPU mode."
        )
    if runtime == "torch":
        if precision in QUANTISED:
            raise EngineUnavailableError(
                f"--precision {precision} runs on ONNX Runtime: use --gpt-runtime onnx (or "
                "auto) with it, or --precision fp32 with --gpt-runtime torch."
            )
        if precision == "auto":
            _LOGGER.info("Precision auto with --gpt-runtime torch on a CPU: fp32 (the reference)")
        return runtime, "fp32"
    if precision != "auto":
        return runtime, precision
    reason = int8_kernels(cpu_flags if cpu_flags is not None else cpu_features())
    if reason is None:
        _LOGGER.info(
            "Precision auto: fp32 on ONNX Runtime (this CPU lacks AVX2 and NEON, which int8 "
            "needs to be fast)"
        )
        return runtime, "fp32"
    _LOGGER.info(
        "Precision auto: int8 on ONNX Runtime (%s, the weights in blocks of 32); "
        "--precision int4 is faster with larger differences, --precision fp32 is the reference",
        reason,
    )
    return runtime, "int8"


def _gpu_precision(precision: Precision, runtime: GptRuntime) -> Precision:
    if runtime == "onnx":
        raise EngineUnavailableError(
            "--gpt-runtime onnx runs on the CPU: use --device cpu, or --gpt-runtime torch "
            "(or auto) on a GPU."
        )
    if precision in QUANTISED:
        raise EngineUnavailableError(
            f"--precision {precision} is for CPUs (ONNX Runtime's block-quantised kernels); "
            "use --precision fp16 on a GPU."
        )
    return "fp16" if precision == "auto" else precision


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
    """Which of ONNX Runtime's int8 kernels suit this CPU, in words; None when none is fast.

    Its x86 kernels need AVX2 and use AVX-VNNI (Intel N100 and newer mini PCs), AVX-512 VNNI
    (Zen 4, Xeons) or AMX when present; its ARM kernels need NEON, which every 64-bit ARM core
    has (a Raspberry Pi 5), and use the dot-product instructions where there are some.
    """
    if "avx2" in flags:
        extras = sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        return "int8 kernels on AVX2" + (f" with {', '.join(extras)}" if extras else "")
    if "asimd" in flags:
        return "int8 kernels on NEON" + (" with dot product" if "asimddp" in flags else "")
    return None


def waveform_decoder(
    model: Xtts,
    precision: DecoderPrecision,
    device: str,
    cpu_flags: frozenset[str] | None = None,
) -> torch.nn.Module:
    """The HiFi-GAN waveform decoder to speak with: the model's own in fp32, or in bf16 (its
    weights converted in place) where the CPU multiplies bf16 natively; refused elsewhere."""
    waveform: torch.nn.Module = model.hifigan_decoder.waveform_decoder
    if precision == "fp32":
        return waveform
    if device != "cpu":
        raise EngineUnavailableError(
            "--decoder-precision bf16 is for CPUs with native bf16: use --decoder-precision "
            "fp32 on a GPU."
        )
    flags = cpu_flags if cpu_flags is not None else cpu_features()
    if not flags & {"avx512_bf16", "amx_bf16"}:
        raise EngineUnavailableError(
            "--decoder-precision bf16 needs a CPU that multiplies bf16 natively (avx512_bf16 "
            "or amx_bf16), which this one does not: it would decode hundreds of times slower. "
            "Use --decoder-precision fp32."
        )
    _LOGGER.info(
        "HiFi-GAN decoder in bf16 (%s)", " ".join(sorted(flags & {"avx512_bf16", "amx_bf16"}))
    )
    # The streaming decoder computes in its weights' dtype, float frames in, float audio out.
    return waveform.to(torch.bfloat16)


def prepare_for_inference(model: Xtts) -> None:
    """Make a loaded model ready to serve (changes the model in place)."""
    fold_weight_norm(model.hifigan_decoder.waveform_decoder)


def gpt_autocast(precision: Precision, device: str) -> contextlib.AbstractContextManager[None]:
    """Context for PyTorch's GPT work: fp16 autocast in fp16 mode, nothing otherwise."""
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
