"""`--unload-after`: the local model hands its memory back when idle, `describe` and cached
announcements are answered without it, and the next request loads it once and is spoken."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.engine import Readiness
from wyoming_xtts.core.errors import SpeechError
from wyoming_xtts.core.settings import Settings, parse_settings
from wyoming_xtts.core.voices import VoiceLibrary
from wyoming_xtts.engines.local import engine as engine_module
from wyoming_xtts.engines.local.engine import XttsEngine

from .conftest import (
    BUILTIN_SPEAKERS,
    RecordingEngine,
    audio_bytes,
    make_local_engine,
    read_until,
    serving,
)
from .support.clips import write_profile
from .support.logs import listening

IDLE_MINUTES = 0.02
"""1.2 s: long enough for the checks made before it passes, short enough to wait for."""

ANNOUNCEMENT = "The washing machine is done."
SEEDED = 'languages = ["en"]\n[synthesis]\nseed = 42\n'


class EngineLog(logging.Handler):
    """What the local engine says about unloading and loading again (its log, each time)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    @property
    def unloads(self) -> int:
        return sum(message.startswith("XTTS-v2 unloaded after") for message in self.messages)

    @property
    def reloads(self) -> int:
        return sum(message.startswith("Loading XTTS-v2 again after") for message in self.messages)

    async def wait_for_unloads(self, count: int, timeout: float = 60.0) -> None:
        """Until the engine has logged `count` unloads: finished ones, memory handed back (its
        health says unloaded from their start). A test that ends earlier would leave the
        model thread logging into the next test's records."""
        async with asyncio.timeout(timeout):
            while self.unloads < count:
                await asyncio.sleep(0.02)


@pytest.fixture
def engine_log() -> Iterator[EngineLog]:
    log = EngineLog()
    with listening("wyoming_xtts.engines.local.engine", log):
        yield log


@pytest_asyncio.fixture
async def unloading(checkpoint_dir: Path, tmp_path: Path) -> AsyncIterator[XttsEngine]:
    """A started local engine that unloads after `IDLE_MINUTES` without a request."""
    engine = make_local_engine(checkpoint_dir, tmp_path / "data", unload_after=IDLE_MINUTES)
    await engine.start()
    yield engine
    await engine.close()


def settings_for(tmp_path: Path) -> Settings:
    return Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data")


async def speak(port: int, voice: str = "alice", text: str = ANNOUNCEMENT) -> bytes:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(voice)).event())
        events = await read_until(client, "audio-stop", "error")
    assert events[-1].type == "audio-stop", events[-1].data
    return audio_bytes(events)


async def describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        events = await read_until(client, "info")
    return Info.from_event(events[-1])


def test_unload_after_takes_minutes_and_refuses_what_is_out_of_range() -> None:
    assert parse_settings([]).unload_after == 0.0
    assert parse_settings(["--unload-after", "0.5"]).unload_after == 0.5
    assert parse_settings([], {"WYOMING_XTTS_UNLOAD_AFTER": "30"}).unload_after == 30.0
    for refused in ("-1", "10081", "soon", "nan"):
        with pytest.raises(SystemExit):
            parse_settings(["--unload-after", refused])


@pytest.mark.slow
async def test_the_model_is_unloaded_after_the_idle_time_and_health_says_unloaded_and_healthy(
    checkpoint_dir: Path, tmp_path: Path, engine_log: EngineLog
) -> None:
    engine = make_local_engine(checkpoint_dir, tmp_path / "data", unload_after=IDLE_MINUTES)
    await engine.start()
    try:
        await asyncio.sleep(0.3)
        assert engine.health().readiness is Readiness.READY, "not before the idle time"
        assert engine_log.unloads == 0

        await engine_log.wait_for_unloads(1)
        health = engine.health()
    finally:
        await engine.close()

    assert health.readiness is Readiness.UNLOADED and health.healthy
    assert "--unload-after" in health.detail
    (line,) = [message for message in engine_log.messages if message.startswith("XTTS-v2 unl")]
    assert "before: resident" in line and "after: resident" in line, line
    assert engine_log.reloads == 0


@pytest.mark.slow
async def test_a_segment_being_spoken_never_counts_as_idle(
    engine_log: EngineLog, unloading: XttsEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "alice")
    voice = VoiceLibrary(tmp_path / "voices", "en").find("alice")
    assert voice is not None
    audio = unloading.synthesize(ANNOUNCEMENT, "en", voice.voice)
    try:
        await anext(audio)  # the segment is open, its listener slow
        unloads = engine_log.unloads  # one before the request, on a slow machine, is fine
        await asyncio.sleep(IDLE_MINUTES * 60 * 2)
        assert engine_log.unloads == unloads, "unloaded while a segment was open"
        assert unloading.health().readiness is Readiness.READY
    finally:
        await audio.aclose()

    await engine_log.wait_for_unloads(unloads + 1)


