"""The GPT's token step on each runtime and precision, side by side in one run, with quality.

Builds a random-initialised checkpoint with the real XTTS-v2 architecture (30 layers × 1024),
or reads a real one (`--model-dir`), loads it as the engine does, exports the GPT to ONNX in
fp32, int8 and int4 (`engines/local/onnx_gpt.py`: each export's time, size and the process's
memory peak while exporting are printed), then measures one token step for one sentence and
for four at once, with about 150 positions already cached (the voice's 32, a sentence's text,
the audio so far), through the engine's own batches:

- PyTorch fp32 (`GptBatch`, the reference), ONNX Runtime fp32, int8 and int4 (`OnnxGptBatch`),
- PyTorch dynamic int8 (`torch_int8.py`, the old CPU path and the baseline to beat;
  quantised last: it changes the model),
- with `--int8-blocks 64,128`, ONNX Runtime int8 in larger blocks than the engine's 32 (fewer
  scales to apply, and each row's activations quantised per larger block too).

Each step beside its bound: the bytes it must read (the weights, and each sentence's cached
keys and values) over the read bandwidth measured in the same run (2 threads reading 1 GiB).

Quality against fp32 on the same tokens (teacher forcing: PyTorch fp32 samples 60 tokens, every
other path is fed them): how often the most likely next token is fp32's, the latents' RMS
difference relative to their spread, the audio's signal-to-noise ratio against fp32's (the
latents through the HiFi-GAN decoder), and the largest difference between a sentence stepped
alone and the same sentence sharing its steps with three others. Random weights give random
logits, whose top token turns on small differences: the agreement on the real weights is the
figure that counts, and `--model-dir` measures it.

    .venv/bin/python -m benchmarks.gpt_runtime [--steps 20] [--threads N] [--model-dir DIR]
        [--int8-blocks 64,128]
"""

import argparse
import math
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tests.support.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.engines.local.checkpoint import read_checkpoint
from wyoming_xtts.engines.local.gpt_batch import GptBatch, TokenBatch
from wyoming_xtts.engines.local.onnx_gpt import (
    MODEL_FILE,
    OnnxGpt,
    OnnxGptBatch,
    ensure_export,
    quantise_graph,
)

from .hardware_limits import read_bandwidth
from .torch_int8 import quantize_gpt_int8

TEXT = "The washing machine is done, and the dryer will be ready in twenty minutes."
AUDIO_SO_FAR = 40
"""Tokens stepped before the measured ones: prefix 32 + text ~80 + these ≈ 150 positions."""


def rss() -> int:
    """The process's resident bytes now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """The process's peak resident size while the block runs: the kernel's own high-water
    mark (`VmHWM`), reset on entry. Sampling from a thread would miss the peaks reached while
    a C call holds the GIL (the exporter's, for one: 5.0 GB sampled, 7.1 GB true)."""

    def __init__(self) -> None:
        self.peak = rss()

    def __enter__(self) -> "PeakSampler":
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the resident size
        return self

    def __exit__(self, *_: object) -> None:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                self.peak = int(line.split()[1]) * 1024


def step_ms(new_batch: Callable[[], TokenBatch], model: Any, rows: int, steps: int) -> float:
    """Median milliseconds of one step for `rows` sentences."""
    latent = torch.randn(1, 32, model.gpt.model_dim, generator=torch.Generator().manual_seed(0))
    text = torch.tensor(model.tokenizer.encode(TEXT.lower(), lang="en"), dtype=torch.int32)
    with torch.inference_mode():
        batch = new_batch()
        prefix = batch.voice_prefix(latent)
        samplers = [
            batch.sampler(GenerationSettings(), torch.Generator().manual_seed(row))
            for row in range(rows)
        ]
        tokens = [samplers[row].draw(batch.join(prefix, text).logits) for row in range(rows)]
        times = []
        for step in range(AUDIO_SO_FAR + steps):
            started = time.perf_counter()
            outputs = batch.step(tokens)
            if step >= AUDIO_SO_FAR:
                times.append(time.perf_counter() - started)
            tokens = [
                sampler.draw(output.logits)
                for sampler, output in zip(samplers, outputs, strict=True)
            ]
    return statistics.median(times) * 1000


def cpu_flags() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("flags", "Features")):
            return line.partition(":")[2].strip()
    return "(unknown)"


QUALITY_TOKENS = 60


