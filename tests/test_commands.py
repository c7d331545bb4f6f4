"""The sub-commands: `voice`, `say` and `health`, as users run them."""

import argparse
import asyncio
import subprocess
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wyoming_xtts.commands import health, model, voice
from wyoming_xtts.core.voices import VoiceLibrary

from .conftest import LiveServer, free_port
from .support.clips import phone_recording, speechlike, write_clip, write_silence


def run_voice(voices_dir: Path, *argv: str) -> int:
    return voice.main(["--voices-dir", str(voices_dir), *argv])


def test_voice_add_cleans_the_clips_into_a_usable_profile_and_keeps_the_originals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stereo = write_clip(tmp_path / "in" / "kitchen.wav", seconds=8, sample_rate=44_100, channels=2)
    quiet = write_clip(tmp_path / "in" / "hall.flac", seconds=7, gain=0.1, seed=3)
    padded = tmp_path / "in" / "padded.wav"
    silence = np.zeros(22_050 * 2, np.float32)
    soundfile.write(padded, np.concatenate([silence, speechlike(7.0), silence]), 22_050)
    originals = {path: path.read_bytes() for path in (stereo, quiet, padded)}

    code = run_voice(
        tmp_path / "voices",
        "add",
        "Grandma",
        str(stereo),
        str(quiet),
        str(padded),
        "--language",
        "de",
        "--language",
        "en",
        "--description",
        "Oma Erna",
    )

    assert code == 0
    profile = VoiceLibrary(tmp_path / "voices", "en").find("Grandma")
    assert profile is not None and profile.usable, profile
    assert profile.description == "Oma Erna"
    assert profile.voice.languages == ("de", "en")
    assert len(profile.voice.clips) == 3
    for clip in profile.voice.clips:
        info = soundfile.info(clip)
        assert (info.samplerate, info.channels, info.subtype) == (22_050, 1, "PCM_16")
    levels = [np.sqrt(np.mean(np.square(soundfile.read(clip)[0]))) for clip in profile.voice.clips]
    assert max(levels) / min(levels) < 1.5, "quiet and loud clips are evened out"
    assert soundfile.info(profile.voice.clips[2]).duration < 7.6, "silence trimmed"
    assert all(path.read_bytes() == data for path, data in originals.items())
    assert "Voice 'Grandma': 3 clip(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make_clip", "problem"),
    [
        (lambda path: write_clip(path, seconds=2.0), "at least 3 s"),
        (lambda path: write_silence(path), "silent"),
        (lambda path: write_clip(path, sample_rate=8_000), "too low"),
    ],
    ids=["too short", "silent", "8 kHz"],
)
def test_voice_add_refuses_an_unusable_clip_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_clip, problem: str
) -> None:
    good = write_clip(tmp_path / "in" / "good.wav")
    bad = make_clip(tmp_path / "in" / "bad.wav")

    code = run_voice(tmp_path / "voices", "add", "bob", str(good), str(bad))

    assert code == 1
    output = capsys.readouterr()
    assert problem in output.out and "nothing written" in output.err
    assert not (tmp_path / "voices" / "bob").exists()
    assert [p.name for p in (tmp_path / "voices").glob(".*")] == []


def test_voice_add_warns_about_a_clipped_recording_but_accepts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clipped = write_clip(tmp_path / "in" / "loud.wav", gain=8.0)

    assert run_voice(tmp_path / "voices", "add", "loud", str(clipped)) == 0
    assert "clipped" in capsys.readouterr().out


def test_voice_add_keeps_any_description_readable(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "a.wav")
    description = 'Oma "Erna" \\ Küche\nzweite Zeile 👵'

    assert (
        run_voice(tmp_path / "voices", "add", "oma", str(clip), "--description", description) == 0
    )
    profile = VoiceLibrary(tmp_path / "voices", "en").find("oma")
    assert profile is not None and profile.usable
    assert profile.description == description


