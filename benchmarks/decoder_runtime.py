"""The HiFi-GAN decoder on each runtime and precision, side by side in one run, with the audio.

The decoder is compute-bound (about 55 GFLOP per second of audio), so what it runs on and in
which precision is what decides its speed. On the release's decoder shape with random weights
(weight norm folded, as the engine runs it), decoding the window the engine decodes for a long
sentence's later pieces (48 tokens of new audio and 14 frames of context on each side) and a
whole sentence (5 s), it measures, in one run:

- PyTorch fp32 (the engine's decoder, the reference),
- PyTorch with bf16 weights and activations (only fast where the CPU multiplies bf16
  natively: `avx512_bf16` or `amx_bf16`; elsewhere hundreds of times slower),
- ONNX Runtime fp32 (the same decoder exported, lengths dynamic, every graph optimisation on),

each as a real-time factor (seconds of decoding per second of audio) and as a ratio to PyTorch
fp32, with the audio's signal-to-noise ratio against fp32's.

    .venv/bin/python -m benchmarks.decoder_runtime [--repeats 5] [--threads N]
"""

import argparse
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

from wyoming_xtts.core.audio import XTTS_OUTPUT_RATE
from wyoming_xtts.engines.local.precision import cpu_features, fold_weight_norm

from .hardware_limits import best_seconds

SAMPLES_PER_FRAME = 256
"""Audio samples the waveform decoder makes per input frame (its upsampling: 8 × 8 × 2 × 2)."""

FRAMES_PER_SECOND = XTTS_OUTPUT_RATE / SAMPLES_PER_FRAME
"""Decoder input frames per second of output."""


def snr_db(audio: np.ndarray, reference: np.ndarray) -> float:
    noise = float(np.sum((audio - reference) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(reference**2)) / noise)


def onnx_decoder(
    decoder: torch.nn.Module, directory: Path, frames: torch.Tensor, speaker: torch.Tensor
) -> Callable[[torch.Tensor], np.ndarray]:
    import onnxruntime

    path = directory / "decoder.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            decoder,
            (frames, {"g": speaker}),
            str(path),
            input_names=["frames", "speaker"],
            output_names=["audio"],
            dynamic_axes={"frames": {2: "length"}, "audio": {2: "samples"}},
            opset_version=17,
            dynamo=False,
        )
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    fixed = speaker.numpy()

    def run(window: torch.Tensor) -> np.ndarray:
        feeds = {names[0]: window.numpy()}
        if len(names) > 1:
            feeds[names[1]] = fixed
        return np.asarray(session.run(None, feeds)[0]).reshape(-1)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int)
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    flags = cpu_features()
    native_bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
    print(
        f"threads {torch.get_num_threads()}, best of {arguments.repeats}; native bf16: "
        f"{'yes' if native_bf16 else 'no'} ({' '.join(sorted(flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'}))})"
    )
    torch.manual_seed(0)
    decoder = HifiDecoder().eval()
    waveform = decoder.waveform_decoder
    fold_weight_norm(waveform)
    speaker = torch.randn(1, 512, 1)
    windows = {
        "later piece (48 tokens + context)": torch.randn(1, 1024, 48 * 4 + 2 * 14),
        "whole sentence (5 s)": torch.randn(1, 1024, round(5 * FRAMES_PER_SECOND)),
    }
    bf16 = HifiDecoder().eval().waveform_decoder
    fold_weight_norm(bf16)
    bf16.load_state_dict(waveform.state_dict())
    bf16 = bf16.to(torch.bfloat16)
    speaker_bf16 = speaker.to(torch.bfloat16)
    with tempfile.TemporaryDirectory() as scratch, torch.inference_mode():
        ways: dict[str, Callable[[torch.Tensor], np.ndarray]] = {
            "PyTorch fp32": lambda x: waveform(x, g=speaker).reshape(-1).numpy(),
            "PyTorch bf16": lambda x: (
                bf16(x.to(torch.bfloat16), g=speaker_bf16).float().reshape(-1).numpy()
            ),
        }
        with torch.inference_mode(False):
            started = time.monotonic()
            ways["ONNX Runtime fp32"] = onnx_decoder(
                waveform, Path(scratch), windows["whole sentence (5 s)"], speaker
            )
            print(f"decoder exported and loaded in {time.monotonic() - started:.1f} s")
        for label, window in windows.items():
            seconds_of_audio = window.shape[-1] / FRAMES_PER_SECOND
            reference = ways["PyTorch fp32"](window)
            print(f"\n{label}: {seconds_of_audio:.2f} s of audio")
            print(f"{'':20} {'RTF':>7} {'vs fp32':>8} {'SNR vs fp32':>12}")
            base = None
            for name, decode in ways.items():
                if name == "PyTorch bf16" and not native_bf16:
                    print(f"{name:20} {'-':>7} (no native bf16: not measured)")
                    continue
                rtf = (
                    best_seconds(
                        lambda decode=decode, window=window: decode(window), arguments.repeats
                    )
                    / seconds_of_audio
                )
                base = base or rtf
                print(
                    f"{name:20} {rtf:7.3f} {rtf / base:7.2f}x {snr_db(decode(window), reference):9.1f} dB"
                )


if __name__ == "__main__":
    main()
