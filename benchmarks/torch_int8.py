"""PyTorch's dynamic int8 GPT, as the engine ran it before ONNX Runtime: the baseline to beat.

The product no longer has it (`torch.ao.quantization` is deprecated and shares one activation
scale between the sentences of a batch); the benchmarks keep it to measure what replaced it,
in the same run.
"""

import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch
from TTS.tts.models.xtts import Xtts

from wyoming_xtts.engines.local.memory import release_freed_memory

_LOGGER = logging.getLogger(__name__)


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
