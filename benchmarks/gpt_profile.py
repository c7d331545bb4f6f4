"""Where one GPT token step's time goes inside ONNX Runtime, operation by operation.

Builds a random-initialised checkpoint with the real XTTS-v2 architecture (or reads a real one,
`--model-dir`), writes the engine's graph in the precision asked (`engines/local/onnx_gpt.py`),
and runs one-token steps for one sentence and for four at once with 160 cached positions, the
cache bound in and out as the engine binds it, under ONNX Runtime's own profiler (which adds a
little time of its own). Prints each kind of operation's time per step, summed over its nodes.

    .venv/bin/python -m benchmarks.gpt_profile [--precision int8] [--steps 30]
"""

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from tests.support.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.engines.local.checkpoint import read_checkpoint
from wyoming_xtts.engines.local.onnx_gpt import MODEL_FILE, ensure_export

CACHED = 160


def profile(
    graph: Path, rows: int, steps: int, threads: int
) -> tuple[float, dict[str, tuple[float, int]]]:
    """Milliseconds per step over the run, and per operation type (ms per step, nodes)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(graph.parent / f"profile-{rows}")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    layers = sum(1 for item in session.get_inputs() if item.name.endswith(".key"))
    heads, head_width = session.get_inputs()[3].shape[1], session.get_inputs()[3].shape[3]
    width = session.get_inputs()[0].shape[2]
    cache = torch.randn(layers, 2, rows, heads, CACHED + 64, head_width)
    tensors = {
        "inputs_embeds": torch.randn(rows, 1, width),
        "seqlens_k": torch.full((rows,), CACHED, dtype=torch.int32),
        "total_sequence_length": torch.tensor(CACHED + 1, dtype=torch.int32),
    }
    outputs = {
        "logits": torch.empty(rows, session.get_outputs()[0].shape[1]),
        "latent": torch.empty(rows, width),
    }
    binding = session.io_binding()
    elements = {torch.float32: np.float32, torch.int32: np.int32}
    for name, tensor in tensors.items():
        binding.bind_input(
            name, "cpu", 0, elements[tensor.dtype], list(tensor.shape), tensor.data_ptr()
        )
    for name, tensor in outputs.items():
        binding.bind_output(name, "cpu", 0, np.float32, list(tensor.shape), tensor.data_ptr())
    for layer in range(layers):
        for part, kind in enumerate(("key", "value")):
            view = cache[layer, part]
            for bind, name in (
                (binding.bind_input, f"past.{layer}.{kind}"),
                (binding.bind_output, f"present.{layer}.{kind}"),
            ):
                bind(name, "cpu", 0, np.float32, list(view.shape), view.data_ptr())
    for _ in range(steps):
        session.run_with_iobinding(binding)
    trace = session.end_profiling()
    events = json.loads(Path(trace).read_text())
    os.remove(trace)
    by_type: dict[str, float] = collections.Counter()
    nodes: dict[str, int] = collections.Counter()
    total = 0.0
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_type[event["args"]["op_name"]] += event["dur"]
            nodes[event["args"]["op_name"]] += 1
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            total += event["dur"]
    return total / steps / 1000, {
        op: (time / steps / 1000, nodes[op] // steps) for op, time in by_type.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="int8", choices=("fp32", "int8", "int4"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--model-dir", type=Path, help="a real XTTS-v2 checkpoint directory")
    arguments = parser.parse_args()
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as scratch:
        directory = arguments.model_dir or build_checkpoint(
            Path(scratch) / "checkpoint", RELEASE_SIZE
        )
        model, _ = read_checkpoint(directory, use_deepspeed=False)
        export = ensure_export(model.gpt, Path(scratch) / "data", "profile", arguments.precision)
        del model
        print(
            f"{arguments.precision}, {threads} threads, {CACHED} cached positions, "
            f"{arguments.steps} steps"
        )
        for rows in (1, 4):
            step, by_type = profile(export.directory / MODEL_FILE, rows, arguments.steps, threads)
            print(f"\n{rows} sentence(s): {step:.2f} ms a step (profiled)")
            for op, (ms, count) in sorted(by_type.items(), key=lambda item: -item[1][0]):
                print(f"  {op:22} {ms:7.2f} ms  {count:4} nodes")


if __name__ == "__main__":
    main()
