"""The fallback engine: when the engine cannot start a segment, another one speaks it.

Every test runs a real server on a free port and asks it through a real client (the `wyoming`
package's, Home Assistant's two readers, the HTTP door). The primaries fail for real: the
local fakes of Replicate (`support/fake_providers.py`) down, refusing, throttling, hung or
failing; a local engine whose checkpoint is missing a file; engines that fail as a model out
of memory does. The fallbacks are real too: a second Wyoming server running as its own process
(`support/tone_server.py`, Piper's stand-in, answering at 22050 Hz), the Replicate fake, and
the local engine.
"""

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.engine import Engine, EngineUnavailableError, Readiness
from wyoming_xtts.core.errors import ErrorCode, SpeechError
from wyoming_xtts.core.fallback import FallbackEngine, FallbackNames
from wyoming_xtts.core.settings import Settings, parse_settings
from wyoming_xtts.core.voices import Voice
from wyoming_xtts.engines.cloud.engine import CloudEngine, CloudSettings
from wyoming_xtts.engines.cloud.http import RetryPolicy, Secret
from wyoming_xtts.engines.cloud.replicate import ReplicateProvider
from wyoming_xtts.engines.wyoming_client.engine import (
    WyomingClientEngine,
    WyomingServer,
    WyomingTimeouts,
)
from wyoming_xtts.server import create_engine

from .conftest import RecordingEngine, audio_bytes, event_types, serving
from .support import home_assistant
from .support.clips import write_clip, write_profile
from .support.fake_providers import REPLICATE_TOKEN, REPLICATE_VERSION, FakeReplicate
from .support.http_server import http_serving
from .support.net import free_port, wait_for_port
from .support.scripted_engine import RATE, ScriptedEngine
from .support.tone_server import TONE_SECONDS

REPO = Path(__file__).resolve().parents[1]
SENTENCE = "The front door is open."
TONE_RATE = 22_050
"""The rate the tone server answers at: not the 24000 Hz the server announces."""
QUICK_RETRY = RetryPolicy(attempts=2, first_delay_s=0.05, max_delay_s=0.05)
ALICE = 'languages = ["en"]\n'
FALLBACK_LOGGER = "wyoming_xtts.core.fallback"


# -- the second Wyoming server, as its own process --------------------------------------


@dataclass
class ToneServer:
    """`support/tone_server.py` running as a process."""

    port: int
    log: Path

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def asked(self) -> list[str]:
        """Each request it received since the test began: `voice=NAME text=TEXT`."""
        return self.log.read_text().splitlines() if self.log.exists() else []

    def engine(self, **timeouts: float) -> WyomingClientEngine:
        return WyomingClientEngine(
            WyomingServer("127.0.0.1", self.port), RATE, WyomingTimeouts(**timeouts)
        )


@pytest.fixture(scope="module")
def tone_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToneServer]:
    server = ToneServer(free_port(), tmp_path_factory.mktemp("tone") / "requests.log")
    command = [sys.executable, "-m", "tests.support.tone_server", "--port", str(server.port)]
    command += ["--rate", str(TONE_RATE), "--log", str(server.log)]
    process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(server.port, 30)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def tone(tone_process: ToneServer) -> ToneServer:
    """The tone server, its log of requests emptied for this test."""
    tone_process.log.write_text("")
    return tone_process


# -- engines that fail as a model does --------------------------------------------------


class FailingEngine(ScriptedEngine):
    """Fails every segment before any audio (a model out of memory) while `error` is set,
    else speaks a 300 Hz tone of 0.3 s at 24000 Hz."""

    def __init__(
        self, error: Exception | None, builtin: Sequence[str] = (), identity: str | None = None
    ) -> None:
        self.error = error
        self.asked: list[str] = []
        self._builtin = [Voice(name=name, languages=("en",)) for name in builtin]
        self.cache_identity = identity

    def builtin_voices(self) -> list:
        return self._builtin

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        self.asked.append(text)
        if self.error is not None:
            raise self.error
        yield sine(300.0, 0.3, RATE)


class BreaksOffEngine(ScriptedEngine):
    """Speaks 0.2 s, then fails: the reply has begun."""

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        yield sine(300.0, 0.2, RATE)
        raise SpeechError(ErrorCode.SYNTHESIS_FAILED, "XTTS-v2 failed: CUDA out of memory")


