"""Voice profiles: a directory of reference clips and a small TOML file per household voice.

```
voices/
  alice/
    voice.toml      description, language(s), generation settings (all optional)
    kitchen.wav     one or more clips of 6-30 s of speech; all of them are used
    cheerful/       a speaking style (optional, any number): its own clips, and its own
      party.wav     settings under [styles.cheerful] in voice.toml; Home Assistant offers
                    each style as a "speaker" of the voice
```

The library only ever reads the voices directory (profiles.py writes it). It is rescanned on every request for the
voice list, so a profile added while the server runs shows up without a restart; each clip is
decoded and checked once and then remembered until its size or modification time changes.
"""

import logging
import math
import re
import threading
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..text.languages import XTTS_LANGUAGES, normalize_language
from .audio import CLIP_SUFFIXES, ClipReport, inspect_clip

_LOGGER = logging.getLogger(__name__)

PROFILE_FILE = "voice.toml"
"""Name of the settings file inside a profile directory."""

# A voice name is a directory name: letters, digits, space, dot, dash and underscore, not
# starting with a dot (hidden directories such as caches are not profiles) and never `..`.
_VALID_NAME = re.compile(r"^[^\W][\w .-]{0,63}$")

_PUBLIC_URL = re.compile(r"^https?://[^\s/]+/\S*$")

_TOP_LEVEL_KEYS = frozenset(
    {
        "description",
        "language",
        "languages",
        "detect_language",
        "synthesis",
        "speaker_url",
        "cleanup_voice",
        "default",
        "styles",
    }
)
_STYLE_KEYS = frozenset({"description", "synthesis", "speaker_url", "cleanup_voice"})


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings for XTTS-v2, pinned to the values of the released model's config.

    coqui-tts' `inference()` defaults differ from the release (repetition_penalty 10 vs 5);
    the server always passes these explicitly so output never depends on library defaults.
    """

    temperature: float = 0.75
    """Randomness of the GPT sampling; lower is steadier and flatter."""

    top_k: int = 50
    """Sample only among the k most likely audio tokens."""

    top_p: float = 0.85
    """Nucleus sampling: sample among the tokens covering this probability mass."""

    repetition_penalty: float = 5.0
    """Discourages repeated audio tokens (long silences, stuttering)."""

    length_penalty: float = 1.0
    """Passed to generation; only matters for beam search."""

    speed: float = 1.0
    """Speaking rate: 1.0 is the voice's own pace, 1.2 is 20 % faster."""

    seed: int | None = None
    """Seed the sampling before each segment: the same text then always sounds the same
    (local engine only; the cloud providers take no seed)."""


