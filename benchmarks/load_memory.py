"""Memory while loading the model: coqui-tts' own loader against wyoming-xtts'.

Each way of loading runs in a fresh process (peak resident memory, `VmHWM`, only grows) on
the same checkpoint: by default a random one of the released size (1.87 GB of weights, as
`speed.py` builds), or a real one with `--model-dir`. Prints the peak while loading, the
resident memory once loaded and ready (int8: after quantising the GPT), and the load time.

    .venv/bin/python -m benchmarks.load_memory [--model-dir DIR]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.xtts_checkpoint import RELEASE_SIZE, build_checkpoint

WAYS = {
    "stock": "coqui-tts Xtts.load_checkpoint",
    "fp32": "wyoming-xtts read_checkpoint, fp32",
    "int8": "wyoming-xtts read_checkpoint, PyTorch dynamic int8 GPT (the old baseline)",
}


def memory_gb() -> dict[str, float]:
    """This process's resident memory now and at its peak, in GB."""
    figures = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) / 1024**2
    return figures


def load(way: str, checkpoint: Path) -> None:
    """Load `checkpoint` the `way` named, then print the figures as JSON (child process)."""
    from wyoming_xtts.engines.local.memory import release_freed_memory

    started = time.monotonic()
    if way == "stock":
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts

        config = XttsConfig()
        config.load_json(str(checkpoint / "config.json"))
        model = Xtts(config)
        model.load_checkpoint(config, checkpoint_dir=str(checkpoint), eval=True)
    else:
        from wyoming_xtts.engines.local.checkpoint import read_checkpoint
        from wyoming_xtts.engines.local.precision import prepare_for_inference

        model, _ = read_checkpoint(checkpoint, use_deepspeed=False)
        prepare_for_inference(model)
        if way == "int8":
            from .torch_int8 import quantize_gpt_int8

            quantize_gpt_int8(model)
    release_freed_memory()
    seconds = time.monotonic() - started
    figures = memory_gb()
    print(json.dumps({"peak": figures["VmHWM"], "ready": figures["VmRSS"], "seconds": seconds}))
    del model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="a real XTTS-v2 checkpoint directory")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        load(arguments.child[0], Path(arguments.child[1]))
        return
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = arguments.model_dir or build_checkpoint(Path(scratch) / "ck", RELEASE_SIZE)
        print(f"{'':40}{'peak (GB)':>10}{'ready (GB)':>11}{'load (s)':>10}")
        peaks = {}
        for way, label in WAYS.items():
            child = [
                sys.executable,
                "-m",
                "benchmarks.load_memory",
                "--child",
                way,
                str(checkpoint),
            ]
            output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
            figures = json.loads(output.strip().splitlines()[-1])
            peaks[way] = figures["peak"]
            print(
                f"{label:40}{figures['peak']:10.2f}{figures['ready']:11.2f}"
                f"{figures['seconds']:10.1f}"
            )
        for way in ("fp32", "int8"):
            print(f"peak {way} / peak stock: {peaks[way] / peaks['stock']:.2f}x")


if __name__ == "__main__":
    main()
