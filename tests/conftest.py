"""Shared fixtures: a random-initialised XTTS checkpoint, one loaded engine, live servers."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import pytest_asyncio
from wyoming.client import AsyncClient, AsyncTcpClient
from wyoming.event import Event
from wyoming.server import AsyncTcpServer

from wyoming_xtts.core.engine import EngineHealth, EngineInfo
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.core.voices import Voice
from wyoming_xtts.doors.wyoming.server import handler_factory
from wyoming_xtts.server import build_core, create_engine
from wyoming_xtts.text.language_detection import LanguageDetector

from .support.clips import write_profile
from .support.fake_providers import FakePixazo, FakeReplicate
from .support.logs import listening
from .support.net import free_port, wait_for_port  # noqa: F401 - shared with the test modules
from .support.xtts_checkpoint import build_checkpoint

if TYPE_CHECKING:
    from wyoming_xtts.engines.local.engine import XttsEngine

BUILTIN_SPEAKERS = ("Ana Florence", "Claribel Dervla")
DETECTOR = LanguageDetector()
"""One language model for every test server (it takes half a second to load)."""
RESPONSE_TIMEOUT = 120.0


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint in the release layout; generation is capped at 21 audio tokens."""
    return build_checkpoint(
        tmp_path_factory.mktemp("xtts") / "checkpoint", speakers=BUILTIN_SPEAKERS
    )


@pytest.fixture
def replicate() -> Iterator[FakeReplicate]:
    """A stand-in for Replicate's API on 127.0.0.1 (fake_providers.py)."""
    fake = FakeReplicate()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def pixazo() -> Iterator[FakePixazo]:
    """A stand-in for the Pixazo gateway on 127.0.0.1 (fake_providers.py)."""
    fake = FakePixazo()
    fake.start()
    yield fake
    fake.stop()


@dataclass
class RecordingEngine:
    """Wraps the real engine and records what the service asked of it."""

    inner: object
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    closed_early: list[str] = field(default_factory=list)
    spoken_in: list[str] = field(default_factory=list)
    voices: list[str] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)

    @property
    def info(self) -> EngineInfo:
        return self.inner.info  # type: ignore[attr-defined]

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate  # type: ignore[attr-defined]

    @property
    def languages(self) -> Sequence[str]:
        return self.inner.languages  # type: ignore[attr-defined]

    @property
    def max_concurrency(self) -> int:
        return self.inner.max_concurrency  # type: ignore[attr-defined]

    def health(self) -> EngineHealth:
        return self.inner.health()  # type: ignore[attr-defined, no-any-return]

    def spoke_itself(self, audio: AsyncIterator[np.ndarray]) -> bool:
        return True  # the engines it wraps always speak for themselves

    @property
    def segments_in_flight(self) -> int:
        return self.inner.segments_in_flight  # type: ignore[attr-defined]

    @property
    def cache_identity(self) -> str | None:
        return self.inner.cache_identity  # type: ignore[attr-defined]

    async def start(self) -> None:
        await self.inner.start()  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self.inner.close()  # type: ignore[attr-defined]

    def builtin_voices(self) -> Sequence[Voice]:
        return self.inner.builtin_voices()  # type: ignore[attr-defined]

    async def synthesize(self, text: str, language: str, voice: Voice) -> AsyncIterator[np.ndarray]:
        self.started.append(text)
        self.spoken_in.append(language)
        self.voices.append(voice.key)
        self.speeds.append(voice.generation.speed)
        completed = False
        try:
            async for audio in self.inner.synthesize(text, language, voice):  # type: ignore[attr-defined]
                yield audio
            completed = True
        finally:
            (self.finished if completed else self.closed_early).append(text)


@pytest_asyncio.fixture(scope="session")
async def engine(
    checkpoint_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RecordingEngine]:
    """One loaded engine for the whole session, through the same code path as production."""
    settings = Settings(
        model_dir=checkpoint_dir, data_dir=tmp_path_factory.mktemp("data"), device="cpu"
    )
    recording = RecordingEngine(create_engine(settings))
    await recording.start()
    yield recording
    await recording.close()