class SlowRateEngine(ScriptedEngine):
    """Speaks a 500 Hz tone of 0.4 s at 16000 Hz, in pieces: another rate than the primary's."""

    sample_rate = 16_000

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        audio = sine(500.0, 0.4, self.sample_rate)
        for start in range(0, audio.size, 1000):
            yield audio[start : start + 1000]


class HeldEngine(ScriptedEngine):
    """Speaks one segment at a time, a 300 Hz tone of 0.3 s, once `release` is set: a busy
    engine whose queue a test can fill."""

    max_concurrency = 1

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked: list[str] = []

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        self.asked.append(text)
        await self.release.wait()
        yield sine(300.0, 0.3, RATE)


OUT_OF_MEMORY = SpeechError(ErrorCode.SYNTHESIS_FAILED, "XTTS-v2 failed: CUDA out of memory")


def sine(pitch: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)


def replicate_engine(base: str, timeout_s: float = 20.0) -> CloudEngine:
    """The Replicate engine at `base` (the fake, or where nothing listens), retrying briefly."""
    provider = ReplicateProvider(
        f"{base}/v1", Secret(REPLICATE_TOKEN), REPLICATE_VERSION, QUICK_RETRY
    )
    return CloudEngine(provider, CloudSettings(timeout_s, 3, 8, False))


def with_fallback(
    primary: Engine, fallback: Engine, names: tuple[str, str], max_waiting: int | None = None
) -> FallbackEngine:
    return FallbackEngine(primary, fallback, FallbackNames(*names), max_waiting)


# -- a server around an engine, and what its clients get --------------------------------


@asynccontextmanager
async def fallback_server(
    engine: Engine, tmp_path: Path, profile: str = ALICE, start: bool = True, **settings: object
) -> AsyncIterator[int]:
    """A live Wyoming server around `engine` (started and closed here unless `start` is
    False) with one profile, `alice`."""
    config = Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data", **settings)  # type: ignore[arg-type]
    write_profile(config.voices_dir, "alice", profile)
    if start:
        await engine.start()
    try:
        async with serving(config, engine) as port:  # type: ignore[arg-type]
            yield port
    finally:
        if start:
            await engine.close()


async def ask(port: int, text: str = SENTENCE, voice: str = "alice") -> list[Event]:
    """A plain `synthesize`, read to `audio-stop` or to the connection closing."""
    events: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())

        async def read() -> None:
            while (event := await client.read_event()) is not None:
                events.append(event)
                if event.type == "audio-stop":
                    return

        await asyncio.wait_for(read(), 60)
    return events


def error_of(events: list[Event]) -> tuple[str, str]:
    errors = [event.data for event in events if event.type == "error"]
    assert len(errors) == 1, event_types(events)
    return errors[0]["code"], errors[0]["text"]


def seconds_of(pcm: bytes) -> float:
    return len(pcm) / 2 / RATE


def pitch_of(pcm: bytes) -> float:
    """The dominant frequency of 16-bit PCM at 24000 Hz."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / RATE)[int(spectrum.argmax())])


def assert_the_tone(pcm: bytes, pitch: float = 440.0) -> None:
    """The tone server's tone, resampled: as long and as high at 24000 Hz as it was made."""
    assert abs(seconds_of(pcm) - TONE_SECONDS) < 0.01, seconds_of(pcm)
    assert abs(pitch_of(pcm) - pitch) < 5, pitch_of(pcm)


# -- each cause, with the Wyoming server as the fallback --------------------------------


@dataclass(frozen=True)
class Cause:
    """A way for Replicate to fail before any audio, and the code it fails with."""

    code: ErrorCode
    fake: dict[str, object]
    down: bool = False
    """Nothing listens where the provider should be."""
    timeout_s: float = 20.0


