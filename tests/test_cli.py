"""The `wyoming-xtts` command as users run it: a real process, real sockets."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from wyoming.client import AsyncClient
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts import __version__

from .conftest import event_types, free_port, read_until

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_VOICES = REPO / "voices"
STARTUP_TIMEOUT = 120.0


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "wyoming_xtts", *args]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "COQUI_TOS_AGREED"}
    environment.update(env or {})
    return subprocess.run(
        command(*args),
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        stdin=subprocess.DEVNULL,
    )


def start_server(
    checkpoint_dir: Path, tmp_path: Path, uri: str, **popen: object
) -> subprocess.Popen:
    """`wyoming-xtts` on the test checkpoint and the shipped example voices."""
    arguments = ("--model-dir", str(checkpoint_dir), "--voices-dir", str(EXAMPLE_VOICES))
    return subprocess.Popen(  # type: ignore[call-overload]
        command(*arguments, "--data-dir", str(tmp_path / "data"), "--uri", uri), **popen
    )


@pytest.fixture
def server_process(checkpoint_dir: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    uri = f"tcp://127.0.0.1:{free_port()}"
    process = start_server(checkpoint_dir, tmp_path, uri, stderr=subprocess.PIPE, text=True)
    yield uri, process
    process.terminate()
    process.wait(timeout=30)


async def connect_when_ready(uri: str, process: subprocess.Popen) -> AsyncClient:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else "server exited"
        client = AsyncClient.from_uri(uri)
        try:
            await client.connect()
            return client
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)


def test_version_is_printed() -> None:
    result = run_cli("--version")

    assert result.returncode == 0 and result.stdout.strip() == __version__


@pytest.mark.slow
async def test_server_speaks_the_shipped_example_voice(
    server_process: tuple[str, subprocess.Popen],
) -> None:
    uri, process = server_process
    client = await connect_when_ready(uri, process)
    try:
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, "info"))[-1])
        await client.write_event(
            Synthesize(
                text="The front door is open.", voice=SynthesizeVoice(name="example")
            ).event()
        )
        events = await read_until(client, "audio-stop", "error")
    finally:
        await client.disconnect()

    assert "example" in [voice.name for voice in info.tts[0].voices]
    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]


@pytest.mark.slow
async def test_server_listens_on_a_unix_socket(checkpoint_dir: Path, tmp_path: Path) -> None:
    socket_path = tmp_path / "xtts.sock"
    process = start_server(
        checkpoint_dir, tmp_path, f"unix://{socket_path}", stderr=subprocess.DEVNULL
    )
    try:
        client = await connect_when_ready(f"unix://{socket_path}", process)
        await client.write_event(Describe().event())
        events = await read_until(client, "info")
        await client.disconnect()
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert events[-1].type == "info"


@pytest.mark.slow
def test_server_speaks_over_stdio(checkpoint_dir: Path, tmp_path: Path) -> None:
    process = start_server(
        checkpoint_dir,
        tmp_path,
        "stdio://",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin and process.stdout
    to_server, from_server = cast(BinaryIO, process.stdin), cast(BinaryIO, process.stdout)
    write_event(Synthesize(text="Talking through a pipe.").event(), to_server)
    to_server.flush()
    events: list[Event] = []
    while not events or events[-1].type not in ("audio-stop", "error"):
        event = read_event(from_server)
        assert event is not None
        events.append(event)
    process.stdin.close()
    process.wait(timeout=30)

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]


@pytest.mark.slow
def test_missing_model_dir_exits_with_one_clear_sentence(tmp_path: Path) -> None:
    result = run_cli("--model-dir", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"wyoming-xtts: The model directory {tmp_path / 'nowhere'} does not exist."
    )


@pytest.mark.slow
def test_download_without_licence_acceptance_explains_the_cpml_and_downloads_nothing(
    tmp_path: Path,
) -> None:
    result = run_cli("--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert "CPML" in message and "--agree-cpml" in message and "--model-dir" in message
    assert not (tmp_path / "data" / "models").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "network",
    [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2"}],
)
def test_download_offline_fails_clearly_and_leaves_no_half_written_model(
    tmp_path: Path, network: dict[str, str]
) -> None:
    result = run_cli("--agree-cpml", "--data-dir", str(tmp_path / "data"), env=network)

    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert (
        message.startswith("wyoming-xtts: Could not download XTTS-v2") and "--model-dir" in message
    )
    models = tmp_path / "data" / "models"
    assert not models.exists() or list(models.iterdir()) == []