@pytest.mark.slow
async def test_describe_is_answered_while_unloaded_without_loading_the_model(
    engine_log: EngineLog, unloading: XttsEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    async with serving(settings_for(tmp_path), RecordingEngine(unloading)) as port:
        loaded = await describe(port)
        await engine_log.wait_for_unloads(1)
        unloaded = await describe(port)

    assert unloaded == loaded
    (program,) = unloaded.tts
    assert {voice.name for voice in program.voices} == {"alice", *BUILTIN_SPEAKERS}
    assert "running locally (cpu, " in (program.description or "")
    assert engine_log.reloads == 0
    assert unloading.health().readiness is Readiness.UNLOADED


@pytest.mark.slow
async def test_the_next_request_after_an_unload_loads_the_model_once_and_is_spoken(
    engine_log: EngineLog, unloading: XttsEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    async with serving(settings_for(tmp_path), RecordingEngine(unloading)) as port:
        await engine_log.wait_for_unloads(1)
        audio = await speak(port)
        assert unloading.health().readiness is Readiness.READY
        spoken_again = await speak(port)  # loaded now: no second load
        await engine_log.wait_for_unloads(2)  # and idle again, it unloads again

    assert len(audio) > 0 and len(spoken_again) > 0
    assert engine_log.reloads == 1
    reload_line = next(m for m in engine_log.messages if m.startswith("Loading XTTS-v2 again"))
    assert reload_line.endswith("minutes idle"), reload_line
    assert any(m.startswith("XTTS-v2 loaded again in") for m in engine_log.messages)


@pytest.mark.slow
async def test_requests_arriving_together_after_an_unload_load_the_model_once(
    engine_log: EngineLog, unloading: XttsEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    async with serving(settings_for(tmp_path), RecordingEngine(unloading)) as port:
        await engine_log.wait_for_unloads(1)
        audios = await asyncio.gather(
            speak(port, text=ANNOUNCEMENT),
            speak(port, text="The dryer is done too."),
            speak(port, voice=BUILTIN_SPEAKERS[0], text="Dinner is ready."),
        )

    assert all(len(audio) > 0 for audio in audios)
    assert engine_log.reloads == 1


@pytest.mark.slow
async def test_a_cached_announcement_is_answered_while_unloaded_without_loading_the_model(
    engine_log: EngineLog, unloading: XttsEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "oma", SEEDED)
    recording = RecordingEngine(unloading)
    async with serving(settings_for(tmp_path), recording) as port:
        first = await speak(port, "oma")
        # The model is loaded now (on a slow machine it may have unloaded once before): the
        # next unload is the one after this request.
        unloads, reloads = engine_log.unloads, engine_log.reloads
        await engine_log.wait_for_unloads(unloads + 1)
        repeat = await speak(port, "oma")

    assert repeat == first and len(first) > 0
    assert recording.started == [ANNOUNCEMENT], "the repeat never reached the engine"
    assert engine_log.reloads == reloads, "the repeat loaded nothing"
    assert unloading.health().readiness is Readiness.UNLOADED


@pytest.mark.slow
async def test_a_request_arriving_while_the_model_unloads_waits_and_is_spoken(
    engine_log: EngineLog, unloading: XttsEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unloading_started = asyncio.Event()
    finish_unloading = asyncio.Event()
    loop = asyncio.get_running_loop()
    hand_back = engine_module.hand_back_model_memory

    def slow_hand_back(device: str) -> None:  # the model thread, in the middle of the unload
        loop.call_soon_threadsafe(unloading_started.set)
        asyncio.run_coroutine_threadsafe(finish_unloading.wait(), loop).result(timeout=60)
        hand_back(device)

    monkeypatch.setattr(engine_module, "hand_back_model_memory", slow_hand_back)
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    async with serving(settings_for(tmp_path), RecordingEngine(unloading)) as port:
        await asyncio.wait_for(unloading_started.wait(), 60)
        request = asyncio.create_task(speak(port))
        await asyncio.sleep(0.3)  # the request reaches the engine while it unloads
        assert not request.done()
        finish_unloading.set()
        audio = await request

    assert len(audio) > 0
    assert engine_log.unloads == 1 and engine_log.reloads == 1


@pytest.mark.slow
async def test_a_failed_load_after_an_unload_is_an_error_then_tried_again(
    checkpoint_dir: Path, tmp_path: Path, engine_log: EngineLog
) -> None:
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    for file in checkpoint_dir.iterdir():
        (checkpoint / file.name).symlink_to(file)
    engine = make_local_engine(checkpoint, tmp_path / "data", unload_after=IDLE_MINUTES)
    await engine.start()
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    try:
        async with serving(settings_for(tmp_path), RecordingEngine(engine)) as port:
            await engine_log.wait_for_unloads(1)
            (checkpoint / "model.pth").unlink()  # the weights are gone meanwhile
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Synthesize(text=ANNOUNCEMENT).event())
                failed = await read_until(client, "audio-stop", "error")
            health = engine.health()
            (checkpoint / "model.pth").symlink_to(checkpoint_dir / "model.pth")
            audio = await speak(port)
    finally:
        await engine.close()

    assert failed[-1].type == "error"
    assert failed[-1].data["code"] == "synthesis-failed"
    assert "could not be loaded again" in failed[-1].data["text"]
    assert health.readiness is Readiness.FAILED and "the next request tries again" in health.detail
    assert len(audio) > 0 and engine.health().readiness is Readiness.READY
    assert engine_log.reloads == 2


@pytest.mark.slow
async def test_closing_the_engine_while_unloaded_is_clean_and_later_requests_fail_at_once(
    checkpoint_dir: Path, tmp_path: Path, engine_log: EngineLog
) -> None:
    engine = make_local_engine(checkpoint_dir, tmp_path / "data", unload_after=IDLE_MINUTES)
    await engine.start()
    await engine_log.wait_for_unloads(1)

    await asyncio.wait_for(engine.close(), 5)

    voice = engine.builtin_voices()[0]
    with pytest.raises(SpeechError, match="closing"):
        async with asyncio.timeout(5):
            async for _ in engine.synthesize(ANNOUNCEMENT, "en", voice):
                pass
    assert engine_log.reloads == 0
