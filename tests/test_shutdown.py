"""Stopping the server lets the announcement finish: a real server process, real signals.

Found on 2026-12-03: on SIGTERM the `wyoming` library's own handler stopped every connection at
once, and a client in the middle of a reply saw `audio-start`, some audio, then a closed
socket. The server here runs the cloud proxy against the local Replicate fake, whose
predictions take as long as a test needs, so that a reply is in flight when the signal comes.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeVoice

from .support import home_assistant
from .support.clips import write_profile
from .support.fake_providers import REPLICATE_TOKEN, FakeReplicate
from .support.net import free_port, wait_for_port

pytestmark = pytest.mark.slow  # each test starts a server process

THREE_SENTENCES = "The washing machine is done. The door is open. Dinner is ready."


@contextmanager
def server(
    tmp_path: Path, replicate: FakeReplicate, *options: str, http_port: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A wyoming-xtts process proxying to the fake; yields it and its Wyoming port."""
    port = free_port()
    voices = tmp_path / "voices"
    write_profile(voices, "alice", 'languages = ["en"]\n')
    command = [sys.executable, "-m", "wyoming_xtts", "--engine", "replicate"]
    command += ["--provider-url", f"{replicate.base}/v1", "--voices-dir", str(voices)]
    command += ["--data-dir", str(tmp_path / "data"), "--uri", f"tcp://127.0.0.1:{port}"]
    if http_port is not None:
        command += ["--http", f"tcp://127.0.0.1:{http_port}"]
    process = subprocess.Popen(
        [*command, *options],
        env={**os.environ, "REPLICATE_API_TOKEN": REPLICATE_TOKEN},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port)
        if http_port is not None:
            wait_for_port(http_port)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def stopped(process: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, float, str]:
    """Wait for the process to exit: its status, seconds it took, what it logged."""
    started = time.monotonic()
    _, log = process.communicate(timeout=timeout)
    return process.returncode, time.monotonic() - started, log


async def wait_for_predictions(replicate: FakeReplicate, count: int) -> None:
    """Until the server has asked the provider for `count` sentences."""
    async with asyncio.timeout(30):
        while len(replicate.calls("POST", "/v1/predictions")) < count:
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_a_reply_in_flight_is_spoken_to_its_end_and_the_server_exits_0(
    tmp_path: Path, replicate: FakeReplicate, stop_signal: signal.Signals
) -> None:
    replicate.processing_s = 1.0
    with server(tmp_path, replicate, "--shutdown-grace", "20") as (process, port):
        whole = await home_assistant.plain(
            port, home_assistant.plain_request(THREE_SENTENCES, "alice")
        )
        reading = asyncio.create_task(
            home_assistant.plain(port, home_assistant.plain_request(THREE_SENTENCES, "alice"))
        )
        await wait_for_predictions(replicate, 4)
        process.send_signal(stop_signal)
        reply = await reading
        with pytest.raises(OSError):  # no new connections once stopping
            await asyncio.sleep(0.5)
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
        code, _, log = stopped(process)

    assert reply.ended_by == "audio-stop" and reply.errors == []
    assert reply.audio == whole.audio, "every sentence, none cut"
    assert code == 0, log
    assert "stopping" in log


@pytest.mark.parametrize("reader", ["plain", "streaming"])
async def test_a_reply_longer_than_the_grace_ends_where_home_assistant_listens(
    tmp_path: Path, replicate: FakeReplicate, reader: str
) -> None:
    replicate.processing_s = 30.0  # far longer than the grace period
    with server(tmp_path, replicate, "--shutdown-grace", "1") as (process, port):
        if reader == "plain":
            request = home_assistant.plain_request(THREE_SENTENCES, "alice")
            reading = asyncio.create_task(home_assistant.plain(port, request))
        else:
            # The client has not sent synthesize-stop yet (an LLM still writing).
            request = home_assistant.streaming_request([THREE_SENTENCES], "alice")[:2]
            reading = asyncio.create_task(home_assistant.streaming(port, request))
        await wait_for_predictions(replicate, 1)
        process.send_signal(signal.SIGTERM)
        reply = await reading
        code, took, log = stopped(process)

    # Before any audio a plain reply ends with the connection closing (an `audio-stop` alone
    # would give Home Assistant an empty WAV to cache); a stream with `synthesize-stopped`.
    assert reply.ended_by == ("closed" if reader == "plain" else "synthesize-stopped")
    assert [error["code"] for error in reply.errors] == ["shutting-down"]
    assert code == 0, log
    assert took < 1 + 2 + 2, "the grace, the final writes, and the rest of the exit"


