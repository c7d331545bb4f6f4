"""The voice catalogue: which voices there are, and which voice a request's name means.

Voice profiles on disk (read again at every look-up, so a profile added while the server runs
is there at the next request) come first, the engine's built-in speakers after them. Every
front door asks this, never an engine, for voices.
"""

import asyncio
from dataclasses import dataclass, replace

from ..text.languages import advertised_tag, normalize_language
from .engine import Engine
from .errors import ErrorCode, SpeechError
from .voices import Voice, VoiceLibrary, VoiceProfile, is_valid_voice_name

_MAX_NAMES_IN_ERROR = 12
_LANGUAGE_SUFFIX = "@"


@dataclass(frozen=True)
class VoiceListing:
    """One voice as `describe` advertises it."""

    name: str
    """Name clients ask for."""

    description: str
    """Label shown to users."""

    languages: tuple[str, ...]
    """Language tags as Home Assistant's pipelines spell them (`en`, `zh-CN`)."""

    builtin: bool
    """A speaker that ships with the model rather than a profile on disk."""

    styles: tuple[str, ...] = ()
    """Usable speaking styles, asked for as the request's `speaker`."""


def builtin_description(voice: Voice) -> str:
    """How a built-in speaker is labelled wherever voices are listed."""
    return f"{voice.name} (XTTS-v2 studio speaker)"


class VoiceCatalogue:
    """The voices one engine can speak with, by name."""

    def __init__(self, engine: Engine, library: VoiceLibrary, default_voice: str | None) -> None:
        self._engine = engine
        self.library = library
        self.fixed_default = default_voice
        """The server's --default-voice: when set, it wins over a profile marked default."""

    @property
    def languages(self) -> tuple[str, ...]:
        """XTTS language codes the engine speaks."""
        return tuple(self._engine.languages)

    def builtin_voices(self) -> list[Voice]:
        """The engine's built-in speakers (the model's studio voices)."""
        return list(self._engine.builtin_voices())

    async def list_voices(self) -> list[VoiceListing]:
        """Usable profiles (read from disk now) followed by the engine's built-in speakers.

        A voice is listed under those of its languages the engine can speak, and not at
        all if the engine speaks none of them.
        """
        profiles = await asyncio.to_thread(self.library.scan)
        usable = [profile for profile in profiles if profile.usable]
        styles = {p.name: tuple(s.name for s in p.styles if s.usable) for p in usable}
        voices = [(profile.voice, profile.description, False) for profile in usable]
        taken = {voice.name for voice, _, _ in voices}
        voices.extend(
            (voice, builtin_description(voice), True)
            for voice in self._engine.builtin_voices()
            if voice.name not in taken
        )
        supported = set(self._engine.languages)
        return [
            VoiceListing(
                name=voice.name,
                description=description,
                languages=tuple(
                    advertised_tag(code) for code in voice.languages if code in supported
                ),
                builtin=builtin,
                styles=styles.get(voice.name, ()),
            )
            for voice, description, builtin in voices
            if supported.intersection(voice.languages)
        ]

    async def resolve_voice(self, name: str | None, style: str | None = None) -> Voice:
        """The voice for a requested name (None: the default) in a speaking style (None: the
        plain clips); raises `SpeechError`.

        `NAME@LANG` (e.g. `grandma@de`) is voice NAME always speaking LANG: the override for
        automations when detection is not wanted.
        """
        if name is None:
            default = await self._default_voice()
            return await self.resolve_voice(default.name, style) if style else default
        base, suffix, tag = name.rpartition(_LANGUAGE_SUFFIX)
        if suffix and base:
            language = normalize_language(tag)
            if language is None:
                raise SpeechError(
                    ErrorCode.LANGUAGE_UNSUPPORTED,
                    f"{tag[:20]!r} in {name[:80]!r} is not a language XTTS-v2 speaks.",
                )
            voice = await self.resolve_voice(base, style)
            return replace(voice, languages=(language,), detect_language=False)
        if is_valid_voice_name(name):
            profile = await asyncio.to_thread(self.library.find, name)
            if profile is not None:
                if not profile.usable:
                    raise SpeechError(
                        ErrorCode.VOICE_UNUSABLE,
                        f"Voice {name!r} cannot be used: {' '.join(profile.errors)}",
                    )
                return _in_style(profile, style) if style else profile.voice
        for voice in self._engine.builtin_voices():
            if voice.name == name:
                if style:
                    raise _no_style(name, style, [])
                return voice
        known = [listing.name for listing in await self.list_voices()]
        shown = ", ".join(known[:_MAX_NAMES_IN_ERROR]) + (
            ", ..." if len(known) > _MAX_NAMES_IN_ERROR else ""
        )
        raise SpeechError(
            ErrorCode.VOICE_NOT_FOUND,
            f"There is no voice named {name[:80]!r}. Available: {shown or 'none'}.",
        )

    async def _default_voice(self) -> Voice:
        if self.fixed_default is not None:
            return await self.resolve_voice(self.fixed_default)
        usable = [
            profile for profile in await asyncio.to_thread(self.library.scan) if profile.usable
        ]
        if usable:
            # A profile marked `default = true` (the studio's "make default"), else the first.
            return next((p for p in usable if p.is_default), usable[0]).voice
        builtin = self._engine.builtin_voices()
        if builtin:
            return builtin[0]
        raise SpeechError(
            ErrorCode.VOICE_NOT_FOUND,
            "No voice was requested and there is no usable voice profile to fall back on; "
            "add one to the voices directory.",
        )


def _in_style(profile: VoiceProfile, style: str) -> Voice:
    """A usable profile's voice in one of its speaking styles; raises `SpeechError`."""
    found = profile.style(style)
    if found is None:
        raise _no_style(profile.name, style, [s.name for s in profile.styles])
    if not found.usable:
        raise SpeechError(
            ErrorCode.VOICE_UNUSABLE,
            f"Style {style!r} of voice {profile.name!r} cannot be used: {' '.join(found.errors)}",
        )
    return found.voice


def _no_style(name: str, style: str, offered: list[str]) -> SpeechError:
    return SpeechError(
        ErrorCode.SPEAKER_NOT_FOUND,
        f"Voice {name!r} has no speaking style {style[:40]!r}"
        + (f"; its styles: {', '.join(offered)}." if offered else "; it has none."),
    )
