"""Settings from the command line and the environment."""

from pathlib import Path

import pytest

from wyoming_xtts.core.settings import Settings, parse_settings


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
        "WYOMING_XTTS_ENGINE": "replicate",
        "WYOMING_XTTS_PROVIDER_URL": "http://127.0.0.1:9999/v1",
        "WYOMING_XTTS_API_KEY_FILE": "/run/secrets/replicate",
        "WYOMING_XTTS_REPLICATE_VERSION": "abc123",
        "WYOMING_XTTS_CLEANUP_VOICE": "on",
        "WYOMING_XTTS_PROVIDER_TIMEOUT": "30.5",
        "WYOMING_XTTS_SEGMENTS_IN_FLIGHT": "2",
        "WYOMING_XTTS_PROVIDER_CONCURRENCY": "4",
        "WYOMING_XTTS_PRECISION": "int8",
        "WYOMING_XTTS_FIRST_CHUNK_TOKENS": "5",
        "WYOMING_XTTS_DEEPSPEED": "1",
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
        engine="replicate",
        provider_url="http://127.0.0.1:9999/v1",
        api_key_file=Path("/run/secrets/replicate"),
        replicate_version="abc123",
        cleanup_voice=True,
        provider_timeout=30.5,
        segments_in_flight=2,
        provider_concurrency=4,
        precision="int8",
        first_chunk_tokens=5,
        deepspeed=True,
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
        ["--engine", "openai"],
        ["--provider-timeout", "soon"],
        ["--provider-timeout", "0"],
        ["--provider-url", "ftp://example.com"],
        ["--segments-in-flight", "0"],
        ["--provider-concurrency", "100"],
        ["--precision", "int2"],
        ["--first-chunk-tokens", "1"],
        ["--first-chunk-tokens", "49"],
    ],
)
def test_invalid_values_stop_with_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_settings(argv, {})

    assert stopped.value.code == 2
    assert argv[0] in capsys.readouterr().err
