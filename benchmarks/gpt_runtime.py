"""The GPT's token step on each runtime, side by side in one run, on the full-size architecture.

Builds a random-initialised checkpoint with the real XTTS-v2 architecture (30 layers × 1024),
loads it as the engine does, exports the GPT to ONNX (`engines/local/onnx_gpt.py`: its time
and the process's memory peak while exporting are printed), then measures one token step for
one sentence and for four at once, with a context of about 120 positions already cached (the
voice's 32, a sentence's text, the audio so far), through the engine's own batches:

- PyTorch fp32 (`GptBatch`, the reference),
- ONNX Runtime fp32 (`OnnxGptBatch`, the cache bound in place between steps), and the same
  graph run through numpy (`session.run`: inputs and outputs as numpy arrays) for comparison,
- PyTorch dynamic int8 (`--precision int8` as today; quantised last: it changes the model).

Medians over the steps. Random weights: a step's cost does not depend on the values.

    .venv/bin/python -m benchmarks.gpt_runtime [--steps 20] [--threads N]
"""

import argparse
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.support.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.engines.local.checkpoint import read_checkpoint
from wyoming_xtts.engines.local.gpt_batch import GptBatch, KeysValues, TokenBatch
from wyoming_xtts.engines.local.onnx_gpt import OnnxGpt, OnnxGptBatch, ensure_export
from wyoming_xtts.engines.local.precision import quantize_gpt_int8

TEXT = "The washing machine is done, and the dryer will be ready in twenty minutes."
AUDIO_SO_FAR = 40
"""Tokens stepped before the measured ones: prefix 32 + text ~80 + these ≈ 150 positions."""


def rss() -> int:
    """The process's resident bytes now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """The highest resident size seen while the block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss())


class NumpyOnnxGpt(OnnxGpt):
    """The same session run through numpy arrays instead of bound tensors."""

    def run(
        self, embeds: torch.Tensor, mask: torch.Tensor, past: KeysValues
    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        session: Any = self._session
        feeds = [embeds.float(), mask.long(), *(t for pair in past for t in pair)]
        outputs = session.run(
            self._outputs,
            {name: t.contiguous().numpy() for name, t in zip(self._inputs, feeds, strict=True)},
        )
        tensors = [torch.from_numpy(np.asarray(array)) for array in outputs]
        return tensors[0], tensors[1], list(zip(tensors[2::2], tensors[3::2], strict=True))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="measured steps per figure")
    parser.add_argument("--threads", type=int, help="torch and ONNX Runtime threads")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    import onnxruntime

    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "asimddp")
    print(f"CPU flags: {flags}")
    print(f"  of note: {' '.join(flag for flag in wanted if flag in flags.split())}")
    print(
        f"threads {torch.get_num_threads()}, torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}; {arguments.steps} steps after {AUDIO_SO_FAR}, medians"
    )
    with tempfile.TemporaryDirectory() as scratch:
        directory = build_checkpoint(Path(scratch) / "checkpoint", RELEASE_SIZE)
        started = time.monotonic()
        model, _ = read_checkpoint(directory, use_deepspeed=False)
        print(f"loaded in {time.monotonic() - started:.1f} s, RSS {rss() / 1e9:.2f} GB")

        before = rss()
        with PeakSampler() as export_peak:
            export = ensure_export(model.gpt, Path(scratch) / "data", "benchmark")
        size = sum(path.stat().st_size for path in export.directory.iterdir())
        print(
            f"ONNX export {export.seconds:.1f} s, {size / 1e9:.2f} GB on disk; RSS before "
            f"{before / 1e9:.2f} GB, peak while exporting {export_peak.peak / 1e9:.2f} GB "
            f"(+{(export_peak.peak - before) / 1e9:.2f} GB)"
        )
        layers = len(model.gpt.gpt.h)
        before = rss()
        started = time.monotonic()
        with PeakSampler() as session_peak:
            graph = OnnxGpt(export.directory, layers)
        print(
            f"ONNX Runtime session {time.monotonic() - started:.1f} s, RSS +"
            f"{(rss() - before) / 1e9:.2f} GB (peak +{(session_peak.peak - before) / 1e9:.2f} GB)"
        )
        numpy_graph = NumpyOnnxGpt(export.directory, layers)

        figures: dict[str, dict[int, float]] = {}
        runs: list[tuple[str, Callable[[], TokenBatch]]] = [
            ("PyTorch fp32", lambda: GptBatch(model.gpt, torch.inference_mode)),
            ("ONNX Runtime fp32 (bound)", lambda: OnnxGptBatch(model.gpt, graph)),
            ("ONNX Runtime fp32 (numpy)", lambda: OnnxGptBatch(model.gpt, numpy_graph)),
        ]
        for name, new_batch in runs:
            figures[name] = {
                rows: step_ms(new_batch, model, rows, arguments.steps) for rows in (1, 4)
            }
        quantize_gpt_int8(model)
        figures["PyTorch int8 (dynamic)"] = {
            rows: step_ms(
                lambda: GptBatch(model.gpt, torch.inference_mode), model, rows, arguments.steps
            )
            for rows in (1, 4)
        }
    reference = figures["PyTorch fp32"]
    print(
        f"\n{'GPT token step (ms)':32} {'1 sentence':>11} {'4 at once':>10} {'per sentence':>13}"
        f" {'1 vs fp32':>10}"
    )
    for name, by_rows in figures.items():
        print(
            f"{name:32} {by_rows[1]:11.1f} {by_rows[4]:10.1f} {by_rows[4] / 4:13.1f} "
            f"{by_rows[1] / reference[1]:9.2f}x"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\nprocess peak RSS over the run {peak / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
