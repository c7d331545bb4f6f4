"""Engine faults in the middle of a response: an error, the response closed, the next works."""

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.settings import Settings
from wyoming_xtts.core.voices import VoiceLibrary

from .conftest import Computations, event_types, make_local_engine, read_until, serving
from .support.clips import write_profile
from .support.scripted_engine import RATE, ScriptedEngine


@dataclass
class FaultyEngine(ScriptedEngine):
    """Speaks one piece of audio, then fails with `fault` on the requests it is told to."""

    fault: BaseException
    failing: set[str] = field(default_factory=set)

    async def synthesize(
        self, text: str, language: str, voice: object
    ) -> AsyncGenerator[np.ndarray, None]:
        yield np.full(RATE // 10, 0.1, np.float32)
        if text in self.failing:
            raise self.fault
        yield np.full(RATE // 10, 0.1, np.float32)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (RuntimeError("CUDA error: device-side assert"), "synthesis-failed"),
        (MemoryError(), "synthesis-failed"),
    ],
    ids=["engine exception", "out of memory"],
)
async def test_a_fault_mid_response_closes_it_with_an_error_and_the_next_request_works(
    tmp_path: Path, fault: BaseException, code: str
) -> None:
    engine = FaultyEngine(fault, failing={"This sentence breaks the engine."})
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    settings = Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data")
    voice = SynthesizeVoice(name="alice")
    async with (
        serving(settings, engine) as port,  # type: ignore[arg-type]
        AsyncTcpClient("127.0.0.1", port) as client,
    ):
        await client.write_event(
            Synthesize(text="This sentence breaks the engine.", voice=voice).event()
        )
        failed = await read_until(client, "audio-stop")
        await client.write_event(
            Synthesize(text="This sentence is spoken fine.", voice=voice).event()
        )
        after = await read_until(client, "audio-stop", "error")

    assert event_types(failed) == ["audio-start", "audio-chunk", "error", "audio-stop"]
    (error,) = [event for event in failed if event.type == "error"]
    assert error.data["code"] == code
    assert event_types(after) == ["audio-start", "audio-chunk", "audio-stop"]


@pytest.mark.slow
async def test_two_first_requests_for_a_profile_compute_its_conditioning_once(
    checkpoint_dir: Path, tmp_path: Path, conditioning_computations: Computations
) -> None:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n', clips=2)
    profile = VoiceLibrary(tmp_path / "voices", "en").find("alice")
    assert profile is not None
    engine = make_local_engine(checkpoint_dir, tmp_path / "data", builtin_speakers=False)
    await engine.start()

    async def speak() -> int:
        return sum(
            [piece.size async for piece in engine.synthesize("Hello there.", "en", profile.voice)]
        )

    sizes = await asyncio.gather(speak(), speak())
    await engine.close()

    assert all(sizes)
    assert conditioning_computations.voices == ["alice"]
