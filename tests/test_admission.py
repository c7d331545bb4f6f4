"""Who may connect, how many, how long a silent connection lives, and request floods."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.ping import Ping
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.settings import Settings

from .conftest import RecordingEngine, read_until, serving
from .support.clips import write_profile

ALICE = SynthesizeVoice(name="alice")


@asynccontextmanager
async def server(engine: RecordingEngine, tmp_path: Path, **options: Any) -> AsyncIterator[int]:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    settings = replace(
        Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data"), **options
    )
    async with serving(settings, engine) as port:
        yield port


async def until_closed(client: AsyncTcpClient, timeout: float = 30) -> list[Event]:
    """Events until the server closes the connection (a reset counts as closed)."""
    events: list[Event] = []
    async with asyncio.timeout(timeout):
        try:
            while (event := await client.read_event()) is not None:
                events.append(event)
        except ConnectionResetError:
            pass
    return events


async def pong(port: int) -> bool:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Ping().event())
        return (await read_until(client, "pong"))[-1].type == "pong"


async def test_connections_over_the_limit_are_refused_until_one_closes(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with server(engine, tmp_path, max_connections=2) as port:
        first, second = AsyncTcpClient("127.0.0.1", port), AsyncTcpClient("127.0.0.1", port)
        await first.connect()
        await second.connect()
        for client in (first, second):  # both admitted and served
            await client.write_event(Ping().event())
            await read_until(client, "pong")
        async with AsyncTcpClient("127.0.0.1", port) as third:
            refused = await until_closed(third)
        await first.disconnect()
        await asyncio.sleep(0.2)
        after = await pong(port)
        await second.disconnect()

    assert [event.type for event in refused] == ["error"]
    assert refused[0].data["code"] == "too-many-connections"
    assert after


async def test_clients_outside_the_allow_list_are_closed_at_once(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with server(engine, tmp_path, allow="10.0.0.0/8, 192.168.0.0/16") as port:
        client = AsyncTcpClient("127.0.0.1", port)
        await client.connect()
        await client.write_event(Ping().event())
        events = await until_closed(client)
        with contextlib.suppress(ConnectionError):
            await client.disconnect()
    async with server(engine, tmp_path, allow="192.168.0.0/16,127.0.0.1") as port:
        allowed = await pong(port)

    assert events == []
    assert allowed


@pytest.mark.slow
async def test_a_silent_connection_is_closed_after_the_idle_timeout(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with (
        server(engine, tmp_path, idle_timeout=1.0) as port,
        AsyncTcpClient("127.0.0.1", port) as client,
    ):
        started = time.monotonic()
        events = await until_closed(client)
        waited = time.monotonic() - started

    assert [event.type for event in events] == ["error"]
    assert events[0].data["code"] == "idle"
    assert 0.9 < waited < 10


@pytest.mark.slow
async def test_waiting_for_a_long_response_is_not_idling(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    text = " ".join(f"This is sentence number {n} of a long reply." for n in range(6))
    async with (
        server(engine, tmp_path, idle_timeout=1.0) as port,
        AsyncTcpClient("127.0.0.1", port) as client,
    ):
        started = time.monotonic()
        await client.write_event(Synthesize(text=text, voice=ALICE).event())
        events = await read_until(client, "audio-stop", "error")
        took = time.monotonic() - started

    assert events[-1].type == "audio-stop"
    assert took > 1.0, "the response outlasted the idle timeout"


async def test_a_client_flooding_requests_is_cut_off_and_others_are_served(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with server(engine, tmp_path) as port:
        async with AsyncTcpClient("127.0.0.1", port) as flooder:
            for _ in range(20):
                await flooder.write_event(
                    Synthesize(text="Flood the server now.", voice=ALICE).event()
                )
            events = await until_closed(flooder, timeout=120)
        other_served = await pong(port)

    assert events[-1].type == "error" and events[-1].data["code"] == "too-many-requests"
    assert other_served