@dataclass
class LiveServer:
    """A real Wyoming TCP server on 127.0.0.1 around the shared engine."""

    port: int
    voices_dir: Path
    engine: RecordingEngine

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port)


@pytest_asyncio.fixture
async def live_server(engine: RecordingEngine, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A server with one usable profile, `alice`, in a fresh voices directory."""
    voices_dir = tmp_path / "voices"
    write_profile(voices_dir, "alice", 'description = "Alice"\nlanguages = ["en"]\n')
    settings = Settings(voices_dir=voices_dir, data_dir=tmp_path / "data", max_text_chars=2000)
    async with serving(settings, engine) as port:
        for record in (engine.started, engine.finished, engine.closed_early, engine.spoken_in):
            record.clear()
        engine.voices.clear()
        engine.speeds.clear()
        yield LiveServer(port=port, voices_dir=voices_dir, engine=engine)


class serving:
    """`async with serving(settings, engine) as port`: a live server for the block's duration."""

    def __init__(self, settings: Settings, engine: RecordingEngine) -> None:
        self._port = free_port()
        self._settings = replace(settings, uri=f"tcp://127.0.0.1:{self._port}")
        self._engine = engine
        self._server: AsyncTcpServer | None = None

    async def __aenter__(self) -> int:
        core = build_core(self._settings, self._engine, DETECTOR)  # type: ignore[arg-type]
        self._server = AsyncTcpServer("127.0.0.1", self._port)
        await self._server.start(handler_factory(core, self._settings))
        return self._port

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        await self._server.stop()


async def read_until(client: AsyncClient, *last_types: str) -> list[Event]:
    """Every event up to and including the first of `last_types` (fails on close or timeout)."""
    events: list[Event] = []

    async def collect() -> None:
        while True:
            event = await client.read_event()
            assert event is not None, f"connection closed after {[e.type for e in events]}"
            events.append(event)
            if event.type in last_types:
                return

    await asyncio.wait_for(collect(), RESPONSE_TIMEOUT)
    return events


def event_types(events: list[Event]) -> list[str]:
    """Event types with consecutive audio chunks folded into one entry."""
    folded: list[str] = []
    for event in events:
        if event.type == "audio-chunk" and folded and folded[-1] == "audio-chunk":
            continue
        folded.append(event.type)
    return folded


def audio_bytes(events: list[Event]) -> bytes:
    return b"".join(event.payload or b"" for event in events if event.type == "audio-chunk")


def make_local_engine(checkpoint: Path, data_dir: Path, **options: Any) -> "XttsEngine":
    """A local engine on `checkpoint` (CPU, English, built-in speakers on); `options` override
    any other `LocalEngineConfig` field."""
    from wyoming_xtts.engines.local.engine import LocalEngineConfig, XttsEngine
    from wyoming_xtts.engines.local.xtts_stream import ChunkSchedule

    defaults = Settings()
    config = LocalEngineConfig(
        model_dir=checkpoint,
        data_dir=data_dir,
        device="cpu",
        default_language="en",
        licence_accepted=False,
        builtin_speakers=True,
        precision=defaults.precision,
        deepspeed=defaults.deepspeed,
        gpt_runtime=defaults.gpt_runtime,
        decoder_precision=defaults.decoder_precision,
        batch_sentences=defaults.batch_sentences,
        schedule=ChunkSchedule(first_tokens=defaults.first_chunk_tokens),
        unload_after=defaults.unload_after,
    )
    return XttsEngine(replace(config, **options))


class Computations(logging.Handler):
    """The voices whose conditioning the local engine computed (its log says so each time)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.voices: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Computing conditioning latents"):
            self.voices.append(record.getMessage().rsplit(" ", 1)[-1])


@pytest.fixture
def conditioning_computations() -> Iterator[Computations]:
    """Counts conditioning computations, not found in either of the engine's caches."""
    counter = Computations()
    with listening("wyoming_xtts.engines.local.conditioning", counter):
        yield counter
