"""Handing freed memory back to the system after the model's big allocations.

glibc keeps freed heap memory mapped unless asked to return it: loading holds a state dict
beside the model, quantisation replaces weights, and generation grows and drops its
key/value cache tensor by tensor. Without a trim the process stays at its peak for good.
PyTorch's CUDA allocator likewise keeps freed blocks reserved for itself until emptied.
"""

import ctypes
import ctypes.util
import functools
import gc
import os
from collections.abc import Callable
from pathlib import Path

import torch


def release_freed_memory(collect: bool = True) -> None:
    """Give freed memory back to the system.

    Loading holds the checkpoint's state dict next to the model (twice the weights),
    quantisation replaces weights, generation grows and drops its KV cache tensor by tensor;
    glibc keeps such freed memory mapped unless asked.
    """
    if collect:
        gc.collect()
    trim = malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, looked up once (finding libc runs `ldconfig`); None elsewhere."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(libc_name), "malloc_trim", None)
    return trim


def hand_back_model_memory(device: str) -> None:
    """After the model was dropped: collect its reference cycles, return the freed heap to
    the system and, on a GPU, the CUDA allocator's cached blocks to the driver (where another
    process, an LLM, can use them)."""
    release_freed_memory()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def memory_in_use(device: str) -> str:
    """What the process holds now, for the log: its resident memory and, on a GPU, what
    PyTorch has reserved there (`nvidia-smi` shows that plus the CUDA context)."""
    figures = []
    resident = resident_bytes()
    if resident is not None:
        figures.append(f"resident {resident / 1e9:.2f} GB")
    if device.startswith("cuda"):
        figures.append(f"GPU reserved {torch.cuda.memory_reserved(device) / 1e9:.2f} GB")
    return ", ".join(figures) or "not measurable here"


def resident_bytes() -> int | None:
    """The process's resident memory (Linux: /proc/self/statm); None where unknown."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")
