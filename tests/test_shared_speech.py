"""Identical requests at the same time (one announcement to several speakers): one synthesis,
heard by all of them."""

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.settings import Settings

from .conftest import audio_bytes, read_until, serving
from .support.clips import write_profile
from .support.scripted_engine import RATE, ScriptedEngine

ANNOUNCEMENT = "The washing machine is done."
PIECES = 10


@dataclass
class SlowEngine(ScriptedEngine):
    """Ten pieces of 0.1 s, 20 ms apart, each a different level; records every call."""

    calls: list[str] = field(default_factory=list)
    closed_early: list[str] = field(default_factory=list)
    failing: bool = False

    async def synthesize(
        self, text: str, language: str, voice: object
    ) -> AsyncGenerator[np.ndarray, None]:
        self.calls.append(text)
        completed = False
        try:
            for index in range(PIECES):
                await asyncio.sleep(0.02)
                if self.failing and index == 3:
                    raise RuntimeError("the model fell over")
                yield np.full(RATE // 10, 0.01 * (index + 1), np.float32)
            completed = True
        finally:
            if not completed:
                self.closed_early.append(text)


def settings_for(tmp_path: Path) -> Settings:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    write_profile(tmp_path / "voices", "bob", 'languages = ["en"]\n')
    return Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data")


async def announce(
    port: int, voice: str = "alice", hang_up_after: int | None = None
) -> list[Event]:
    """A plain request; with `hang_up_after`, the connection is dropped after that many chunks."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(
            Synthesize(text=ANNOUNCEMENT, voice=SynthesizeVoice(name=voice)).event()
        )
        if hang_up_after is None:
            return await read_until(client, "audio-stop")  # after an error too
        events: list[Event] = []
        while sum(event.type == "audio-chunk" for event in events) < hang_up_after:
            event = await client.read_event()
            assert event is not None
            events.append(event)
        return events


async def test_identical_requests_at_once_are_synthesized_once_and_heard_by_all(
    tmp_path: Path,
) -> None:
    engine = SlowEngine()
    async with serving(settings_for(tmp_path), engine) as port:  # type: ignore[arg-type]
        replies = await asyncio.gather(*(announce(port) for _ in range(4)))
    assert engine.calls == [ANNOUNCEMENT]
    heard = [audio_bytes(events) for events in replies]
    assert len(heard[0]) == PIECES * RATE // 10 * 2
    assert all(audio == heard[0] for audio in heard)


async def test_the_same_text_in_another_voice_or_later_is_synthesized_again(
    tmp_path: Path,
) -> None:
    engine = SlowEngine()
    async with serving(settings_for(tmp_path), engine) as port:  # type: ignore[arg-type]
        await asyncio.gather(announce(port, "alice"), announce(port, "bob"))
        await announce(port, "alice")
    assert engine.calls == [ANNOUNCEMENT] * 3


async def test_one_listener_hanging_up_leaves_the_others_the_whole_segment(
    tmp_path: Path,
) -> None:
    engine = SlowEngine()
    async with serving(settings_for(tmp_path), engine) as port:  # type: ignore[arg-type]
        gone, stayed = await asyncio.gather(announce(port, hang_up_after=1), announce(port))
        await asyncio.sleep(0.1)
    assert engine.calls == [ANNOUNCEMENT] and engine.closed_early == []
    assert len(audio_bytes(stayed)) == PIECES * RATE // 10 * 2
    assert audio_bytes(stayed).startswith(audio_bytes(gone))


async def test_when_every_listener_has_hung_up_the_engine_stops(tmp_path: Path) -> None:
    engine = SlowEngine()
    async with serving(settings_for(tmp_path), engine) as port:  # type: ignore[arg-type]
        await asyncio.gather(announce(port, hang_up_after=1), announce(port, hang_up_after=2))
        for _ in range(100):  # the server notices the hang-ups within a few pieces
            if engine.closed_early:
                break
            await asyncio.sleep(0.02)
    assert engine.closed_early == [ANNOUNCEMENT]


@pytest.mark.parametrize("listeners", [1, 3])
async def test_a_failure_of_the_shared_synthesis_reaches_every_listener(
    tmp_path: Path, listeners: int
) -> None:
    engine = SlowEngine(failing=True)
    async with serving(settings_for(tmp_path), engine) as port:  # type: ignore[arg-type]
        replies = await asyncio.gather(*(announce(port) for _ in range(listeners)))
    assert engine.calls == [ANNOUNCEMENT]
    for events in replies:
        errors = [event for event in events if event.type == "error"]
        assert [error.data["code"] for error in errors] == ["synthesis-failed"]
        assert events[-1].type == "audio-stop"  # audio had begun: ended where HA listens