def test_voice_add_will_not_overwrite_without_replace(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in" / "a.wav")
    assert run_voice(tmp_path / "voices", "add", "amy", str(clip)) == 0

    assert run_voice(tmp_path / "voices", "add", "amy", str(clip)) == 1
    assert run_voice(tmp_path / "voices", "add", "amy", str(clip), str(clip), "--replace") == 0
    assert len(list((tmp_path / "voices" / "amy").glob("*.wav"))) == 2


def test_voice_list_and_check_explain_a_broken_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    voices = tmp_path / "voices"
    run_voice(voices, "add", "amy", str(write_clip(tmp_path / "a.wav")))
    (voices / "broken").mkdir()
    write_silence(voices / "broken" / "mute.wav")
    capsys.readouterr()

    assert run_voice(voices, "list") == 0
    listed = capsys.readouterr().out
    assert "amy: ok" in listed and "broken: BROKEN" in listed and "mute.wav: is silent" in listed
    assert run_voice(voices, "check", "broken") == 1
    assert run_voice(voices, "check", "amy") == 0
    assert "clip1.wav:" in capsys.readouterr().out


def test_voice_remove_deletes_only_a_named_profile(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    run_voice(voices, "add", "amy", str(write_clip(tmp_path / "a.wav")))

    assert run_voice(voices, "remove", "../voices", "--yes") == 1
    assert run_voice(voices, "remove", "amy") == 1, "no terminal to confirm in: refuse"
    assert run_voice(voices, "remove", "amy", "--yes") == 0
    assert not (voices / "amy").exists() and voices.exists()


def say(
    checkpoint_dir: Path, tmp_path: Path, voices: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`wyoming-xtts say` on the test checkpoint, as a real process."""
    command = [sys.executable, "-m", "wyoming_xtts", "say", "--model-dir", str(checkpoint_dir)]
    command += ["--voices-dir", str(voices), "--data-dir", str(tmp_path / "data"), *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=300, check=False)


@pytest.mark.slow
def test_say_writes_a_wav_file_and_to_standard_output(checkpoint_dir: Path, tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voice.main(["--voices-dir", str(voices), "add", "amy", str(write_clip(tmp_path / "a.wav"))])
    out = tmp_path / "out.wav"

    to_file = say(checkpoint_dir, tmp_path, voices, "--voice", "amy", "-o", str(out), "Hi there.")
    to_stdout = say(
        checkpoint_dir, tmp_path, voices, "--voice", "amy", "-o", "-", stdin=b"The door is open."
    )

    assert to_file.returncode == 0, to_file.stderr
    assert b"Wrote" in to_file.stderr
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24_000, 1, 2)
        assert wav.getnframes() > 0
    assert to_stdout.returncode == 0
    assert to_stdout.stdout[:4] == b"RIFF" and len(to_stdout.stdout) > 1000


@pytest.mark.slow
def test_say_reads_ssml_and_reports_a_malformed_document(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    document = '<speak>Hi there.<break time="1s"/>Bye now, friends.</speak>'
    spoken = say(checkpoint_dir, tmp_path, tmp_path, "--ssml", "-o", "-", document)
    broken = say(checkpoint_dir, tmp_path, tmp_path, "--ssml", "<speak>Hi <b>there</speak>")

    assert spoken.returncode == 0, spoken.stderr
    pcm = np.frombuffer(spoken.stdout[44:], dtype="<i2")
    longest_silence = max(
        len(run) for run in "".join("0" if x == 0 else "1" for x in pcm).split("1")
    )
    assert longest_silence >= 24_000  # the one-second break
    assert broken.returncode == 1 and b"bad-request" in broken.stderr
    assert b"mismatched tag" in broken.stderr


@pytest.mark.slow
def test_say_reports_an_unknown_voice(checkpoint_dir: Path, tmp_path: Path) -> None:
    finished = say(checkpoint_dir, tmp_path, tmp_path, "--voice", "nobody", "Hello there.")

    assert finished.returncode == 1
    assert b"voice-not-found" in finished.stderr and b"Traceback" not in finished.stderr


async def test_health_is_ok_against_a_live_server(
    live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # In a thread: the command runs its own event loop while the server's keeps serving.
    code = await asyncio.to_thread(health.main, ["--uri", f"tcp://127.0.0.1:{live_server.port}"])

    assert code == 0
    assert capsys.readouterr().out.startswith("ok: wyoming-xtts")


def test_health_fails_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    code = health.main(["--uri", f"tcp://127.0.0.1:{free_port()}", "--timeout", "2"])

    assert code == 1
    assert "unhealthy: cannot connect" in capsys.readouterr().err


def test_health_defaults_to_the_configured_server_on_this_machine() -> None:
    assert health.local_uri("tcp://0.0.0.0:10200") == "tcp://127.0.0.1:10200"
    assert health.local_uri("unix:///run/xtts.sock") == "unix:///run/xtts.sock"


def test_voice_add_denoise_removes_steady_background_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    speech = np.concatenate([np.zeros(22_050), speechlike(7.0), np.zeros(22_050)])
    noisy = (speech + 0.02 * rng.standard_normal(speech.size)).astype(np.float32)
    soundfile.write(tmp_path / "noisy.wav", noisy, 22_050)

    for name, extra in (("plain", []), ("clean", ["--denoise"])):
        assert run_voice(tmp_path / "voices", "add", name, str(tmp_path / "noisy.wav"), *extra) == 0

    def noise_floor(name: str) -> float:
        samples, _ = soundfile.read(tmp_path / "voices" / name / "clip1.wav")
        frames = samples[: samples.size // 661 * 661].reshape(-1, 661)
        return float(np.percentile(np.sqrt(np.mean(frames**2, axis=1)), 10))

    assert noise_floor("clean") < noise_floor("plain") / 3


def _sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _command_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]


def _positionals(parser: argparse.ArgumentParser) -> list[str]:
    values = []
    for action in parser._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            values += ["some.wav"] if action.nargs in ("+", "*") else ["name"]
    return values


@pytest.mark.parametrize("build", [voice._parser, model._parser], ids=["voice", "model"])
def test_every_option_of_a_command_is_accepted_before_and_after_each_sub_command(
    build: Callable[[], argparse.ArgumentParser],
) -> None:
    parser = build()
    sub_commands = _sub_commands(parser)
    options = _command_options(parser)

    assert sub_commands and options
    for name, sub_command in sub_commands.items():
        for option in options:
            given = [option.option_strings[-1], "/some/where"]
            after = parser.parse_args([name, *_positionals(sub_command), *given])
            before = parser.parse_args([*given, name, *_positionals(sub_command)])
            assert getattr(after, option.dest) == getattr(before, option.dest) == "/some/where"


def test_voice_list_takes_the_voices_directory_after_the_sub_command(tmp_path: Path) -> None:
    write_clip(tmp_path / "voices" / "oma" / "clip.wav", seconds=8)

    listed = subprocess.run(
        [sys.executable, "-m", "wyoming_xtts", "voice", "list"]
        + ["--voices-dir", str(tmp_path / "voices")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("oma: ok")


def test_model_info_takes_the_data_directory_after_the_sub_command(tmp_path: Path) -> None:
    info = subprocess.run(
        [sys.executable, "-m", "wyoming_xtts", "model", "info", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert info.returncode == 1
    assert f"No checkpoint at {tmp_path / 'models' / 'XTTS-v2'}" in info.stderr


def test_voice_add_takes_a_phones_m4a_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = phone_recording(tmp_path / "Voice memo.m4a", "mp4", "aac")
    assert run_voice(tmp_path / "voices", "add", "Oma", str(recording)) == 0
    profile = VoiceLibrary(tmp_path / "voices", "en").find("Oma")
    assert profile is not None and profile.usable
    assert [clip.name for clip in profile.voice.clips] == ["clip1.wav"]
    assert "Voice memo.m4a: ok (8.0 s, 48000 Hz, 1 ch)" in capsys.readouterr().out


def test_voice_add_style_adds_a_speaking_style_that_check_shows_and_remove_takes_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    voices = tmp_path / "voices"
    assert run_voice(voices, "add", "Oma", str(write_clip(tmp_path / "plain.wav"))) == 0
    party = write_clip(tmp_path / "party.wav", seconds=8, seed=3)
    assert run_voice(voices, "add", "Oma", str(party), "--style", "cheerful") == 0
    assert run_voice(voices, "add", "Oma", str(party), "--style", "cheerful") == 1
    assert run_voice(voices, "add", "Nobody", str(party), "--style", "cheerful") == 1
    profile = VoiceLibrary(voices, "en").find("Oma")
    assert profile is not None and [style.name for style in profile.styles] == ["cheerful"]
    assert profile.style("cheerful") is not None
    capsys.readouterr()
    assert run_voice(voices, "check", "Oma") == 0
    shown = capsys.readouterr().out
    assert "styles: cheerful" in shown and "style cheerful: ok" in shown
    assert run_voice(voices, "remove", "Oma", "--style", "cheerful", "--yes") == 0
    assert not (voices / "Oma" / "cheerful").exists() and (voices / "Oma" / "clip1.wav").exists()
