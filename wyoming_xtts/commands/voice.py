"""`wyoming-xtts voice add|list|check|remove`: making and looking after voice profiles.

`add` checks every recording first and writes nothing if one is unusable; the profile is
assembled in a hidden directory and moved into place in one rename, so the server (which
rescans on every describe) never sees half a profile.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.audio import RECOMMENDED_CLIP_LENGTH, ClipReport, inspect_clip
from ..core.clip_preparation import ClipPreparationError, prepare_clip
from ..core.profiles import ProfileError, ProfileStore
from ..core.settings import setting_from_environment
from ..core.voices import VoiceLibrary, VoiceProfile, is_valid_voice_name
from ..text.languages import XTTS_LANGUAGES, normalize_language
from . import options_anywhere

EXIT_PROBLEM = 1


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    voices_dir = Path(
        getattr(args, "voices_dir", setting_from_environment("voices_dir"))
    ).expanduser()
    if args.action == "add":
        return _add(voices_dir, args)
    if args.action == "list":
        return _list(voices_dir)
    if args.action == "check":
        return _check(voices_dir, args.name)
    return _remove(voices_dir, args.name, args.yes, args.style)


def _parser() -> argparse.ArgumentParser:
    shared = options_anywhere(
        lambda parser: parser.add_argument(
            "--voices-dir",
            help=f"directory of voice profiles (default: {setting_from_environment('voices_dir')})",
        )
    )
    parser = argparse.ArgumentParser(
        prog="wyoming-xtts voice", description="Manage voice profiles.", parents=[shared]
    )
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", parents=[shared], help="make a profile from one or more recordings"
    )
    add.add_argument("name", help="voice name, as Home Assistant will show it")
    add.add_argument(
        "clips",
        nargs="+",
        type=Path,
        help=f"recordings of {RECOMMENDED_CLIP_LENGTH} of speech each",
    )
    add.add_argument(
        "--language",
        action="append",
        help="a language the voice speaks (repeatable; the first is the default; default: en)",
    )
    add.add_argument("--description", help="label shown in Home Assistant (default: the name)")
    add.add_argument("--denoise", action="store_true", help="remove steady background noise")
    add.add_argument("--replace", action="store_true", help="replace an existing profile")
    add.add_argument(
        "--style",
        help="add the recordings as this speaking style of an existing voice (Home Assistant's "
        "speaker), e.g. cheerful",
    )
    actions.add_parser(
        "list", parents=[shared], help="every profile, with what is wrong with broken ones"
    )
    check = actions.add_parser("check", parents=[shared], help="every clip of one profile")
    check.add_argument("name")
    remove = actions.add_parser("remove", parents=[shared], help="delete a profile directory")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.add_argument("--style", help="remove only this speaking style")
    return parser


def _add(voices_dir: Path, args: argparse.Namespace) -> int:
    name: str = args.name
    if not is_valid_voice_name(name):
        return _fail(f"{name!r} cannot be a voice name: use letters, digits, spaces, . - _")
    target = voices_dir / name
    if args.style is None and target.exists() and not args.replace:
        return _fail(f"voice {name!r} exists in {voices_dir}; add --replace to replace it")
    if args.style is not None and not target.is_dir():
        return _fail(f"no voice profile {name!r} in {voices_dir} to add a style to")
    languages = [normalize_language(tag) for tag in args.language or ["en"]]
    if None in languages:
        unknown = [tag for tag, code in zip(args.language, languages, strict=True) if code is None]
        return _fail(
            f"unknown language(s) {', '.join(unknown)}; XTTS-v2 speaks {' '.join(XTTS_LANGUAGES)}"
        )

    problems: list[str] = []
    for clip in args.clips:
        report = inspect_clip(clip)
        status = "unusable" if report.errors else "ok"
        print(
            f"{clip}: {status} ({report.duration_s:.1f} s, {report.sample_rate} Hz, {report.channels} ch)"
        )
        for message in (*report.errors, *report.warnings):
            print(f"  - {message}")
        problems.extend(report.errors)
    if problems:
        return _fail(f"nothing written: {len(problems)} problem(s) above")
    try:
        prepared = [prepare_clip(clip, denoise=args.denoise) for clip in args.clips]
    except ClipPreparationError as err:
        return _fail(f"nothing written: {err}")

    store = ProfileStore(VoiceLibrary(voices_dir, "en"))
    try:
        if args.style is not None:
            target = store.add_style(name, args.style, prepared, replace=args.replace)
        else:
            target = store.create(
                name, prepared, args.description, [c for c in languages if c], args.replace
            )
    except ProfileError as err:
        return _fail(f"nothing written: {err}")
    total = sum(clip.duration_s for clip in prepared)
    trimmed = sum(clip.trimmed_s for clip in prepared)
    what = f"Voice {name!r}" + (f", style {args.style!r}" if args.style else "")
    print(
        f"{what}: {len(prepared)} clip(s), {total:.1f} s of speech "
        f"({trimmed:.1f} s of silence trimmed, levels evened out) in {target}."
    )
    print("A running server offers it on Home Assistant's next look at the voices; no restart.")
    return 0


def _list(voices_dir: Path) -> int:
    profiles = VoiceLibrary(voices_dir, "en").scan()
    if not profiles:
        print(f"No voice profiles in {voices_dir}. Make one: wyoming-xtts voice add NAME CLIP.wav")
        return 0
    for profile in profiles:
        _print_profile(profile)
    return 0


def _check(voices_dir: Path, name: str) -> int:
    profile = VoiceLibrary(voices_dir, "en").find(name) if is_valid_voice_name(name) else None
    if profile is None:
        return _fail(f"no voice profile {name!r} in {voices_dir}")
    _print_profile(profile)
    for report in profile.clip_reports:
        _print_clip(report)
    for style in profile.styles:
        state = "ok" if style.usable else "BROKEN"
        print(
            f"  style {style.name}: {state} - {style.description!r}, {len(style.voice.clips)} clip(s)"
        )
        for report in style.clip_reports:
            _print_clip(report, indent="    ")
        for message in style.errors:
            print(f"    error: {message}")
    return 0 if profile.usable else EXIT_PROBLEM


def _print_clip(report: ClipReport, indent: str = "  ") -> None:
    print(
        f"{indent}{report.path.name}: {report.duration_s:.1f} s, {report.sample_rate} Hz, "
        f"{report.channels} ch, {report.speech_s:.1f} s of speech"
    )


def _print_profile(profile: VoiceProfile) -> None:
    voice = profile.voice
    state = "ok" if profile.usable else "BROKEN"
    styles = f", styles: {', '.join(s.name for s in profile.styles)}" if profile.styles else ""
    print(
        f"{voice.name}: {state} - {profile.description!r}, {', '.join(voice.languages)}, "
        f"{len(voice.clips)} clip(s){styles}"
    )
    for message in profile.errors:
        print(f"  error: {message}")
    for message in profile.warnings:
        print(f"  warning: {message}")


def _remove(voices_dir: Path, name: str, confirmed: bool, style: str | None) -> int:
    target = voices_dir / name
    if not is_valid_voice_name(name) or not target.is_dir():
        return _fail(f"no voice profile {name!r} in {voices_dir}")
    if style is not None:
        try:
            ProfileStore(VoiceLibrary(voices_dir, "en")).remove_style(name, style)
        except ProfileError as err:
            return _fail(str(err))
        print(f"Removed style {style!r} of voice {name!r}.")
        return 0
    if not confirmed:
        if not sys.stdin.isatty():
            return _fail("add --yes to remove a profile without a terminal to confirm in")
        if input(f"Delete {target} and its clips? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing removed.")
            return EXIT_PROBLEM
    ProfileStore(VoiceLibrary(voices_dir, "en")).remove(name)
    print(f"Removed voice {name!r}.")
    return 0


def _fail(message: str) -> int:
    print(f"wyoming-xtts voice: {message}", file=sys.stderr)
    return EXIT_PROBLEM
