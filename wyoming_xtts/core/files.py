"""Writing a file so that readers see it whole or not at all, even after a power cut.

Every file the server writes for later (a voice's settings, a cached conditioning, cached
audio) goes through `atomic_writer`: a Raspberry Pi that loses power mid-write must not
come back with a half-written voice.toml or a truncated cache entry that reads as valid.
"""

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary file that replaces `path` when the block ends without an exception.

    It is written under a hidden temporary name in the same directory (hidden, so that the
    voice library never takes it for a voice; `.tmp`, so that no cache takes it for an
    entry), flushed to the disk, renamed over `path`, and the directory's entry synced. On
    any failure the temporary file is removed and `path` is left as it was.
    """
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def write_atomically(path: Path, data: bytes) -> None:
    """`data` as the whole of `path` (see `atomic_writer`)."""
    with atomic_writer(path) as stream:
        stream.write(data)


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""The errors a write gets when there is no room: no space left, or the user's quota spent."""


def is_disk_full(error: BaseException) -> bool:
    """Whether a failed write failed for want of space (anywhere in its chain of causes)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


def disk_full_sentence(directory: Path) -> str:
    """What every command, log line and the studio say when `directory`'s disk is full."""
    return f"The disk holding {directory} is full: free some space there and try again."


def _sync_directory(directory: Path) -> None:
    """Make a rename durable: on Linux the new entry lives in the directory's own data."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # Not every filesystem lets a directory be opened; the rename has happened.
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # Some filesystems (and some FUSE mounts) refuse fsync on a directory.
    finally:
        os.close(descriptor)