async def test_a_reply_cut_short_after_its_audio_began_ends_with_audio_stop(
    tmp_path: Path, replicate: FakeReplicate
) -> None:
    # The first sentence is short and quick, the next would take far longer than the grace.
    replicate.processing_s, replicate.processing_s_per_char = 0.2, 0.06
    text = "The front door is open. " + "And this long sentence goes on " * 7 + "to its end."
    with server(tmp_path, replicate, "--shutdown-grace", "1") as (process, port):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text=text, voice=SynthesizeVoice("alice")).event())
            events = [await client.read_event()]
            while events[-1] is not None and events[-1].type != "audio-chunk":
                events.append(await client.read_event())
            process.send_signal(signal.SIGTERM)
            while events[-1] is not None and events[-1].type != "audio-stop":
                events.append(await asyncio.wait_for(client.read_event(), 10))
        code, _, log = stopped(process)

    types = [event.type for event in events if event is not None]
    assert types[0] == "audio-start" and types[-1] == "audio-stop"
    assert "error" in types, log  # `shutting-down`, for the clients that read it
    assert code == 0, log


async def test_idle_connections_do_not_hold_up_the_exit(
    tmp_path: Path, replicate: FakeReplicate
) -> None:
    with server(tmp_path, replicate, "--shutdown-grace", "60") as (process, port):
        async with AsyncTcpClient("127.0.0.1", port) as idle:
            await idle.write_event(Describe().event())
            assert await idle.read_event() is not None
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(idle.read_event(), 5) is None, "closed at once"
        code, took, log = stopped(process)

    assert code == 0, log
    assert took < 5


async def test_an_http_response_in_flight_finishes_and_one_past_the_grace_is_broken_off(
    tmp_path: Path, replicate: FakeReplicate
) -> None:
    replicate.processing_s = 1.0
    http_port = free_port()
    body = {
        "model": "tts-1",
        "voice": "alice",
        "input": "Dinner is ready.",
        "response_format": "pcm",
    }
    with server(tmp_path, replicate, "--shutdown-grace", "4", http_port=http_port) as (process, _):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}/", timeout=30) as http:
            short = asyncio.create_task(http.post("v1/audio/speech", json=body))
            await wait_for_predictions(replicate, 1)
            process.send_signal(signal.SIGTERM)
            finished = await short
            code, _, log = stopped(process)

    assert finished.status_code == 200 and finished.content
    assert code == 0, log


async def test_an_http_response_still_running_after_the_grace_is_broken_off(
    tmp_path: Path, replicate: FakeReplicate
) -> None:
    replicate.processing_s = 30.0
    http_port = free_port()
    body = {
        "model": "tts-1",
        "voice": "alice",
        "input": "Dinner is ready.",
        "response_format": "pcm",
    }
    with server(tmp_path, replicate, "--shutdown-grace", "1", http_port=http_port) as (process, _):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}/", timeout=30) as http:
            long = asyncio.create_task(http.post("v1/audio/speech", json=body))
            await wait_for_predictions(replicate, 1)
            process.send_signal(signal.SIGTERM)
            # Never a shorter file that looks whole: the client sees the reply cut off.
            with pytest.raises(httpx.HTTPError):
                response = await long
                response.raise_for_status()
            code, took, log = stopped(process)

    assert code == 0, log
    assert took < 1 + 5
