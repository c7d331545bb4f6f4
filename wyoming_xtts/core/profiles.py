"""Writing voice profiles: create, edit, mark as default, remove.

The library (voices.py) reads; this is the only code that writes the voices directory, for
`wyoming-xtts voice` and the voice studio alike. A new profile is assembled in a hidden
directory and moved into place in one rename; a changed voice.toml is written beside the
old one and renamed over it. A server rescanning at any moment sees the old profile or the
new one, never half of one.
"""

import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w

from .clip_preparation import PreparedClip, write_clip
from .files import disk_full_sentence, is_disk_full, write_atomically
from .profile_settings import PROFILE_FILE, settings_errors
from .voices import VoiceLibrary, VoiceProfile, is_valid_voice_name


class ProfileError(Exception):
    """A change to the voices directory that cannot be made; the message says why."""


class ProfileExistsError(ProfileError):
    """A new profile's name is taken (and replacing was not asked for)."""


class ProfileNotFoundError(ProfileError):
    """No profile has that name."""


class DiskFullError(ProfileError):
    """The disk holding the voices directory has no room for the change (nothing was left
    half-written)."""


@contextmanager
def _writing(directory: Path) -> Iterator[None]:
    """A write into the voices directory, its `OSError` said in one sentence."""
    try:
        yield
    except OSError as err:
        if is_disk_full(err):
            raise DiskFullError(disk_full_sentence(directory)) from err
        raise ProfileError(f"{directory} cannot be written ({err.strerror}).") from err


class ProfileStore:
    """Makes and changes the profiles of one voices directory."""

    def __init__(self, library: VoiceLibrary) -> None:
        self.library = library

    @property
    def voices_dir(self) -> Path:
        """The directory written to."""
        return self.library.voices_dir

    def not_writable_reason(self) -> str | None:
        """Why profiles cannot be written here (a sentence), or None when they can.

        Found by writing, not by `os.access`: a read-only mount or an immutable directory
        refuses root too, and root is who runs containers.
        """
        directory = self.voices_dir
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(prefix=".write-check.", dir=directory)
        except OSError as err:
            return (
                f"The voices directory {directory} cannot be written ({err.strerror}); voices "
                "can be listened to but not changed. Is it mounted read-only?"
            )
        os.close(handle)
        os.unlink(probe)
        return None

    def create(
        self,
        name: str,
        clips: Sequence[PreparedClip],
        description: str | None,
        languages: Sequence[str],
        replace: bool = False,
    ) -> Path:
        """Write a new profile from prepared clips; returns its directory."""
        _check_name(name)
        if not clips:
            raise ProfileError("A voice needs at least one recording.")
        settings: dict[str, Any] = {
            "description": description or name,
            "languages": list(languages),
        }
        self._check_settings(settings)
        target = self.voices_dir / name
        if target.exists() and not replace:
            raise ProfileExistsError(f"There is already a voice named {name!r}.")
        with _writing(self.voices_dir):
            self.voices_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.voices_dir))
            try:
                for index, clip in enumerate(clips, start=1):
                    write_clip(clip, staging / f"clip{index}.wav")
                write_atomically(staging / PROFILE_FILE, tomli_w.dumps(settings).encode())
                _swap_into_place(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def add_style(
        self, name: str, style: str, clips: Sequence[PreparedClip], replace: bool = False
    ) -> Path:
        """Write a speaking style (a sub-directory of clips) into an existing profile."""
        directory = self._existing(name)
        _check_name(style)
        if not clips:
            raise ProfileError("A style needs at least one recording.")
        target = directory / style
        if target.exists() and not replace:
            raise ProfileExistsError(f"Voice {name!r} already has a style named {style!r}.")
        with _writing(self.voices_dir):
            staging = Path(tempfile.mkdtemp(prefix=f".{style}.", dir=directory))
            try:
                for index, clip in enumerate(clips, start=1):
                    write_clip(clip, staging / f"clip{index}.wav")
                _swap_into_place(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def remove_style(self, name: str, style: str) -> None:
        """Delete a speaking style's clips and its settings."""
        directory = self._existing(name)
        target = directory / style
        if not is_valid_voice_name(style) or not target.is_dir():
            raise ProfileNotFoundError(f"Voice {name!r} has no style named {style[:40]!r}.")
        settings = self._settings(directory)
        styles = dict(settings.get("styles", {}))
        if style in styles:
            del styles[style]
            self.update(name, {"styles": styles or None})
        retired = Path(tempfile.mkdtemp(prefix=f".{style}.removed.", dir=directory))
        target.rename(retired / "style")
        shutil.rmtree(retired)

    def update(self, name: str, changes: Mapping[str, Any]) -> VoiceProfile:
        """Change a profile's settings: top-level keys of voice.toml, and `synthesis` entries
        (None removes a key, so the default applies again). Returns the profile as re-read."""
        directory = self._existing(name)
        settings = self._settings(directory)
        for key, value in changes.items():
            if key == "synthesis":
                table = dict(settings.get("synthesis", {}))
                for setting, setting_value in dict(value).items():
                    if setting_value is None:
                        table.pop(setting, None)
                    else:
                        table[setting] = setting_value
                if table:
                    settings["synthesis"] = table
                else:
                    settings.pop("synthesis", None)
            elif value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        self._check_settings(settings)
        with _writing(self.voices_dir):
            write_atomically(directory / PROFILE_FILE, tomli_w.dumps(settings).encode())
        return self._reread(name)

    def make_default(self, name: str) -> None:
        """Mark one profile `default = true` and clear the mark from every other."""
        self._existing(name)
        for profile in self.library.scan():
            if profile.name != name and profile.is_default:
                self.update(profile.name, {"default": None})
        self.update(name, {"default": True})

    def remove(self, name: str) -> None:
        """Delete a profile's directory (renamed away first, so no scan sees half of it)."""
        directory = self._existing(name)
        retired = Path(tempfile.mkdtemp(prefix=f".{name}.removed.", dir=self.voices_dir))
        directory.rename(retired / "profile")
        shutil.rmtree(retired)

    def _existing(self, name: str) -> Path:
        directory = self.voices_dir / name
        if not is_valid_voice_name(name) or not directory.is_dir():
            raise ProfileNotFoundError(f"There is no voice profile named {name[:80]!r}.")
        return directory

    def _settings(self, directory: Path) -> dict[str, Any]:
        path = directory / PROFILE_FILE
        if not path.exists():
            return {}
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ProfileError(
                f"{path} is not valid TOML ({err}); fix or delete it by hand first."
            ) from None

    def _check_settings(self, settings: dict[str, Any]) -> None:
        problems = settings_errors(settings, self.library.default_language)
        if problems:
            raise ProfileError(" ".join(problems))

    def _reread(self, name: str) -> VoiceProfile:
        profile = self.library.find(name)
        if profile is None:  # removed by someone else in between
            raise ProfileNotFoundError(f"There is no voice profile named {name[:80]!r}.")
        return profile


def _check_name(name: str) -> None:
    if not is_valid_voice_name(name):
        raise ProfileError(
            f"{name[:80]!r} cannot be a voice name: use up to 64 letters, digits, spaces, "
            "dots, dashes and underscores, starting with a letter or digit."
        )


def _swap_into_place(staging: Path, target: Path) -> None:
    """Move the finished profile to `target`, replacing any old one, without a gap."""
    if not target.exists():
        staging.rename(target)
        return
    retired = staging.with_name(staging.name + ".old")
    target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired)