CAUSES = [
    pytest.param(Cause(ErrorCode.PROVIDER_UNAVAILABLE, {}, down=True), id="down"),
    pytest.param(
        Cause(ErrorCode.PROVIDER_AUTH, {"create_error": (401, "Unauthenticated", "Bad token")}),
        id="401",
    ),
    pytest.param(
        Cause(ErrorCode.PROVIDER_BALANCE, {"create_error": (402, "Payment Required", "None")}),
        id="402",
    ),
    pytest.param(Cause(ErrorCode.PROVIDER_UNAVAILABLE, {"unavailable_creates": 100}), id="5xx"),
    pytest.param(
        Cause(ErrorCode.PROVIDER_TIMEOUT, {"never_finish": True, "hold_s": 0}, timeout_s=1.0),
        id="timeout",
    ),
    pytest.param(
        Cause(ErrorCode.PROVIDER_THROTTLED, {"throttle_creates": 100, "retry_after": "0"}),
        id="throttled",
    ),
]


@pytest.mark.parametrize("cause", CAUSES)
async def test_each_provider_failure_before_audio_is_spoken_by_the_wyoming_server_instead(
    cause: Cause, replicate: FakeReplicate, tone: ToneServer, tmp_path: Path
) -> None:
    for knob, value in cause.fake.items():
        setattr(replicate, knob, value)
    base = f"http://127.0.0.1:{free_port()}" if cause.down else replicate.base
    engine = with_fallback(
        replicate_engine(base, cause.timeout_s), tone.engine(), ("replicate", tone.uri)
    )
    async with fallback_server(engine, tmp_path) as port:
        events = await ask(port)
        health = engine.health()

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert events[0].data["rate"] == RATE
    assert_the_tone(audio_bytes(events))
    assert tone.asked() == [f"voice=- text={SENTENCE}"], "its default voice: none is named"
    assert health.readiness is Readiness.DEGRADED and health.healthy
    assert health.detail.startswith(f"replicate cannot speak ({cause.code.value}: ")
    assert health.detail.endswith(f"1 segment(s) spoken by the fallback engine {tone.uri}")


async def test_the_profiles_fallback_voice_is_the_voice_the_wyoming_server_speaks(
    replicate: FakeReplicate, tone: ToneServer, tmp_path: Path
) -> None:
    replicate.create_error = (401, "Unauthenticated", "Bad token")
    engine = with_fallback(replicate_engine(replicate.base), tone.engine(), ("replicate", "tone"))
    profile = ALICE + 'fallback_voice = "low"\n[styles.calm]\nfallback_voice = "tone"\n'
    write_clip(tmp_path / "voices" / "alice" / "calm" / "evening.wav")
    async with fallback_server(engine, tmp_path, profile) as port:
        plain = await ask(port)
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(
                Event(
                    "synthesize", {"text": SENTENCE, "voice": {"name": "alice", "speaker": "calm"}}
                )
            )
            calm: list[Event] = []
            while (event := await client.read_event()) is not None and event.type != "audio-stop":
                calm.append(event)

    assert_the_tone(audio_bytes(plain), pitch=220.0)
    assert_the_tone(audio_bytes(calm), pitch=440.0)
    assert tone.asked() == [f"voice=low text={SENTENCE}", f"voice=tone text={SENTENCE}"]


# -- what does not fall back ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "voice", "fake", "code"),
    [
        ("***", "alice", {}, ErrorCode.EMPTY_TEXT),
        (SENTENCE, "nobody", {}, ErrorCode.VOICE_NOT_FOUND),
        (SENTENCE, "alice@xx", {}, ErrorCode.LANGUAGE_UNSUPPORTED),
        (
            SENTENCE,
            "alice",
            {"create_error": (422, "Input validation failed", "speaker: bad")},
            ErrorCode.PROVIDER_REJECTED,
        ),
    ],
    ids=["empty-text", "voice-not-found", "language-unsupported", "provider-rejected"],
)
async def test_bad_input_is_the_replys_error_and_never_reaches_the_fallback(
    replicate: FakeReplicate,
    tone: ToneServer,
    tmp_path: Path,
    text: str,
    voice: str,
    fake: dict[str, object],
    code: ErrorCode,
) -> None:
    for knob, value in fake.items():
        setattr(replicate, knob, value)
    engine = with_fallback(replicate_engine(replicate.base), tone.engine(), ("replicate", "tone"))
    async with fallback_server(engine, tmp_path) as port:
        events = await ask(port, text, voice)

    assert error_of(events)[0] == code.value
    assert tone.asked() == []
    assert engine.fallback_segments == 0


