"""Voice profiles: a directory of reference clips and a small TOML file per household voice.

```
voices/
  alice/
    voice.toml      description, language(s), generation settings (all optional)
    kitchen.wav     one or more clips of speech (`RECOMMENDED_CLIP_SECONDS`); all are used
    cheerful/       a speaking style (optional, any number): its own clips, and its own
      party.wav     settings under [styles.cheerful] in voice.toml; Home Assistant offers
                    each style as a "speaker" of the voice
```

The library only ever reads the voices directory (profiles.py writes it). It is rescanned on every request for the
voice list, so a profile added while the server runs shows up without a restart; each clip is
decoded and checked once and then remembered until its size or modification time changes.
"""

import logging
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .audio import CLIP_SUFFIXES, RECOMMENDED_CLIP_LENGTH, ClipReport, inspect_clip
from .generation import GenerationSettings
from .profile_settings import (
    PROFILE_FILE,
    STYLE_KEYS,
    provider_settings,
    read_description,
    read_fallback_voice,
    read_generation,
    read_languages,
    read_settings_file,
)

_LOGGER = logging.getLogger(__name__)

# A voice name is a directory name: letters, digits, space, dot, dash and underscore, not
# starting with a dot (hidden directories such as caches are not profiles) and never `..`.
_VALID_NAME = re.compile(r"^[^\W][\w .-]{0,63}$")


@dataclass(frozen=True)
class Voice:
    """A voice a request can be spoken in: a profile's clips, or an engine's built-in speaker."""

    name: str
    """Name clients ask for."""

    languages: tuple[str, ...]
    """XTTS language codes the voice speaks; the first is the default for a reply."""

    detect_language: bool = True
    """Speak each segment in the one of `languages` it is written in (else always the first)."""

    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """Sampling settings for this voice."""

    clips: tuple[Path, ...] = ()
    """Reference clips to clone; empty for a built-in speaker of the engine."""

    speaker_url: str | None = None
    """Public http(s) URL of a reference clip, for cloud providers that fetch it themselves."""

    cleanup_voice: bool | None = None
    """Ask a cloud provider to denoise the reference; None uses the server's default."""

    style: str | None = None
    """The speaking style (a sub-directory of the profile); None for the plain clips."""

    fallback_voice: str | None = None
    """The voice a Wyoming fallback server speaks this one in (`fallback_voice` in
    voice.toml, its styles' too); None: that server's default voice."""

    @property
    def key(self) -> str:
        """Name and style: what distinguishes one set of clips from another."""
        return self.name if self.style is None else f"{self.name}/{self.style}"

    @property
    def is_builtin(self) -> bool:
        """True for a speaker that ships with the model rather than a profile on disk."""
        return not self.clips


@dataclass(frozen=True)
class StyleProfile:
    """One speaking style of a profile: a sub-directory of clips, read and checked."""

    voice: Voice
    """The profile's voice with this style's clips and settings."""

    description: str
    """Label shown for the style."""

    errors: tuple[str, ...] = ()
    """Problems that make this style unusable (the rest of the profile is not affected)."""

    warnings: tuple[str, ...] = ()
    """Problems that lower quality but leave the style usable."""

    clip_reports: tuple[ClipReport, ...] = ()
    """Each clip's checks."""

    @property
    def name(self) -> str:
        """The style's name: its directory's name."""
        assert self.voice.style is not None
        return self.voice.style

    @property
    def usable(self) -> bool:
        """True when the style can be spoken."""
        return not self.errors