def fed_latents(
    new_batch: Callable[[], TokenBatch], model: Any, tokens: list[int], rows: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and latents of row 0 fed `tokens`, the other `rows - 1` fed shifted tokens."""
    latent = torch.randn(1, 32, model.gpt.model_dim, generator=torch.Generator().manual_seed(0))
    text = torch.tensor(model.tokenizer.encode(TEXT.lower(), lang="en"), dtype=torch.int32)
    with torch.inference_mode():
        batch = new_batch()
        prefix = batch.voice_prefix(latent)
        outputs = [batch.join(prefix, text) for _ in range(rows)]
        logits, latents = [outputs[0].logits], [outputs[0].latent]
        for token in tokens:
            outputs = batch.step([token] + [(token + 97 * row) % 1024 for row in range(1, rows)])
            logits.append(outputs[0].logits)
            latents.append(outputs[0].latent)
    return torch.stack(logits), torch.stack(latents)


def sampled_tokens(model: Any) -> list[int]:
    """What PyTorch fp32 samples for the benchmark's sentence, as the engine samples."""
    latent = torch.randn(1, 32, model.gpt.model_dim, generator=torch.Generator().manual_seed(0))
    text = torch.tensor(model.tokenizer.encode(TEXT.lower(), lang="en"), dtype=torch.int32)
    with torch.inference_mode():
        batch = GptBatch(model.gpt, torch.inference_mode)
        sampler = batch.sampler(GenerationSettings(), torch.Generator().manual_seed(5))
        output = batch.join(batch.voice_prefix(latent), text)
        tokens = []
        for _ in range(QUALITY_TOKENS):
            tokens.append(sampler.draw(output.logits))
            output = batch.step([tokens[-1]])[0]
    return tokens


def quality(
    new_batch: Callable[[], TokenBatch],
    model: Any,
    tokens: list[int],
    reference: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, float]:
    logits, latents = fed_latents(new_batch, model, tokens)
    _, shared = fed_latents(new_batch, model, tokens, rows=4)
    ref_logits, ref_latents = reference
    audio, ref_audio = decoded(model, latents), decoded(model, ref_latents)
    noise = float((audio - ref_audio).pow(2).sum())
    return {
        "agreement": float((logits.argmax(-1) == ref_logits.argmax(-1)).float().mean()),
        "latent_rms": float((latents - ref_latents).pow(2).mean().sqrt() / ref_latents.std()),
        "snr_db": 10 * math.log10(float(ref_audio.pow(2).sum()) / noise) if noise else math.inf,
        "batched": float((shared - latents).abs().max()),
    }


def decoded(model: Any, latents: torch.Tensor) -> torch.Tensor:
    """The HiFi-GAN decoder's audio for the latents (a fixed speaker embedding)."""
    speaker = torch.randn(1, 512, 1, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return model.hifigan_decoder(latents[None].float(), g=speaker).flatten()


def cache_bytes(model: Any, positions: int) -> int:
    """The keys and values one sentence's step reads: every layer's, for every position."""
    return len(model.gpt.gpt.h) * 2 * positions * int(model.gpt.model_dim) * 4


def torch_weight_bytes(model: Any, int8: bool = False) -> int:
    """What a PyTorch step reads of the GPT's weights (its embeddings: one row each)."""
    total = 0
    for name, parameter in model.gpt.named_parameters():
        if not name.startswith(("gpt.h.", "gpt.ln_f", "final_norm", "mel_head")):
            continue
        matrix = name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
        total += parameter.numel() * (1 if int8 and matrix else parameter.element_size())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="measured steps per figure")
    parser.add_argument("--threads", type=int, help="torch and ONNX Runtime threads")
    parser.add_argument("--model-dir", type=Path, help="a real XTTS-v2 checkpoint directory")
    parser.add_argument(
        "--int8-blocks",
        default="",
        help="comma-separated block sizes to measure int8 in besides the engine's 32",
    )
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    import onnxruntime

    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "asimddp")
    print(f"CPU flags of note: {' '.join(flag for flag in wanted if flag in flags.split())}")
    print(
        f"threads {torch.get_num_threads()}, torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}; {arguments.steps} steps after {AUDIO_SO_FAR}, medians"
    )
    read = read_bandwidth(5)
    print(f"read bandwidth {read / 1e9:.1f} GB/s (2 threads reading 1 GiB, best of 5)")
    with tempfile.TemporaryDirectory() as scratch:
        directory = arguments.model_dir or build_checkpoint(
            Path(scratch) / "checkpoint", RELEASE_SIZE
        )
        started = time.monotonic()
        model, _ = read_checkpoint(directory, use_deepspeed=False)
        print(f"loaded in {time.monotonic() - started:.1f} s, RSS {rss() / 1e9:.2f} GB")
        layers = len(model.gpt.gpt.h)
        text_tokens = len(model.tokenizer.encode(TEXT.lower(), lang="en"))
        positions = 32 + text_tokens + 3 + AUDIO_SO_FAR + arguments.steps // 2
        per_row_cache = cache_bytes(model, positions)

        graphs: dict[str, OnnxGpt] = {}
        weights: dict[str, int] = {}
        for precision in ("fp32", "int8", "int4"):
            before = rss()
            with PeakSampler() as peak:
                export = ensure_export(
                    model.gpt,
                    Path(scratch) / f"data-{precision}",
                    "benchmark",
                    precision,  # type: ignore[arg-type]
                )
            size = sum(path.stat().st_size for path in export.directory.iterdir())
            weights[f"ONNX Runtime {precision}"] = size
            print(
                f"ONNX export {precision}: {export.seconds:.1f} s, {size / 1e9:.3f} GB on disk; "
                f"peak while exporting +{(peak.peak - before) / 1e9:.2f} GB"
            )
            before = rss()
            graphs[precision] = OnnxGpt(export.directory, layers)
            print(f"  session RSS +{(rss() - before) / 1e9:.2f} GB")
            if precision == "fp32":
                fp32_graph = export.directory / MODEL_FILE
        for block in (int(size) for size in arguments.int8_blocks.split(",") if size):
            directory = Path(scratch) / f"int8-block-{block}"
            directory.mkdir()
            quantise_graph(fp32_graph, directory / MODEL_FILE, bits=8, block=block)
            weights[f"ONNX Runtime int8/{block}"] = (directory / MODEL_FILE).stat().st_size
            graphs[f"int8/{block}"] = OnnxGpt(directory, layers)

        runs: list[tuple[str, Callable[[], TokenBatch]]] = [
            ("PyTorch fp32", lambda: GptBatch(model.gpt, torch.inference_mode)),
            *(
                (f"ONNX Runtime {precision}", lambda graph=graph: OnnxGptBatch(model.gpt, graph))
                for precision, graph in graphs.items()
            ),
        ]
        weights["PyTorch fp32"] = torch_weight_bytes(model)
        weights["PyTorch int8 (dynamic)"] = torch_weight_bytes(model, int8=True)
        tokens = sampled_tokens(model)
        reference = fed_latents(runs[0][1], model, tokens)
        figures: dict[str, dict[int, float]] = {}
        qualities: dict[str, dict[str, float]] = {}
        for name, new_batch in runs:
            figures[name] = {
                rows: step_ms(new_batch, model, rows, arguments.steps) for rows in (1, 4)
            }
            qualities[name] = quality(new_batch, model, tokens, reference)
        quantize_gpt_int8(model)
        baseline = "PyTorch int8 (dynamic)"

        def torch_batch() -> TokenBatch:
            return GptBatch(model.gpt, torch.inference_mode)

        figures[baseline] = {
            rows: step_ms(torch_batch, model, rows, arguments.steps) for rows in (1, 4)
        }
        qualities[baseline] = quality(torch_batch, model, tokens, reference)

    print(
        f"\n{'GPT token step':24} {'1 (ms)':>7} {'bound':>6} {'×bound':>7} {'4 (ms)':>7} "
        f"{'bound':>6} {'×bound':>7} {'4/1':>5} {'1/baseline':>10} {'GB read':>8}"
    )
    for name, by_rows in figures.items():
        one_bound = (weights[name] + per_row_cache) / read * 1000
        four_bound = (weights[name] + 4 * per_row_cache) / read * 1000
        print(
            f"{name:24} {by_rows[1]:7.1f} {one_bound:6.1f} {by_rows[1] / one_bound:6.2f}x "
            f"{by_rows[4]:7.1f} {four_bound:6.1f} {by_rows[4] / four_bound:6.2f}x "
            f"{by_rows[4] / by_rows[1]:5.2f} {by_rows[1] / figures[baseline][1]:9.2f}x "
            f"{weights[name] / 1e9:8.3f}"
        )
    print(
        f"(bounds: weights + {per_row_cache / 1e6:.0f} MB of cached keys and values per "
        f"sentence at {positions} positions, at {read / 1e9:.1f} GB/s)"
    )
    print(f"\nquality against PyTorch fp32, {QUALITY_TOKENS} tokens fed alike")
    print(
        f"{'':24} {'next token':>10} {'latent RMS':>11} {'audio SNR':>10} {'batched vs alone':>17}"
    )
    for name, figures_of in qualities.items():
        print(
            f"{name:24} {figures_of['agreement']:9.1%} {figures_of['latent_rms']:10.2%} "
            f"{figures_of['snr_db']:7.1f} dB {figures_of['batched']:17.2e}"
        )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\nprocess peak RSS over the run {peak_rss / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
