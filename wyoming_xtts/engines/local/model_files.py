"""Finding an XTTS-v2 checkpoint on disk, or downloading the released one.

The released weights are licensed under the Coqui Public Model License (CPML): free for
non-commercial use only. They are downloaded only after the user has accepted it.
"""

import hashlib
import logging
import shutil
import sys
from pathlib import Path

from ...core.engine import EngineUnavailableError
from ...core.files import disk_full_sentence, is_disk_full

_LOGGER = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
"""Files a checkpoint directory must hold (the release layout)."""

SPEAKERS_FILE = "speakers_xtts.pth"
"""Optional file with the model's built-in studio speakers."""

RELEASE_REPO = "tts-hub/XTTS-v2"
"""Hugging Face repository of the released XTTS-v2 (where coqui-tts downloads it from)."""

CPML_URL = "https://coqui.ai/cpml"
"""The licence of the released weights."""

_RELEASE_DIR = "XTTS-v2"
_LICENCE_RECORD = "cpml-accepted.txt"


class ModelUnavailableError(EngineUnavailableError):
    """No usable checkpoint; the message is one sentence telling the user what to do."""


def missing_files(directory: Path) -> list[str]:
    """Required checkpoint files absent from `directory`."""
    return [name for name in REQUIRED_FILES if not (directory / name).is_file()]


def check_checkpoint(directory: Path) -> Path:
    """Return `directory` if it holds a checkpoint in the release layout, else raise."""
    if not directory.is_dir():
        raise ModelUnavailableError(f"The model directory {directory} does not exist.")
    missing = missing_files(directory)
    if missing:
        raise ModelUnavailableError(
            f"The model directory {directory} is not an XTTS-v2 checkpoint: it lacks "
            f"{', '.join(missing)} (expected {', '.join(REQUIRED_FILES)})."
        )
    return directory


def release_model_dir(data_dir: Path) -> Path:
    """Where the downloaded release lives under the data directory."""
    return data_dir / "models" / _RELEASE_DIR


def ensure_release_model(data_dir: Path, licence_accepted: bool) -> Path:
    """The released checkpoint under `data_dir`, downloading it first if needed."""
    target = release_model_dir(data_dir)
    if target.is_dir() and not missing_files(target):
        return target

    if not licence_accepted and not _ask_licence():
        raise ModelUnavailableError(
            "The XTTS-v2 weights are licensed for non-commercial use only under the CPML "
            f"({CPML_URL}): accept it with --agree-cpml (or COQUI_TOS_AGREED=1) to download "
            "them, or pass --model-dir with a checkpoint you already have."
        )

    partial = target.with_name(f".{_RELEASE_DIR}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    _LOGGER.info("Downloading XTTS-v2 (about 1.9 GB) from huggingface.co/%s", RELEASE_REPO)
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(
            RELEASE_REPO,
            allow_patterns=[*REQUIRED_FILES, SPEAKERS_FILE],
            local_dir=partial,
        )
    except Exception as err:
        kept = _discard_if_empty(partial)
        if is_disk_full(err):
            raise ModelUnavailableError(
                disk_full_sentence(data_dir)
                + f" XTTS-v2 needs about 1.9 GB{' (the partial download resumes)' if kept else ''}."
            ) from err
        raise ModelUnavailableError(
            f"Could not download XTTS-v2 from huggingface.co/{RELEASE_REPO} "
            f"({type(err).__name__}); check the internet connection and run again"
            + (" (the partial download resumes)" if kept else "")
            + ", or pass --model-dir with a checkpoint you already have."
        ) from err

    if missing_files(partial):
        raise ModelUnavailableError(
            f"The download from huggingface.co/{RELEASE_REPO} lacks "
            f"{', '.join(missing_files(partial))}; the repository may have changed."
        )
    _verify_checksums(partial)
    (partial / _LICENCE_RECORD).write_text(f"The CPML ({CPML_URL}) was accepted.\n")
    shutil.rmtree(partial / ".cache", ignore_errors=True)
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    return target


def writable_copy_dir(directory: Path, data_dir: Path) -> Path:
    """Where a writable copy of a read-only checkpoint `directory` is kept."""
    stat = (directory / "model.pth").stat()
    key = f"{directory.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return data_dir / "models" / "writable" / hashlib.sha256(key.encode()).hexdigest()[:16]


def make_writable_copy(directory: Path, data_dir: Path) -> Path:
    """A copy of `directory` whose model.pth coqui-tts may rewrite; the rest is symlinked.

    coqui-tts converts the released model.pth in place on its first load, which fails on a
    read-only directory (a Docker `:ro` mount, a shared NAS folder). The copy costs the size
    of model.pth (1.9 GB for the release) once; later starts load it directly.
    """
    target = writable_copy_dir(directory, data_dir)
    if (target / "model.pth").is_file():
        return target
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in (*REQUIRED_FILES, SPEAKERS_FILE):
        source = directory / name
        if name == "model.pth":
            shutil.copyfile(source, partial / name)
        elif source.is_file():
            (partial / name).symlink_to(source.resolve())
    partial.rename(target)
    return target


def _verify_checksums(directory: Path) -> None:
    """Compare large files with the SHA-256 the hub records for them; drop any that differ."""
    try:
        from huggingface_hub import HfApi

        entries = HfApi().get_paths_info(
            RELEASE_REPO, [*REQUIRED_FILES, SPEAKERS_FILE], expand=True
        )
    except Exception as err:  # noqa: BLE001 - the check is a bonus; the download succeeded
        _LOGGER.warning("Could not fetch checksums to verify the download (%s)", err)
        return
    for entry in entries:
        expected = getattr(getattr(entry, "lfs", None), "sha256", None)
        path = directory / entry.path
        if expected is None or not path.is_file():
            continue
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() != expected:
            path.unlink()
            raise ModelUnavailableError(
                f"{entry.path} from huggingface.co/{RELEASE_REPO} does not match its published "
                "SHA-256 (a corrupted download); it was deleted: run again to fetch it anew."
            )
        _LOGGER.info("%s: SHA-256 verified", entry.path)


def _ask_licence() -> bool:
    """Ask on the terminal, if there is one; a service without a terminal must use the flag."""
    if not sys.stdin.isatty():
        return False
    print(
        "The XTTS-v2 weights are licensed under the Coqui Public Model License (CPML),\n"
        f"for non-commercial use only: {CPML_URL}\n"
        "Do you accept the CPML (or hold a commercial licence from Coqui)? [y/N] ",
        end="",
        flush=True,
    )
    return sys.stdin.readline().strip().lower() in {"y", "yes"}


def _discard_if_empty(partial: Path) -> bool:
    """Remove a partial download holding no model bytes; True if something was kept."""
    wanted = {*REQUIRED_FILES, SPEAKERS_FILE}
    has_data = any(
        path.is_file()
        and path.stat().st_size > 0
        and (path.name in wanted or path.suffix == ".incomplete")
        for path in partial.rglob("*")
    )
    if not has_data:
        shutil.rmtree(partial, ignore_errors=True)
    return has_data
