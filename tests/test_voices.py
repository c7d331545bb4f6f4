"""Voice profiles on disk: scanning, validation messages, names."""

from pathlib import Path

import pytest

from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.core.voices import VoiceLibrary, is_valid_voice_name

from .support.clips import write_clip, write_profile, write_silence


def scan_one(voices_dir: Path):
    (profile,) = VoiceLibrary(voices_dir, "en").scan()
    return profile


def test_profile_reads_description_languages_and_generation_settings(tmp_path: Path) -> None:
    write_profile(
        tmp_path,
        "grandma",
        'description = "Grandma"\nlanguages = ["de", "en-US"]\n[synthesis]\ntemperature = 0.6\nspeed = 1.1\ntop_k = 30\n',
        clips=2,
    )

    profile = scan_one(tmp_path)

    assert profile.usable and profile.errors == () and profile.warnings == ()
    assert profile.description == "Grandma"
    assert profile.voice.languages == ("de", "en")
    assert profile.voice.generation == GenerationSettings(temperature=0.6, speed=1.1, top_k=30)
    assert [clip.name for clip in profile.voice.clips] == ["clip0.wav", "clip1.wav"]


def test_a_fallback_voice_is_the_profiles_and_its_styles_unless_a_style_names_its_own(
    tmp_path: Path,
) -> None:
    toml = 'fallback_voice = "de_DE-thorsten-medium"\n[styles.calm]\nfallback_voice = "low"\n'
    directory = write_profile(tmp_path, "grandma", toml)
    write_clip(directory / "calm" / "evening.wav")
    write_clip(directory / "cheerful" / "party.wav")

    profile = scan_one(tmp_path)

    assert profile.usable, profile.errors
    assert profile.voice.fallback_voice == "de_DE-thorsten-medium"
    calm, cheerful = profile.style("calm"), profile.style("cheerful")
    assert calm is not None and calm.voice.fallback_voice == "low"
    assert cheerful is not None and cheerful.voice.fallback_voice == "de_DE-thorsten-medium"


def test_profile_without_toml_uses_directory_name_and_default_language(tmp_path: Path) -> None:
    write_profile(tmp_path, "kitchen")

    profile = VoiceLibrary(tmp_path, "fr").scan()[0]

    assert (
        profile.usable and profile.description == "kitchen" and profile.voice.languages == ("fr",)
    )


def test_chinese_is_accepted_in_any_usual_spelling(tmp_path: Path) -> None:
    write_profile(tmp_path, "mei", 'languages = ["zh", "zh-CN"]\n')

    assert scan_one(tmp_path).voice.languages == ("zh-cn",)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("description = ", "not valid TOML"),
        ('descripton = "typo"\n', "unknown setting(s) descripton"),
        ('language = "klingon"\n', "cannot speak language 'klingon'"),
        ('language = "en"\nlanguages = ["de"]\n', "either language or languages"),
        ("languages = []\n", "languages must be"),
        ("description = 5\n", "description must be"),
        ("[synthesis]\ntemprature = 0.5\n", "unknown [synthesis] setting(s) temprature"),
        ("[synthesis]\ntemperature = 9.0\n", "temperature must be between 0.01 and 2, not 9"),
        ('[synthesis]\nspeed = "fast"\n', "speed must be a number"),
        ("[synthesis]\ntop_k = 2.5\n", "top_k must be a whole number"),
        ("[synthesis]\ntop_k = true\n", "top_k must be a whole number"),
        ("synthesis = 3\n", "[synthesis] must be a table"),
        ("fallback_voice = 3\n", "fallback_voice must be the name of a voice"),
        ('fallback_voice = " "\n', "fallback_voice must be the name of a voice"),
    ],
)
def test_bad_settings_make_the_profile_unusable_with_a_readable_reason(
    tmp_path: Path, toml: str, expected: str
) -> None:
    write_profile(tmp_path, "broken", toml)

    profile = scan_one(tmp_path)

    assert not profile.usable
    assert any(expected in error for error in profile.errors), profile.errors
    assert all(error.startswith("voice.toml") for error in profile.errors)


