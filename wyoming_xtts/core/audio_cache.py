"""Finished audio kept on disk, so that a repeated announcement is heard at once.

Announcements repeat ("The washing machine is done"), and Home Assistant's streaming path
caches nothing. A segment's audio is stored once it has been spoken in full, keyed by
everything that shapes it: the segment's text after clean-up and its language, the voice (its
clips as they are on disk now, its sampling settings and seed) and the engine (its weights,
precision and device). Only voices with a `seed` are cached: without one every reading is a
new sample, and replaying one would change what the voice sounds like. A changed clip or
setting makes new keys; entries nobody asks for any more age out, least recently used first,
within the size given. Files are written whole (a temporary file renamed into place); one that
cannot be read is a miss and is replaced. All methods block: call them on a thread.
"""

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .files import atomic_writer

_LOGGER = logging.getLogger(__name__)

_FORMAT_VERSION = 1
_SUFFIX = ".npy"


class AudioCache:
    """Segments' audio (float32, the engine's rate) by key, within `max_bytes` on disk."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self._directory = directory
        self._max_bytes = max_bytes

    @staticmethod
    def key(parts: Mapping[str, object]) -> str:
        """A file-safe key for everything that shapes a segment's audio."""
        canonical = json.dumps({"format": _FORMAT_VERSION, **parts}, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def get(self, key: str) -> np.ndarray | None:
        """The stored audio, or None; a hit becomes the most recently used entry."""
        path = self._path(key)
        try:
            audio: np.ndarray = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as err:
            _LOGGER.warning("Audio cache file %s is unreadable (%s); speaking it again", path, err)
            path.unlink(missing_ok=True)
            return None
        if audio.dtype != np.float32 or audio.ndim != 1 or not np.isfinite(audio).all():
            _LOGGER.warning("Audio cache file %s holds no usable audio; speaking it again", path)
            path.unlink(missing_ok=True)
            return None
        _mark_used(path)
        return audio

    def put(self, key: str, audio: np.ndarray) -> None:
        """Store a segment's audio, then drop least recently used entries past the size."""
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            with atomic_writer(self._path(key)) as stream:
                np.save(stream, np.ascontiguousarray(audio, dtype=np.float32))
            _mark_used(self._path(key))
            self._evict()
        except OSError as err:
            # A full or read-only data directory costs speed, never speech.
            _LOGGER.warning("Could not store audio in %s: %s", self._directory, err)

    def _evict(self) -> None:
        entries = []
        for path in self._directory.glob(f"*{_SUFFIX}"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # evicted meanwhile by another writer
            entries.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self._max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size

    def _path(self, key: str) -> Path:
        return self._directory / f"{key}{_SUFFIX}"


def _mark_used(path: Path) -> None:
    """Record use in the file's times, from the fine clock: the kernel's own file times are
    coarse (a few ms), too coarse to order entries used in quick succession."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))