@dataclass(frozen=True)
class VoiceProfile:
    """One directory under the voices directory, read and checked."""

    voice: Voice
    """What synthesis needs: name, languages, settings and clips."""

    directory: Path
    """The profile's directory."""

    description: str
    """Label shown in Home Assistant."""

    errors: tuple[str, ...] = ()
    """Problems that make the profile unusable, each a readable sentence."""

    warnings: tuple[str, ...] = ()
    """Problems that lower quality but leave the profile usable."""

    is_default: bool = False
    """Marked `default = true`: the voice for requests that name none (unless the server's
    --default-voice names another)."""

    clip_reports: tuple[ClipReport, ...] = ()
    """Each clip's checks, in the order of `voice.clips`."""

    styles: tuple[StyleProfile, ...] = ()
    """Speaking styles, by name; each may be broken on its own."""

    @property
    def name(self) -> str:
        """The voice name: the directory's name."""
        return self.voice.name

    def style(self, name: str) -> StyleProfile | None:
        """The style of that name, or None."""
        return next((style for style in self.styles if style.name == name), None)

    @property
    def usable(self) -> bool:
        """True when the profile can be spoken."""
        return not self.errors


class VoiceLibrary:
    """Reads voice profiles from a directory, caching clip checks between scans."""

    def __init__(self, voices_dir: Path, default_language: str) -> None:
        self.voices_dir = voices_dir
        self.default_language = default_language
        """Language of profiles that name none."""
        self._clip_reports: dict[Path, tuple[tuple[int, int], ClipReport]] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def scan(self) -> list[VoiceProfile]:
        """Read every profile directory, sorted by name; broken ones carry their errors."""
        if not self.voices_dir.is_dir():
            self._warn_once(f"Voices directory {self.voices_dir} does not exist")
            return []
        profiles = [
            self._read_profile(entry)
            for entry in sorted(self.voices_dir.iterdir())
            if entry.is_dir() and _VALID_NAME.match(entry.name)
        ]
        for profile in profiles:
            for problem in (*profile.errors, *profile.warnings):
                level = "skipped" if profile.errors else "usable"
                self._warn_once(f"Voice profile {profile.directory} ({level}): {problem}")
        return profiles

    def find(self, name: str) -> VoiceProfile | None:
        """Read one profile by voice name, or None when there is no such profile."""
        if not is_valid_voice_name(name):
            return None
        directory = self.voices_dir / name
        if directory.parent != self.voices_dir or not directory.is_dir():
            return None
        return self._read_profile(directory)

    def _warn_once(self, message: str) -> None:
        # Profiles are rescanned on every describe; repeating the same warning every 30 s
        # (Home Assistant's re-describe interval) would drown the log.
        with self._lock:
            if message in self._warned:
                return
            self._warned.add(message)
        _LOGGER.warning(message)

    def _read_profile(self, directory: Path) -> VoiceProfile:
        errors: list[str] = []
        warnings: list[str] = []
        settings = read_settings_file(directory / PROFILE_FILE, errors)
        description = read_description(settings, directory.name, errors)

        languages = read_languages(settings, self.default_language, errors)
        generation = read_generation(settings.get("synthesis", {}), errors)
        speaker_url, cleanup_voice = provider_settings(settings, PROFILE_FILE, None, errors)
        fallback_voice = read_fallback_voice(settings, errors)
        detect_language = settings.get("detect_language", True)
        if not isinstance(detect_language, bool):
            errors.append(f"{PROFILE_FILE}: detect_language must be true or false.")
            detect_language = True
        is_default = settings.get("default", False)
        if not isinstance(is_default, bool):
            errors.append(f"{PROFILE_FILE}: default must be true or false.")
            is_default = False

        clips, reports = self._clips(directory)
        if not clips:
            errors.append(
                f"no reference clips: add one or more {', '.join(CLIP_SUFFIXES)} recordings "
                f"of {RECOMMENDED_CLIP_LENGTH} of speech."
            )
        for report in reports:
            errors.extend(report.errors)
            warnings.extend(report.warnings)

        voice = Voice(
            name=directory.name,
            languages=languages,
            detect_language=detect_language,
            generation=generation,
            clips=clips,
            speaker_url=speaker_url,
            cleanup_voice=cleanup_voice,
            fallback_voice=fallback_voice,
        )
        return VoiceProfile(
            voice=voice,
            directory=directory,
            description=description.strip(),
            errors=tuple(errors),
            warnings=tuple(warnings),
            is_default=is_default,
            clip_reports=reports,
            styles=self._read_styles(directory, settings, voice, errors),
        )

    def _clips(self, directory: Path) -> tuple[tuple[Path, ...], tuple[ClipReport, ...]]:
        clips = tuple(
            sorted(
                path
                for path in directory.iterdir()
                if path.suffix.lower() in CLIP_SUFFIXES and path.is_file()
            )
        )
        return clips, tuple(self._clip_report(clip) for clip in clips)

    def _read_styles(
        self, directory: Path, settings: dict[str, Any], voice: Voice, errors: list[str]
    ) -> tuple[StyleProfile, ...]:
        """Each style sub-directory, with its settings from `[styles.NAME]`."""
        tables = settings.get("styles", {})
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            errors.append(f"{PROFILE_FILE}: [styles] must hold one table per style.")
            tables = {}
        names = sorted(
            entry.name
            for entry in directory.iterdir()
            if entry.is_dir() and is_valid_voice_name(entry.name)
        )
        for missing in sorted(set(tables) - set(names)):
            errors.append(
                f"{PROFILE_FILE}: [styles.{missing}] has no directory {missing}/ of clips."
            )
        base_table = settings.get("synthesis", {})
        styles = []
        for name in names:
            table = tables.get(name, {})
            style_errors: list[str] = []
            style_warnings: list[str] = []
            unknown = sorted(set(table) - STYLE_KEYS)
            if unknown:
                style_errors.append(
                    f"{PROFILE_FILE}: unknown setting(s) {', '.join(unknown)} in "
                    f"[styles.{name}]; known: {', '.join(sorted(STYLE_KEYS))}."
                )
            synthesis = table.get("synthesis", {})
            merged = {**base_table, **synthesis} if isinstance(synthesis, dict) else synthesis
            generation = read_generation(merged, style_errors)
            clips, reports = self._clips(directory / name)
            if not clips:
                style_errors.append(
                    f"style {name}: no reference clips in {name}/; add one or more "
                    f"{', '.join(CLIP_SUFFIXES)} recordings of {RECOMMENDED_CLIP_LENGTH} of speech."
                )
            for report in reports:
                style_errors.extend(f"style {name}: {error}" for error in report.errors)
                style_warnings.extend(f"style {name}: {warning}" for warning in report.warnings)
            description = table.get("description", name)
            if not isinstance(description, str) or not description.strip():
                style_errors.append(f"[styles.{name}] description must be a non-empty string.")
                description = name
            # The profile's own speaker_url is a recording of the plain voice, not of a style.
            speaker_url, cleanup_voice = provider_settings(
                table, f"{PROFILE_FILE} [styles.{name}]", voice.cleanup_voice, style_errors
            )
            fallback_voice = read_fallback_voice(table, style_errors) or voice.fallback_voice
            styles.append(
                StyleProfile(
                    voice=replace(
                        voice,
                        generation=generation,
                        clips=clips,
                        speaker_url=speaker_url,
                        cleanup_voice=cleanup_voice,
                        style=name,
                        fallback_voice=fallback_voice,
                    ),
                    description=description.strip(),
                    errors=tuple(style_errors),
                    warnings=tuple(style_warnings),
                    clip_reports=reports,
                )
            )
        return tuple(styles)

    def _clip_report(self, clip: Path) -> ClipReport:
        try:
            stat = clip.stat()
        except OSError as err:
            return ClipReport(clip, errors=(f"{clip.name}: cannot be read ({err.strerror}).",))
        signature = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._clip_reports.get(clip)
        if cached is not None and cached[0] == signature:
            return cached[1]
        report = inspect_clip(clip)
        with self._lock:
            self._clip_reports[clip] = (signature, report)
        return report


def is_valid_voice_name(name: str) -> bool:
    """True when `name` could be a profile directory: no path separators, no `..`."""
    return bool(_VALID_NAME.match(name)) and ".." not in name