async def test_a_failure_after_audio_began_ends_the_reply_as_it_always_did(
    tone: ToneServer, tmp_path: Path
) -> None:
    engine = with_fallback(BreaksOffEngine(), tone.engine(), ("local", "tone"))
    async with fallback_server(engine, tmp_path) as port:
        events = await ask(port)

    assert event_types(events) == ["audio-start", "audio-chunk", "error", "audio-stop"]
    assert error_of(events)[0] == "synthesis-failed"
    # The primary's 0.2 s (its whole chunks: the part of a chunk is dropped), no tone after.
    assert 0.15 < seconds_of(audio_bytes(events)) <= 0.2
    assert tone.asked() == []


async def test_a_voice_the_wyoming_server_does_not_have_is_voice_unusable_with_both_reasons(
    tone: ToneServer, tmp_path: Path
) -> None:
    engine = with_fallback(FailingEngine(OUT_OF_MEMORY), tone.engine(), ("local", tone.uri))
    async with fallback_server(engine, tmp_path, ALICE + 'fallback_voice = "nobody"\n') as port:
        code, text = error_of(await ask(port))

    assert code == "voice-unusable"
    assert "CUDA out of memory" in text
    assert f"The fallback engine {tone.uri} could not speak it either" in text
    assert "No voice named nobody" in text and "fallback_voice of 'alice'" in text


@pytest.mark.parametrize(
    ("wyoming", "code", "within_s"),
    [("hang", "provider-timeout", 1.5), ("closed", "provider-unavailable", 1.0)],
)
async def test_a_wyoming_server_that_never_answers_or_is_not_there_fails_within_its_bound(
    tone: ToneServer, tmp_path: Path, wyoming: str, code: str, within_s: float
) -> None:
    fallback = (
        tone.engine(first_audio_s=0.5)
        if wyoming == "hang"
        else WyomingClientEngine(WyomingServer("127.0.0.1", free_port()))
    )
    engine = with_fallback(FailingEngine(OUT_OF_MEMORY), fallback, ("local", "tone"))
    async with fallback_server(engine, tmp_path, ALICE + 'fallback_voice = "hang"\n') as port:
        started = time.monotonic()
        received, text = error_of(await ask(port))
        waited = time.monotonic() - started

    assert received == code
    assert waited < within_s
    assert "Wyoming server at tcp://127.0.0.1:" in text


# -- both directions with XTTS-v2 on each side ------------------------------------------


