"""A sentence's decoding in the engine's pieces: windows with context, or each layer streamed.

The engine decodes a sentence in pieces of 8, 8, 16, 32, then 48 tokens (`ChunkSchedule`).
Until 2026-12-07 each piece re-ran the HiFi-GAN decoder over its new frames plus 14 frames of
context on each side (its receptive field), so the context was decoded again at every piece;
now every layer is fed only its new positions and keeps the few inputs it still needs
(`engines/local/streaming_hifigan.py`). On the release's decoder shape with random weights
(weight norm folded, as the engine runs it), for a short and a long sentence, it measures in
one run, best of `--repeats`:

- the former windows (the baseline, rebuilt here),
- the layer-streamed decoder (the engine's),
- one decode of the whole sentence at once (the bound: every frame decoded once, no pieces),

each as a real-time factor (seconds of decoding per second of audio), with the ratios.

    .venv/bin/python -m benchmarks.decoder_streaming [--repeats 5]
"""

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

from wyoming_xtts.engines.local.precision import cpu_features, fold_weight_norm
from wyoming_xtts.engines.local.streaming_hifigan import StreamingHifigan
from wyoming_xtts.engines.local.xtts_stream import SECONDS_PER_TOKEN, ChunkSchedule

from .decoder_runtime import FRAMES_PER_SECOND, SAMPLES_PER_FRAME

FRAMES_PER_TOKEN = FRAMES_PER_SECOND * SECONDS_PER_TOKEN
"""Decoder input frames per GPT token (4 frames, resampled from 22.05 to 24 kHz)."""

CONTEXT_FRAMES = 14
"""The former windows' context on each side (the decoder sees ±13.4 frames)."""

SENTENCES = {"short (65 tokens, 3.0 s)": 65, "long (215 tokens, 10.0 s)": 215}


def piece_frames(tokens: int) -> list[int]:
    """Frames in each piece of a sentence of `tokens` GPT tokens, as the engine cuts it."""
    schedule = ChunkSchedule(first_tokens=8)
    sizes, done, frames_done = [], 0, 0
    while done < tokens:
        done = min(tokens, done + schedule.next_size(done))
        frames = round(done * FRAMES_PER_TOKEN)
        sizes.append(frames - frames_done)
        frames_done = frames
    return sizes


def windows(
    decoder: torch.nn.Module, speaker: torch.Tensor, frames: torch.Tensor, sizes: list[int]
) -> np.ndarray:
    """The former way: each piece's new frames decoded with context on each side."""
    pieces, emitted, total = [], 0, 0
    for index, size in enumerate(sizes):
        total += size
        end = total if index == len(sizes) - 1 else total - CONTEXT_FRAMES
        if end <= emitted:
            continue
        start = max(emitted - CONTEXT_FRAMES, 0)
        audio = decoder(frames[:, :, start:total], g=speaker).reshape(-1)
        hop = SAMPLES_PER_FRAME
        pieces.append(audio[(emitted - start) * hop : (end - start) * hop])
        emitted = end
    return torch.cat(pieces).numpy()


def streamed(
    decoder: torch.nn.Module, speaker: torch.Tensor, frames: torch.Tensor, sizes: list[int]
) -> np.ndarray:
    stream = StreamingHifigan(decoder, speaker)
    pieces, start = [], 0
    for index, size in enumerate(sizes):
        pieces.append(stream.push(frames[:, :, start : start + size], index == len(sizes) - 1))
        start += size
    return torch.cat(pieces).numpy()


def seconds_of(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    decoder = HifiDecoder().eval().waveform_decoder
    fold_weight_norm(decoder)
    speaker = torch.nn.functional.normalize(torch.randn(1, 512, 1), dim=1)
    flags = sorted(cpu_features() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "asimd"})
    print(f"{arguments.threads} threads, CPU flags: {' '.join(flags)}")
    print(
        f"{'sentence':28} {'pieces (frames)':34} {'windows':>8} {'streamed':>9} {'whole':>7}"
        f" {'streamed/windows':>17} {'streamed/whole':>15}"
    )
    with torch.inference_mode():
        for name, tokens in SENTENCES.items():
            sizes = piece_frames(tokens)
            frames = torch.randn(1, 1024, sum(sizes))
            audio_s = sum(sizes) / FRAMES_PER_SECOND
            whole = decoder(frames, g=speaker).reshape(-1).numpy()
            exact = np.abs(streamed(decoder, speaker, frames, sizes) - whole).max()
            runs: dict[str, Callable[[], object]] = {
                "windows": partial(windows, decoder, speaker, frames, sizes),
                "streamed": partial(streamed, decoder, speaker, frames, sizes),
                "whole": partial(decoder, frames, g=speaker),
            }
            best = dict.fromkeys(runs, float("inf"))
            for _ in range(arguments.repeats):  # interleaved: the machine's speed drifts
                for way, run in runs.items():
                    best[way] = min(best[way], seconds_of(run))
            rtf = {way: seconds / audio_s for way, seconds in best.items()}
            print(
                f"{name:28} {str(sizes):34} {rtf['windows']:8.3f} {rtf['streamed']:9.3f}"
                f" {rtf['whole']:7.3f} {rtf['streamed'] / rtf['windows']:17.2f}"
                f" {rtf['streamed'] / rtf['whole']:15.2f}   (streamed vs whole: {exact:.1e})"
            )


if __name__ == "__main__":
    main()
