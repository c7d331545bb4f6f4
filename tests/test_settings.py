"""Settings from the command line and the environment."""

from pathlib import Path

import pytest

from wyoming_xtts.settings import Settings, parse_settings


def test_defaults_listen_on_port_10200_with_local_voices_and_data() -> None:
    settings = parse_settings([], {})

    assert settings == Settings()
    assert settings.uri == "tcp://0.0.0.0:10200"


def test_every_option_can_come_from_the_environment() -> None:
    env = {
        "WYOMING_XTTS_URI": "unix:///run/xtts.sock",
        "WYOMING_XTTS_VOICES_DIR": "/share/voices",
        "WYOMING_XTTS_DATA_DIR": "/data",
        "WYOMING_XTTS_MODEL_DIR": "/models/xtts",
        "WYOMING_XTTS_DEVICE": "cuda:1",
        "WYOMING_XTTS_DEFAULT_VOICE": "grandma",
        "WYOMING_XTTS_DEFAULT_LANGUAGE": "de",
        "WYOMING_XTTS_SAMPLES_PER_CHUNK": "2048",
        "WYOMING_XTTS_MAX_TEXT_CHARS": "900",
        "WYOMING_XTTS_NO_BUILTIN_SPEAKERS": "true",
        "WYOMING_XTTS_AGREE_CPML": "1",
        "WYOMING_XTTS_DEBUG": "yes",
        "WYOMING_XTTS_LOG_FORMAT": "%(message)s",
    }

    settings = parse_settings([], env)

    assert settings == Settings(
        uri="unix:///run/xtts.sock",
        voices_dir=Path("/share/voices"),
        data_dir=Path("/data"),
        model_dir=Path("/models/xtts"),
        device="cuda:1",
        default_voice="grandma",
        default_language="de",
        builtin_speakers=False,
        samples_per_chunk=2048,
        max_text_chars=900,
        agree_cpml=True,
        debug=True,
        log_format="%(message)s",
    )


def test_command_line_wins_over_the_environment() -> None:
    settings = parse_settings(["--uri", "tcp://127.0.0.1:10300"], {"WYOMING_XTTS_URI": "stdio://"})

    assert settings.uri == "tcp://127.0.0.1:10300"


def test_coqui_tos_variable_counts_as_licence_acceptance() -> None:
    assert parse_settings([], {"COQUI_TOS_AGREED": "1"}).agree_cpml
    assert not parse_settings([], {"COQUI_TOS_AGREED": "yes"}).agree_cpml


@pytest.mark.parametrize(
    "argv",
    [
        ["--uri", "http://x:1"],
        ["--device", "gpu"],
        ["--samples-per-chunk", "ten"],
        ["--samples-per-chunk", "1"],
        ["--max-text-chars", "0"],
        ["--default-language", "xx"],
    ],
)
def test_invalid_values_stop_with_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_settings(argv, {})

    assert stopped.value.code == 2
    assert argv[0] in capsys.readouterr().err