@pytest.mark.parametrize(
    ("clip_options", "expected"),
    [
        ({"seconds": 2.0}, "is 2.0 s long; a clip needs at least 3 s"),
        ({"sample_rate": 8000}, "sample rate 8000 Hz is too low"),
        ({"channels": 4}, "has 4 channels"),
    ],
)
def test_unusable_clips_are_reported_by_name_with_the_reason(
    tmp_path: Path, clip_options: dict, expected: str
) -> None:
    write_clip(tmp_path / "bad" / "take1.wav", **clip_options)

    profile = scan_one(tmp_path)

    assert not profile.usable
    assert any(error.startswith("take1.wav:") and expected in error for error in profile.errors), (
        profile.errors
    )


def test_silent_clip_is_unusable(tmp_path: Path) -> None:
    write_silence(tmp_path / "mute" / "quiet.wav")

    (error,) = scan_one(tmp_path).errors

    assert error.startswith("quiet.wav:") and "silent" in error


def test_undecodable_clip_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "noise.wav").write_bytes(b"RIFF not really a wave file")

    (error,) = scan_one(tmp_path).errors

    assert error.startswith("noise.wav:") and "cannot be decoded" in error


def test_profile_without_clips_says_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "voice.toml").write_text('description = "Empty"\n')

    (error,) = scan_one(tmp_path).errors

    assert "no reference clips" in error and ".wav" in error


@pytest.mark.parametrize(
    ("clip_options", "expected"),
    [
        ({"seconds": 4.0}, "6-30 s of speech clones better"),
        ({"seconds": 35.0}, "only the first 30 s is used"),
        ({"channels": 2}, "stereo"),
        ({"gain": 8.0}, "clipped"),
    ],
)
def test_questionable_clips_stay_usable_with_a_warning(
    tmp_path: Path, clip_options: dict, expected: str
) -> None:
    write_clip(tmp_path / "meh" / "take.wav", **clip_options)

    profile = scan_one(tmp_path)

    assert profile.usable
    assert any(expected in warning for warning in profile.warnings), profile.warnings


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_compressed_clips_are_accepted(tmp_path: Path, suffix: str) -> None:
    write_clip(tmp_path / "packed" / f"take{suffix}")

    assert scan_one(tmp_path).usable


def test_hidden_directories_and_loose_files_are_not_profiles(tmp_path: Path) -> None:
    write_profile(tmp_path, "real")
    write_profile(tmp_path, ".cache")
    (tmp_path / "notes.txt").write_text("not a profile")

    assert [profile.name for profile in VoiceLibrary(tmp_path, "en").scan()] == ["real"]


def test_changed_clip_is_checked_again(tmp_path: Path) -> None:
    library = VoiceLibrary(tmp_path, "en")
    clip = write_clip(tmp_path / "v" / "take.wav")
    assert library.scan()[0].usable

    write_silence(clip)

    assert not library.scan()[0].usable


def test_missing_voices_directory_means_no_profiles(tmp_path: Path) -> None:
    assert VoiceLibrary(tmp_path / "absent", "en").scan() == []


@pytest.mark.parametrize(
    "name", ["../alice", "a/b", "..", ".cache", "", "a\\b", "x" * 80, "bad\x00name"]
)
def test_names_that_could_escape_the_voices_directory_are_invalid(
    tmp_path: Path, name: str
) -> None:
    assert not is_valid_voice_name(name)
    assert VoiceLibrary(tmp_path, "en").find(name) is None


@pytest.mark.parametrize("name", ["alice", "Grandma Rose", "kid-2", "anna_b", "Zoë"])
def test_ordinary_names_are_valid(name: str) -> None:
    assert is_valid_voice_name(name)


def test_scanning_never_writes_to_the_voices_directory(tmp_path: Path) -> None:
    write_profile(tmp_path, "alice", 'description = "A"\n', clips=2)
    before = sorted((path, path.stat().st_mtime_ns) for path in tmp_path.rglob("*"))

    VoiceLibrary(tmp_path, "en").scan()

    assert sorted((path, path.stat().st_mtime_ns) for path in tmp_path.rglob("*")) == before
