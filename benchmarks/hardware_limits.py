"""How far the local engine's two costs are from what this machine can do, in one run.

XTTS-v2 speaks in two steps with opposite limits: the GPT's token-by-token generation is
bound by memory bandwidth (every token reads all its weights once), the HiFi-GAN decoder by
arithmetic. This measures, on the machine as it is right now:

- memory bandwidth (copying 1 GiB, and reading 1 GiB) and matrix throughput (2048² products, fp32 and bf16);
- the GPT's token step at the released size (30 layers × 1024, a 120-token context already
  cached) in PyTorch fp32 and PyTorch's dynamic int8 (the old CPU path), each as a multiple of
  its memory bound: weight bytes ÷ read bandwidth (ONNX Runtime's steps against the same
  bound: `gpt_runtime.py`); and the same step for four sentences at once (the
  engine batches sentences of different clients), per sentence against that bound;
- the decoder's real-time factor (the release's HiFi-GAN shape, weight norm folded as the
  engine does) on one second of speech.

Random weights: the cost of a step does not depend on the values.

    .venv/bin/python -m benchmarks.hardware_limits [--repeats 5] [--threads N]
"""

import argparse
import time
from collections.abc import Callable
from types import SimpleNamespace

import torch
from transformers import GPT2Config, GPT2Model
from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

from tests.support.xtts_checkpoint import RELEASE_SIZE
from wyoming_xtts.core.audio import XTTS_OUTPUT_RATE
from wyoming_xtts.engines.local.precision import fold_weight_norm

from .torch_int8 import quantize_gpt_int8

CONTEXT_TOKENS = 120
"""Conditioning (32 latents) plus the text plus the audio so far, for a typical sentence."""

TOKENS_PER_SECOND = 22_050 / 1024
"""XTTS-v2's audio tokens per second of speech (1024 samples at 22.05 kHz each)."""


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` runs (the least disturbed by a shared machine)."""
    work()  # warm caches and lazy initialisation
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def memory_bandwidth(repeats: int) -> float:
    """Bytes per second read and written by a large copy."""
    source = torch.ones(256 * 1024 * 1024, dtype=torch.float32)  # 1 GiB
    target = torch.empty_like(source)
    seconds = best_seconds(lambda: target.copy_(source), repeats)
    return 2 * source.numel() * source.element_size() / seconds


def read_bandwidth(repeats: int) -> float:
    """Bytes per second read (not written) by summing 1 GiB: what a token step does with its
    weights, and so the bound each step is stated against."""
    source = torch.ones(256 * 1024 * 1024, dtype=torch.float32)
    seconds = best_seconds(source.sum, repeats)
    return source.numel() * source.element_size() / seconds


def matmul_flops(dtype: torch.dtype, repeats: int, size: int = 2048) -> float:
    """Floating-point operations per second of a square matrix product."""
    left = torch.randn(size, size).to(dtype)
    right = torch.randn(size, size).to(dtype)
    seconds = best_seconds(lambda: left @ right, repeats)
    return 2 * size**3 / seconds


def gpt(precision: str) -> tuple[GPT2Model, int]:
    """The released GPT's transformer and the bytes of weights one token step reads."""
    shape = RELEASE_SIZE
    config = GPT2Config(
        vocab_size=1,
        n_positions=1024,
        n_embd=shape.model_channels,
        n_layer=shape.layers,
        n_head=shape.heads,
    )
    model = GPT2Model(config).eval()
    model.wte = None  # XTTS feeds embeddings of its own; the token table is never read
    weight_bytes = sum(
        parameter.numel() * parameter.element_size()
        for name, parameter in model.named_parameters()
        if not name.startswith("wpe")  # one row of the position table per token
    )
    if precision == "int8":
        linear_bytes = sum(
            parameter.numel() * parameter.element_size()
            for name, parameter in model.named_parameters()
            if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
        )
        # Through the engine's own function: it only reaches for `model.gpt.gpt`.
        quantize_gpt_int8(SimpleNamespace(gpt=SimpleNamespace(gpt=model)))  # type: ignore[arg-type]
        weight_bytes -= linear_bytes * 3 // 4  # int8: a quarter of fp32's bytes
    return model, weight_bytes


def token_step_seconds(model: GPT2Model, repeats: int, rows: int = 1) -> float:
    """One token's step for `rows` sentences, `CONTEXT_TOKENS` already in the key/value cache."""
    width = model.config.n_embd
    with torch.inference_mode():
        prompt = model(inputs_embeds=torch.randn(rows, CONTEXT_TOKENS, width), use_cache=True)
        past = prompt.past_key_values
        token = torch.randn(rows, 1, width)

        def step() -> object:
            return model(inputs_embeds=token, past_key_values=past, use_cache=True)

        # Each step appends to the cache; 2 × repeats extra positions change nothing measurable.
        return best_seconds(step, repeats)


def decoder_rtf(repeats: int) -> float:
    """Seconds of decoding per second of speech, the release's HiFi-GAN as the engine runs it."""
    decoder = HifiDecoder().eval()
    fold_weight_norm(decoder.waveform_decoder)
    tokens = round(TOKENS_PER_SECOND)
    latents = torch.randn(1, tokens, 1024)
    speaker = torch.randn(1, 512, 1)
    with torch.inference_mode():
        audio_seconds = decoder(latents, g=speaker).shape[-1] / XTTS_OUTPUT_RATE
        seconds = best_seconds(lambda: decoder(latents, g=speaker), repeats)
    return seconds / audio_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    repeats = arguments.repeats

    bandwidth = memory_bandwidth(repeats)
    read = read_bandwidth(repeats)
    fp32_flops = matmul_flops(torch.float32, repeats)
    bf16_flops = matmul_flops(torch.bfloat16, repeats)
    print(f"threads {torch.get_num_threads()}, best of {repeats}")
    print(f"memory bandwidth      {bandwidth / 1e9:7.1f} GB/s copy   {read / 1e9:7.1f} GB/s read")
    print(
        f"matrix products       fp32 {fp32_flops / 1e9:7.1f} GFLOP/s   bf16 "
        f"{bf16_flops / 1e9:7.1f} GFLOP/s   ({bf16_flops / fp32_flops:.2f}×)"
    )
    for precision in ("fp32", "int8"):
        model, weight_bytes = gpt(precision)
        step = token_step_seconds(model, repeats)
        bound = weight_bytes / read
        print(
            f"GPT token step {precision}   {step * 1000:6.1f} ms   read bound "
            f"{bound * 1000:6.1f} ms ({weight_bytes / 1e9:.2f} GB)   {step / bound:.2f}× the bound"
            f" ({step / (weight_bytes / bandwidth):.2f}× the copy figure's)"
            f"   GPT alone RTF {step * TOKENS_PER_SECOND:.2f}"
        )
        four = token_step_seconds(model, repeats, rows=4)
        print(
            f"  four sentences at once {four * 1000:6.1f} ms ({four / step:.2f}× one sentence's "
            f"step), per sentence {four / 4 * 1000:.1f} ms = {four / 4 / bound:.2f}× the bound"
        )
        del model
    print(f"decoder (HiFi-GAN)    RTF {decoder_rtf(repeats):.3f}")


if __name__ == "__main__":
    main()