# Allowed range (inclusive) and type of each generation setting.
GENERATION_LIMITS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.01, 2.0),
    "top_k": (int, 1, 1026),
    "top_p": (float, 0.01, 1.0),
    "repetition_penalty": (float, 1.0, 50.0),
    "length_penalty": (float, -10.0, 10.0),
    "speed": (float, 0.5, 2.0),
    "seed": (int, 0, 2**31 - 1),
}


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
        settings = _read_settings(directory / PROFILE_FILE, errors)
        description = _read_description(settings, directory.name, errors)

        languages = _read_languages(settings, self.default_language, errors)
        generation = _read_generation(settings.get("synthesis", {}), errors)
        speaker_url, cleanup_voice = _provider_settings(settings, PROFILE_FILE, None, errors)
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
                "of 6-30 s of speech."
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
            unknown = sorted(set(table) - _STYLE_KEYS)
            if unknown:
                style_errors.append(
                    f"{PROFILE_FILE}: unknown setting(s) {', '.join(unknown)} in "
                    f"[styles.{name}]; known: {', '.join(sorted(_STYLE_KEYS))}."
                )
            synthesis = table.get("synthesis", {})
            merged = {**base_table, **synthesis} if isinstance(synthesis, dict) else synthesis
            generation = _read_generation(merged, style_errors)
            clips, reports = self._clips(directory / name)
            if not clips:
                style_errors.append(
                    f"style {name}: no reference clips in {name}/; add one or more "
                    f"{', '.join(CLIP_SUFFIXES)} recordings of 6-30 s of speech."
                )
            for report in reports:
                style_errors.extend(f"style {name}: {error}" for error in report.errors)
                style_warnings.extend(f"style {name}: {warning}" for warning in report.warnings)
            description = table.get("description", name)
            if not isinstance(description, str) or not description.strip():
                style_errors.append(f"[styles.{name}] description must be a non-empty string.")
                description = name
            # The profile's own speaker_url is a recording of the plain voice, not of a style.
            speaker_url, cleanup_voice = _provider_settings(
                table, f"{PROFILE_FILE} [styles.{name}]", voice.cleanup_voice, style_errors
            )
            styles.append(
                StyleProfile(
                    voice=replace(
                        voice,
                        generation=generation,
                        clips=clips,
                        speaker_url=speaker_url,
                        cleanup_voice=cleanup_voice,
                        style=name,
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


def settings_errors(settings: dict[str, Any], default_language: str) -> list[str]:
    """What is wrong with a profile's settings (the contents of a voice.toml), as sentences.

    The same checks the library makes when it reads a profile, for writers that want to
    refuse a change before it reaches the disk.
    """
    errors: list[str] = []
    unknown = sorted(set(settings) - _TOP_LEVEL_KEYS)
    if unknown:
        errors.append(f"{PROFILE_FILE}: unknown setting(s) {', '.join(unknown)}.")
    _read_description(settings, "", errors)
    _read_languages(settings, default_language, errors)
    _read_generation(settings.get("synthesis", {}), errors)
    return errors


def _provider_settings(
    table: dict[str, Any], where: str, default_cleanup: bool | None, errors: list[str]
) -> tuple[str | None, bool | None]:
    """`speaker_url` and `cleanup_voice` of a profile or a style, checked."""
    speaker_url = table.get("speaker_url")
    if speaker_url is not None and not (
        isinstance(speaker_url, str) and _PUBLIC_URL.match(speaker_url)
    ):
        errors.append(f"{where}: speaker_url must be an http:// or https:// URL.")
        speaker_url = None
    cleanup_voice = table.get("cleanup_voice", default_cleanup)
    if cleanup_voice is not None and not isinstance(cleanup_voice, bool):
        errors.append(f"{where}: cleanup_voice must be true or false.")
        cleanup_voice = default_cleanup
    return speaker_url, cleanup_voice


def _read_description(settings: dict[str, Any], default: str, errors: list[str]) -> str:
    description = settings.get("description")
    if description is None:
        return default
    if not isinstance(description, str) or not description.strip():
        errors.append(f"{PROFILE_FILE}: description must be a non-empty string.")
        return default
    return description


def _read_settings(path: Path, errors: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        errors.append(f"{PROFILE_FILE}: is not valid TOML ({err}).")
        return {}
    except OSError as err:
        errors.append(f"{PROFILE_FILE}: cannot be read ({err.strerror}).")
        return {}
    unknown = sorted(set(settings) - _TOP_LEVEL_KEYS)
    if unknown:
        errors.append(
            f"{PROFILE_FILE}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_TOP_LEVEL_KEYS))}."
        )
    return settings


def _read_languages(settings: dict[str, Any], default: str, errors: list[str]) -> tuple[str, ...]:
    if "language" in settings and "languages" in settings:
        errors.append(f"{PROFILE_FILE}: set either language or languages, not both.")
    raw = settings.get("languages", settings.get("language", default))
    tags = [raw] if isinstance(raw, str) else raw
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        errors.append(f"{PROFILE_FILE}: languages must be a language code or a list of them.")
        return (default,)
    codes: list[str] = []
    for tag in tags:
        code = normalize_language(tag)
        if code is None:
            errors.append(
                f"{PROFILE_FILE}: XTTS-v2 cannot speak language {tag!r}; "
                f"it speaks {', '.join(XTTS_LANGUAGES)}."
            )
        elif code not in codes:
            codes.append(code)
    return tuple(codes) or (default,)


def _read_generation(table: Any, errors: list[str]) -> GenerationSettings:
    if not isinstance(table, dict):
        errors.append(f"{PROFILE_FILE}: [synthesis] must be a table of settings.")
        return GenerationSettings()
    known = {f.name for f in fields(GenerationSettings)}
    unknown = sorted(set(table) - known)
    if unknown:
        errors.append(
            f"{PROFILE_FILE}: unknown [synthesis] setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}."
        )
    values: dict[str, Any] = {}
    for name in known & set(table):
        kind, low, high = GENERATION_LIMITS[name]
        value = table[name]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (kind is int and not isinstance(value, int)) or not math.isfinite(value):
            errors.append(
                f"{PROFILE_FILE}: [synthesis] {name} must be a{'n integer' if kind is int else ' number'}."
            )
        elif not low <= value <= high:
            errors.append(f"{PROFILE_FILE}: [synthesis] {name} = {value} is outside {low}-{high}.")
        else:
            values[name] = kind(value)
    return GenerationSettings(**values)