async def test_a_local_engine_out_of_memory_is_spoken_by_replicate_with_the_profiles_clips(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    primary = FailingEngine(OUT_OF_MEMORY)
    engine = with_fallback(primary, replicate_engine(replicate.base), ("local", "replicate"))
    async with fallback_server(engine, tmp_path) as port:
        events = await ask(port)

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert abs(seconds_of(audio_bytes(events)) - 0.6) < 0.01, "Replicate's 0.6 s, not 0.3 s"
    assert primary.asked == [SENTENCE]
    (create,) = replicate.calls("POST", "/v1/predictions")
    assert create.json()["input"]["text"] == SENTENCE
    assert create.json()["input"]["speaker"].startswith("data:audio/ogg;base64,"), "its clips"


async def test_an_unexpected_engine_failure_before_audio_falls_back_and_is_logged_once(
    replicate: FakeReplicate, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = with_fallback(
        FailingEngine(RuntimeError("the engine broke")),
        replicate_engine(replicate.base),
        ("local", "replicate"),
    )
    caplog.set_level(logging.INFO, FALLBACK_LOGGER)
    async with fallback_server(engine, tmp_path) as port:
        replies = [await ask(port), await ask(port)]

    assert all(event_types(reply)[-1] == "audio-stop" for reply in replies)
    records = [
        r for r in caplog.records if r.name == FALLBACK_LOGGER and r.levelno >= logging.WARNING
    ]
    assert [r.levelname for r in records] == ["ERROR", "WARNING"], "a traceback, a cause: once"
    assert records[0].exc_info is not None
    assert "RuntimeError: the engine broke" in records[1].getMessage()


async def test_a_built_in_speaker_the_cloud_fallback_cannot_clone_is_voice_unusable(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    primary = FailingEngine(OUT_OF_MEMORY, builtin=["Ana Florence"])
    engine = with_fallback(primary, replicate_engine(replicate.base), ("local", "replicate"))
    async with fallback_server(engine, tmp_path) as port:
        code, text = error_of(await ask(port, voice="Ana Florence"))

    assert code == "voice-unusable"
    assert "built-in speaker" in text and "CUDA out of memory" in text
    assert not replicate.calls("POST", "/v1/predictions")


@pytest.mark.slow
async def test_a_local_engine_whose_checkpoint_is_missing_a_file_leaves_replicate_to_speak(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    broken = tmp_path / "checkpoint"
    broken.mkdir()
    for name in ("config.json", "vocab.json"):  # model.pth is missing
        (broken / name).write_text("{}")
    settings = Settings(
        engine="local",
        model_dir=broken,
        device="cpu",
        fallback_engine="replicate",
        provider_url=f"{replicate.base}/v1",
    )
    engine = create_engine(settings, {"REPLICATE_API_TOKEN": REPLICATE_TOKEN})
    async with fallback_server(engine, tmp_path) as port:
        health = engine.health()
        events = await ask(port)
        after = engine.health()

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert health.readiness is Readiness.DEGRADED and health.healthy
    assert "local cannot start" in health.detail and "lacks model.pth" in health.detail
    assert "0 segment(s)" in health.detail and "1 segment(s)" in after.detail
    (create,) = replicate.calls("POST", "/v1/predictions")
    assert create.json()["input"]["speaker"].startswith("data:audio/ogg;base64,")


@pytest.mark.slow
async def test_replicate_down_is_spoken_by_the_local_engine_when_the_internet_is_down(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    down = replicate_engine(f"http://127.0.0.1:{free_port()}")
    # The session's local engine is already loaded: only the cloud engine is started here.
    fallback = with_fallback(down, engine, ("replicate", "local"))
    await down.start()
    try:
        async with fallback_server(fallback, tmp_path, start=False) as port:
            engine.started.clear()
            engine.voices.clear()  # the session's engine: earlier tests spoke in it too
            events = await ask(port)
    finally:
        await down.close()

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert engine.started == [SENTENCE] and engine.voices == ["alice"]
    assert fallback.health().readiness is Readiness.DEGRADED


# -- what the fallback does not change --------------------------------------------------


async def test_the_voice_list_and_the_program_are_the_primarys(
    tone: ToneServer, tmp_path: Path
) -> None:
    primary = FailingEngine(OUT_OF_MEMORY, builtin=["Ana Florence"])
    engine = with_fallback(primary, tone.engine(), ("local", "tone"))
    async with fallback_server(engine, tmp_path) as port:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await asyncio.wait_for(client.read_event(), 10))

    (program,) = info.tts
    assert primary.info.description in (program.description or "")
    assert {voice.name: voice.languages for voice in program.voices} == {
        "alice": ["en"],
        "Ana Florence": ["en"],
    }, "not the tone server's voices"


async def test_audio_of_another_rate_is_resampled_to_the_rate_announced(tmp_path: Path) -> None:
    engine = with_fallback(FailingEngine(OUT_OF_MEMORY), SlowRateEngine(), ("local", "16 kHz"))
    async with fallback_server(engine, tmp_path) as port:
        events = await ask(port)

    pcm = audio_bytes(events)
    assert events[0].data["rate"] == RATE
    assert abs(seconds_of(pcm) - 0.4) < 0.01
    assert abs(pitch_of(pcm) - 500.0) < 5


async def test_the_fallbacks_audio_is_never_kept_in_the_audio_cache_as_the_primarys(
    tone: ToneServer, tmp_path: Path
) -> None:
    primary = FailingEngine(OUT_OF_MEMORY, identity="scripted-1")
    engine = with_fallback(primary, tone.engine(), ("local", "tone"))
    seeded = ALICE + "[synthesis]\nseed = 7\n"
    async with fallback_server(engine, tmp_path, seeded) as port:
        by_fallback = audio_bytes(await ask(port))
        primary.error = None
        by_primary = audio_bytes(await ask(port))
        replayed = audio_bytes(await ask(port))

    assert_the_tone(by_fallback)
    assert abs(seconds_of(by_primary) - 0.3) < 0.01, "the primary spoke it: not the tone again"
    assert replayed == by_primary
    assert primary.asked == [SENTENCE, SENTENCE], "the third came from the cache"


async def test_a_cause_is_logged_once_until_the_primary_speaks_again_and_replies_are_counted(
    replicate: FakeReplicate, tone: ToneServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replicate.create_error = (503, "Service Unavailable", "Down for maintenance")
    engine = with_fallback(replicate_engine(replicate.base), tone.engine(), ("replicate", "tone"))
    caplog.set_level(logging.INFO, FALLBACK_LOGGER)
    async with fallback_server(engine, tmp_path) as port:
        for _ in range(3):
            await ask(port)
        during = engine.health()
        replicate.create_error = None
        await ask(port)
        after = engine.health()
        replicate.create_error = (503, "Service Unavailable", "Down again")
        await ask(port)

    messages = [r.getMessage() for r in caplog.records if r.name == FALLBACK_LOGGER]
    causes = [m for m in messages if "cannot speak (provider-unavailable" in m]
    assert len(causes) == 2, messages
    assert "1 segment(s) spoken by the fallback since the start" in causes[0]
    assert "4 segment(s) spoken by the fallback since the start" in causes[1]
    assert any(
        "replicate speaks again" in m and "spoke 3 segment(s) meanwhile" in m for m in messages
    )
    assert during.readiness is Readiness.DEGRADED
    assert "Down for maintenance" in during.detail and "3 segment(s) spoken" in during.detail
    assert after.readiness is Readiness.READY
    assert engine.fallback_segments == 4


# -- a busy engine: its queue full (--max-waiting) ----------------------------------------

GARAGE = "The garage door is open."
WASHER = "The washing machine is done."


async def until(condition: Callable[[], bool]) -> None:
    """Waits (up to 10 s) for something the server does in the background."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_busy_engines_segment_past_max_waiting_is_spoken_by_the_fallback_at_once(
    tone: ToneServer, tmp_path: Path
) -> None:
    held = HeldEngine()
    engine = with_fallback(held, tone.engine(), ("local", "tone"), max_waiting=1)
    async with fallback_server(engine, tmp_path) as port:
        speaking = asyncio.create_task(ask(port, SENTENCE))
        await until(lambda: held.asked == [SENTENCE])
        waiting = asyncio.create_task(ask(port, GARAGE))
        await asyncio.sleep(0.5)  # the garage is queued for the engine's one place
        overflow = await ask(port, WASHER)  # spoken while the engine still holds the first
        busy = engine.health()
        held.release.set()
        first, second = await speaking, await waiting

    assert_the_tone(audio_bytes(overflow))
    assert tone.asked() == [f"voice=- text={WASHER}"]
    assert held.asked == [SENTENCE, GARAGE], "the one queued waited its turn at the engine"
    for reply in (first, second):
        assert event_types(reply) == ["audio-start", "audio-chunk", "audio-stop"]
        assert abs(pitch_of(audio_bytes(reply)) - 300.0) < 5
    assert busy.readiness is Readiness.DEGRADED
    assert busy.detail.startswith("local cannot speak (engine-busy: local is busy: it is ")
    assert "with 1 more waiting (--max-waiting 1)" in busy.detail


async def test_a_queue_kept_full_logs_being_busy_once_until_the_engine_keeps_up_again(
    tone: ToneServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    held = HeldEngine()
    engine = with_fallback(held, tone.engine(), ("local", "tone"), max_waiting=0)
    caplog.set_level(logging.INFO, FALLBACK_LOGGER)
    async with fallback_server(engine, tmp_path) as port:
        speaking = asyncio.create_task(ask(port, SENTENCE))
        await until(lambda: held.asked == [SENTENCE])
        for _ in range(3):
            assert_the_tone(audio_bytes(await ask(port, WASHER)))
        held.release.set()
        await speaking
        await ask(port, GARAGE)  # reaches the engine with nothing waiting: it keeps up
        after = engine.health()

    messages = [r.getMessage() for r in caplog.records if r.name == FALLBACK_LOGGER]
    busy = [m for m in messages if "cannot speak (engine-busy" in m]
    assert len(busy) == 1, messages
    assert "the fallback engine tone speaks instead" in busy[0]
    assert any("local speaks again" in m and "spoke 3 segment(s) meanwhile" in m for m in messages)
    assert after.readiness is Readiness.READY
    assert held.asked == [SENTENCE, GARAGE]


@pytest.mark.parametrize("path", ["plain", "streaming"])
async def test_without_a_fallback_a_full_queue_is_engine_busy_where_home_assistant_listens(
    path: str, tmp_path: Path
) -> None:
    held = HeldEngine()
    async with fallback_server(held, tmp_path, max_waiting=0) as port:
        speaking = asyncio.create_task(ask(port, SENTENCE))
        await until(lambda: held.asked == [SENTENCE])
        if path == "plain":
            reply = await home_assistant.plain(port, home_assistant.plain_request(GARAGE, "alice"))
        else:
            request = home_assistant.streaming_request(["The garage ", "door is open."], "alice")
            reply = await home_assistant.streaming(port, request)
        held.release.set()
        first = await speaking
        later = await ask(port, WASHER)

    assert [error["code"] for error in reply.errors] == ["engine-busy"]
    assert "(--max-waiting 0)" in reply.errors[0]["text"]
    assert reply.wait_after_error_s is not None and reply.wait_after_error_s < 1.0
    assert reply.ended_by == ("closed" if path == "plain" else "synthesize-stopped")
    assert event_types(first)[-1] == "audio-stop" and event_types(later)[-1] == "audio-stop"
    assert held.asked == [SENTENCE, WASHER], "refused without reaching the engine"


async def test_the_http_door_answers_a_full_queue_503_engine_busy(tmp_path: Path) -> None:
    held = HeldEngine()
    body = {"model": "tts-1", "voice": "alice", "input": GARAGE, "response_format": "pcm"}
    async with (
        http_serving(held, tmp_path, max_waiting=0) as server,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=server.base_url, timeout=60) as http,
    ):
        speaking = asyncio.create_task(http.post("v1/audio/speech", json=body))
        await until(lambda: held.asked == [GARAGE])
        refused = await http.post("v1/audio/speech", json=body | {"input": WASHER})
        held.release.set()
        spoken = await speaking

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "engine-busy"
    assert spoken.status_code == 200 and spoken.content


# -- Home Assistant's readers and the HTTP door -----------------------------------------


@pytest.mark.parametrize("path", ["plain", "streaming"])
async def test_home_assistants_readers_hear_the_fallback_and_end_where_they_listen(
    path: str, tone: ToneServer, tmp_path: Path
) -> None:
    engine = with_fallback(FailingEngine(OUT_OF_MEMORY), tone.engine(), ("local", "tone"))
    async with fallback_server(engine, tmp_path) as port:
        if path == "plain":
            reply = await home_assistant.plain(
                port, home_assistant.plain_request(SENTENCE, "alice")
            )
        else:
            request = home_assistant.streaming_request(["The front ", "door is open."], "alice")
            reply = await home_assistant.streaming(port, request)

    assert reply.ended_by == ("audio-stop" if path == "plain" else "synthesize-stopped")
    assert reply.errors == []
    assert reply.audio is not None
    assert_the_tone(reply.audio)


@pytest.mark.parametrize("path", ["plain", "streaming"])
async def test_home_assistants_readers_end_within_a_second_when_the_fallback_fails_too(
    path: str, tone: ToneServer, tmp_path: Path
) -> None:
    engine = with_fallback(FailingEngine(OUT_OF_MEMORY), tone.engine(), ("local", "tone"))
    async with fallback_server(engine, tmp_path, ALICE + 'fallback_voice = "nobody"\n') as port:
        if path == "plain":
            reply = await home_assistant.plain(
                port, home_assistant.plain_request(SENTENCE, "alice")
            )
        else:
            request = home_assistant.streaming_request(["The front ", "door is open."], "alice")
            reply = await home_assistant.streaming(port, request)

    assert [error["code"] for error in reply.errors] == ["voice-unusable"]
    assert reply.wait_after_error_s is not None and reply.wait_after_error_s < 1.0
    assert reply.ended_by == ("closed" if path == "plain" else "synthesize-stopped")
    assert not reply.audio


async def test_the_http_door_speaks_through_the_fallback(tone: ToneServer, tmp_path: Path) -> None:
    engine = with_fallback(FailingEngine(OUT_OF_MEMORY), tone.engine(), ("local", "tone"))
    await engine.start()
    body = {"model": "tts-1", "voice": "alice", "input": SENTENCE, "response_format": "pcm"}
    async with (
        http_serving(engine, tmp_path) as server,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=server.base_url, timeout=60) as http,
    ):
        response = await http.post("v1/audio/speech", json=body)

    assert response.status_code == 200
    assert_the_tone(response.content)
    assert tone.asked() == [f"voice=- text={SENTENCE}"]


# -- the server as a process, and its options -------------------------------------------


@pytest.mark.slow
async def test_the_server_process_speaks_through_a_wyoming_server_process_when_replicate_refuses(
    replicate: FakeReplicate, tone: ToneServer, tmp_path: Path
) -> None:
    replicate.create_error = (402, "Payment Required", "You have insufficient credit")
    write_profile(tmp_path / "voices", "alice", ALICE)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "wyoming_xtts", "--engine", "replicate"]
        + ["--provider-url", f"{replicate.base}/v1", "--fallback-engine", tone.uri]
        + ["--voices-dir", str(tmp_path / "voices"), "--data-dir", str(tmp_path / "data")]
        + ["--uri", f"tcp://127.0.0.1:{port}"],
        env={**os.environ, "REPLICATE_API_TOKEN": REPLICATE_TOKEN},
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await asyncio.to_thread(wait_for_port, port, 60)
        replies = [await ask(port), await ask(port)]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)

    for reply in replies:
        assert event_types(reply) == ["audio-start", "audio-chunk", "audio-stop"]
        assert_the_tone(audio_bytes(reply))
    assert stderr.count("replicate cannot speak (provider-balance") == 1, stderr
    assert REPLICATE_TOKEN not in stderr


@pytest.mark.parametrize(
    "value", ["replicate", "pixazo", "tcp://192.168.1.20:10200", "tcp://piper.local:10200"]
)
def test_a_fallback_engine_is_an_engine_or_a_wyoming_servers_address(value: str) -> None:
    settings = parse_settings(["--fallback-engine", value], {})

    assert settings.fallback_engine == value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fallback-engine", "piper"], "must be one of local, replicate, pixazo or"),
        (["--fallback-engine", "tcp://:10200"], "must be one of"),
        (["--fallback-engine", "tcp://host:99999"], "must be one of"),
        (["--fallback-engine", "local"], "must be another engine than --engine"),
        (
            ["--uri", "tcp://0.0.0.0:10200", "--fallback-engine", "tcp://127.0.0.1:10200"],
            "is this server itself",
        ),
    ],
)
def test_a_fallback_engine_that_cannot_work_is_refused_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv, {})

    assert message in capsys.readouterr().err


def test_the_variable_sets_it_and_empty_means_none() -> None:
    assert parse_settings([], {"WYOMING_XTTS_FALLBACK_ENGINE": "replicate"}).fallback_engine == (
        "replicate"
    )
    assert parse_settings([], {"WYOMING_XTTS_FALLBACK_ENGINE": ""}).fallback_engine is None


async def test_both_engines_failing_to_start_is_the_servers_failure_with_both_reasons() -> None:
    class Unloadable(FailingEngine):
        def __init__(self, reason: str) -> None:
            super().__init__(None)
            self.reason = reason

        async def start(self) -> None:
            raise EngineUnavailableError(self.reason)

    engine = with_fallback(Unloadable("No model."), Unloadable("No key."), ("local", "replicate"))

    with pytest.raises(EngineUnavailableError) as caught:
        await engine.start()

    assert "No model." in str(caught.value) and "No key." in str(caught.value)


async def test_a_fallback_that_cannot_start_leaves_the_primary_to_speak_alone(
    tmp_path: Path,
) -> None:
    class Unloadable(FailingEngine):
        async def start(self) -> None:
            raise EngineUnavailableError("No key.")

    engine = with_fallback(FailingEngine(None), Unloadable(None), ("local", "replicate"))
    async with fallback_server(engine, tmp_path) as port:
        events = await ask(port)
        health = engine.health()

    assert abs(seconds_of(audio_bytes(events)) - 0.3) < 0.01
    assert health.readiness is Readiness.READY
    assert "The fallback engine replicate cannot start: No key." in health.detail
