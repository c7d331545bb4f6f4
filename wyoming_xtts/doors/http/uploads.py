"""Recordings uploaded to the studio, checked and waiting to become part of a voice.

Each upload is stored in the data directory as it arrives (never more than `max_bytes`),
checked and cleaned exactly as `voice add` checks and cleans a file, and kept until it is
saved into a profile, removed, or an hour has passed. The voices directory is not touched
until a voice is saved.
"""

import asyncio
import contextlib
import io
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aiohttp import BodyPartReader

from ...core.audio import RECORDING_SUFFIXES, ClipReport, inspect_clip
from ...core.clip_preparation import ClipPreparationError, PreparedClip, prepare_clip, write_clip
from ...core.errors import ErrorCode
from ...core.files import disk_full_sentence, is_disk_full
from .problems import HttpCode, HttpProblem

_READ_BLOCK = 64 * 1024
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on what the studio accepts (docs/http.md, the limits of the HTTP door)."""

    max_bytes: int = 25_000_000
    """Largest recording accepted (a 30 s phone recording is 0.5-5 MB)."""

    max_pending: int = 24
    """Recordings kept waiting to be saved at once."""

    max_seconds: float = 60.0
    """Longest recording accepted: XTTS-v2 uses 30 s of each, and every waiting recording is
    held in memory, cleaned (at most 5 MB each)."""

    keep_s: float = 3600.0
    """How long an unsaved recording is kept."""

    clips_per_voice: int = 8
    """Recordings one voice may be made of (XTTS uses at most 30 s of each)."""


@dataclass(frozen=True)
class Upload:
    """One checked recording."""

    id: str
    """Random handle the page refers to it by."""

    name: str
    """The file name it was sent with, tidied (letters, digits, `.`, `-`, `_`)."""

    original: Path
    """The recording as sent."""

    report: ClipReport
    """The same checks `voice add` and `voice check` make."""

    prepared: PreparedClip | None
    """Trimmed and levelled, ready to be written into a profile; None when unusable."""

    problem: str | None
    """Why it cannot be used (besides the report's errors)."""

    received_at: float
    """`time.monotonic()` when it arrived."""

    @property
    def ok(self) -> bool:
        """True when it can be saved into a voice."""
        return self.prepared is not None

    @property
    def verdict(self) -> str:
        """One plain sentence on what it is and whether it can be used."""
        if self.prepared is None:
            reasons = [*self.report.errors, *([self.problem] if self.problem else [])]
            # Each reason names the file already ("short.wav: is 2.0 s long; ...").
            return "Cannot be used. " + (reasons[0] if reasons else f"{self.name} is unreadable.")
        verdict = (
            f"Usable: {self.prepared.duration_s:.1f} s kept of {self.report.duration_s:.1f} s "
            f"({self.report.speech_s:.1f} s of speech)."
        )
        if self.report.warnings:
            verdict += " " + " ".join(self.report.warnings)
        return verdict


class UploadStore:
    """The recordings waiting to be saved, in a directory of their own."""

    def __init__(self, directory: Path, limits: UploadLimits) -> None:
        self.directory = directory
        self.limits = limits
        self._uploads: dict[str, Upload] = {}
        shutil.rmtree(directory, ignore_errors=True)  # left by an earlier run: nobody waits

    async def receive(self, part: BodyPartReader) -> Path:
        """Write an upload's bytes to disk (off the event loop), refusing it past `max_bytes`."""
        await self._expire()
        if len(self._uploads) >= self.limits.max_pending:
            raise HttpProblem(
                HttpCode.UPLOAD_LIMIT,
                f"{self.limits.max_pending} recordings are waiting to be saved; save a voice "
                "or remove some first.",
            )
        # The file keeps a tidied form of its own name: the checks' sentences name the file.
        original = Path(part.filename or "recording").name
        stem = _UNSAFE.sub("_", Path(original).stem)[:60].strip("._") or "recording"
        suffix = Path(original).suffix.lower()
        suffix = suffix if suffix in RECORDING_SUFFIXES else ".bin"
        path = self.directory / secrets.token_hex(8) / f"{stem}{suffix}"
        file = await asyncio.to_thread(_create, path)
        size = 0
        try:
            while block := await part.read_chunk(_READ_BLOCK):
                size += len(block)
                if size > self.limits.max_bytes:
                    raise HttpProblem(
                        ErrorCode.TOO_LARGE,
                        f"The recording is larger than {self.limits.max_bytes // 1_000_000} MB; "
                        "30 s of speech is enough.",
                        "clip",
                    )
                await asyncio.to_thread(file.write, block)
            await asyncio.to_thread(file.close)
        except BaseException as err:
            await asyncio.to_thread(_discard, file, path.parent)
            if is_disk_full(err):
                raise HttpProblem(HttpCode.DISK_FULL, disk_full_sentence(self.directory)) from err
            raise
        return path

    def check(self, path: Path) -> Upload:
        """Check and clean a received recording (CPU-bound: call off the event loop)."""
        report = inspect_clip(path)
        prepared: PreparedClip | None = None
        problem = None
        if report.duration_s > self.limits.max_seconds:
            problem = (
                f"{path.name}: is {report.duration_s:.0f} s long; the studio takes recordings "
                f"of up to {self.limits.max_seconds:.0f} s (XTTS-v2 uses 30 s of each)."
            )
        elif not report.errors:
            try:
                prepared = prepare_clip(path)
            except ClipPreparationError as err:
                problem = str(err)
        upload = Upload(
            id=path.parent.name,
            name=path.name,
            original=path,
            report=report,
            prepared=prepared,
            problem=problem,
            received_at=time.monotonic(),
        )
        self._uploads[upload.id] = upload
        return upload

    def get(self, upload_id: str) -> Upload:
        """An upload by id; raises `HttpProblem(not-found)`."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise HttpProblem(
                HttpCode.NOT_FOUND,
                "That recording is no longer here (saved, removed, or older than an hour); "
                "add it again.",
                "uploads",
            )
        return upload

    @staticmethod
    def prepared_wav(upload: Upload) -> bytes:
        """The cleaned recording as WAV, to listen to before saving."""
        if upload.prepared is None:
            raise HttpProblem(ErrorCode.VOICE_UNUSABLE, upload.verdict)
        buffer = io.BytesIO()
        write_clip(upload.prepared, buffer)
        return buffer.getvalue()

    async def remove(self, upload_id: str) -> None:
        """Forget an upload and delete its file."""
        upload = self._uploads.pop(upload_id, None)
        if upload is not None:
            await asyncio.to_thread(shutil.rmtree, upload.original.parent, True)

    async def _expire(self) -> None:
        limit = time.monotonic() - self.limits.keep_s
        for upload in [u for u in self._uploads.values() if u.received_at < limit]:
            await self.remove(upload.id)


def _create(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True)
    return path.open("wb")


def _discard(file: BinaryIO, folder: Path) -> None:
    with contextlib.suppress(OSError):  # a full disk refuses the last flush too
        file.close()
    shutil.rmtree(folder, ignore_errors=True)
