"""The two processes `speed.py` measures, each with the model to itself.

`stock`: XTTS-v2 used the way other XTTS servers use it: `Xtts.load_checkpoint`, conditioning
computed from the clip on every request, `Xtts.inference_stream` in fp32 with its default
chunking (20 tokens, re-decoding the sentence so far at each chunk), or `Xtts.inference` for
a whole sentence. Commands arrive as JSON lines on stdin; each answer is one JSON line.

`ours`: the wyoming-xtts server (the real handler, service and local engine) on a loopback
port, its engine wrapped so that each segment's timing is printed as a JSON line. The clock is
`time.monotonic()`, which is the same system-wide clock in every process on Linux, so the
orchestrator can subtract engine and client times.

Not meant to be run by hand: `speed.py` starts them.
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from wyoming.server import AsyncTcpServer

from wyoming_xtts.core.engine import Engine
from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.core.voices import Voice
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core, create_engine
from wyoming_xtts.text.language_detection import LanguageDetector

_RELEASE_SAMPLING = GenerationSettings()  # the release config's values, as ours uses them


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


# -- stock -------------------------------------------------------------------------------


class StockXtts:
    """XTTS-v2 through coqui-tts' own inference calls, as a typical XTTS server runs it."""

    def __init__(self, checkpoint: Path, device: str) -> None:
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts

        self.config = XttsConfig()
        self.config.load_json(str(checkpoint / "config.json"))
        self.model = Xtts(self.config)
        self.model.load_checkpoint(self.config, checkpoint_dir=str(checkpoint), eval=True)
        self.model.to(device)
        self.device = device

    def condition(self, clip: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """`Xtts.get_conditioning_latents` with the release settings.

        That method reads the clip with torchaudio, which needs FFmpeg's libraries; the clip is
        read with soundfile instead (it is already 22.05 kHz mono) and the method's two model
        calls are made exactly as it makes them.
        """
        samples, rate = soundfile.read(clip, dtype="float32")
        audio = torch.from_numpy(samples[: rate * self.config.max_ref_len]).unsqueeze(0)
        audio = audio.to(self.device)
        embedding = self.model.get_speaker_embedding(audio, rate)
        latent = self.model.get_gpt_cond_latents(
            audio,
            rate,
            length=self.config.gpt_cond_len,
            chunk_length=self.config.gpt_cond_chunk_len,
        )
        return latent, torch.stack([embedding]).mean(dim=0)

    def run(self, command: dict[str, Any], clip: Path) -> dict[str, Any]:
        sampling = {
            "temperature": _RELEASE_SAMPLING.temperature,
            "top_k": _RELEASE_SAMPLING.top_k,
            "top_p": _RELEASE_SAMPLING.top_p,
            "repetition_penalty": _RELEASE_SAMPLING.repetition_penalty,
            "length_penalty": _RELEASE_SAMPLING.length_penalty,
            "max_new_tokens": command["tokens"],
        }
        started = time.monotonic()
        with torch.inference_mode():
            latent, embedding = self.condition(clip)
        conditioned = time.monotonic()
        first = None
        samples = 0
        if command["op"] == "whole":
            with torch.inference_mode():
                output = self.model.inference(command["text"], "en", latent, embedding, **sampling)
            samples = int(np.asarray(output["wav"]).size)
            first = time.monotonic()
        else:
            for piece in self.model.inference_stream(
                command["text"], "en", latent, embedding, stream_chunk_size=20, **sampling
            ):
                first = first or time.monotonic()
                samples += int(piece.shape[-1])
                if command.get("first_only"):
                    break
        done = time.monotonic()
        return {
            "condition_s": conditioned - started,
            "first_s": (first or done) - started,
            "total_s": done - started,
            "generate_s": done - conditioned,
            "audio_s": samples / 24_000,
        }


def run_stock(args: argparse.Namespace) -> None:
    started = time.monotonic()
    stock = StockXtts(args.checkpoint, args.device)
    emit({"event": "ready", "load_s": time.monotonic() - started})
    for line in sys.stdin:
        emit(stock.run(json.loads(line), args.clip))


# -- ours --------------------------------------------------------------------------------


class TimingEngine:
    """Passes everything to the real engine and prints when each segment's audio came."""

    def __init__(self, inner: Engine) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        called = time.monotonic()
        first = None
        samples = 0
        finished = False
        try:
            async for piece in self._inner.synthesize(text, language, voice):
                first = first or time.monotonic()
                samples += piece.size
                yield piece
            finished = True
        finally:
            emit(
                {
                    "event": "segment",
                    "text": text,
                    "called": called,
                    "first": first,
                    "done": time.monotonic(),
                    "audio_s": samples / self._inner.sample_rate,
                    "finished": finished,
                }
            )


BASELINE = "torch-int8"
"""The old CPU path, kept here only: PyTorch fp32 loaded, then its GPT given PyTorch's dynamic
int8 (`torch_int8.py`), as `--precision int8` ran before ONNX Runtime."""


def variant_settings(variant: str) -> tuple[str, str]:
    """`--variant` as the server's (`--gpt-runtime`, `--precision`): `RUNTIME-PRECISION`
    (`onnx-int4`, `torch-fp32`), a precision alone (runtime `auto`), or the baseline."""
    if variant == BASELINE:
        return "torch", "fp32"
    runtime, _, precision = variant.rpartition("-")
    return runtime or "auto", precision


async def run_ours(args: argparse.Namespace) -> None:
    runtime, precision = variant_settings(args.variant)
    settings = Settings(
        uri=f"tcp://127.0.0.1:{args.port}",
        voices_dir=args.voices_dir,
        data_dir=args.data_dir,
        model_dir=args.checkpoint,
        device=args.device,
        precision=precision,  # type: ignore[arg-type]
        gpt_runtime=runtime,  # type: ignore[arg-type]
        deepspeed=args.deepspeed,
        language_detection=False,
    )
    started = time.monotonic()
    local = create_engine(settings)
    engine = TimingEngine(local)
    await engine.start()
    if args.variant == BASELINE:
        from .torch_int8 import quantize_gpt_int8

        quantize_gpt_int8(local._model)  # type: ignore[attr-defined]  # the baseline only
    detector = LanguageDetector()
    detector.load()
    core = build_core(settings, engine, detector)  # type: ignore[arg-type]
    server = AsyncTcpServer("127.0.0.1", args.port)
    await server.start(handler_factory(core, settings))
    emit({"event": "ready", "load_s": time.monotonic() - started})
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("stock", "ours"))
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--voices-dir", type=Path)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--variant", default="auto", help="see variant_settings")
    parser.add_argument("--deepspeed", action="store_true")
    args = parser.parse_args()
    if args.role == "stock":
        run_stock(args)
    else:
        asyncio.run(run_ours(args))


if __name__ == "__main__":
    main()
