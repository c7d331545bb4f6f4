"""Handing freed memory back to the system after the model's big allocations.

glibc keeps freed heap memory mapped unless asked to return it: loading holds a state dict
beside the model, quantisation replaces weights, and generation grows and drops its
key/value cache tensor by tensor. Without a trim the process stays at its peak for good.
"""

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


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
