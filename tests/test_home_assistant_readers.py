"""Every error the server can answer a request with ends Home Assistant's wait within 1 s.

Home Assistant ignores `error` events (see `home_assistant.py`), so each failure must also end
the response where its reader is listening: the plain path gets the connection closed (never
an empty WAV to cache), the streaming path `synthesize-stopped`. Each error code is caused for
real, through a server proxying to a local stand-in for Replicate (and a failing engine for
`synthesis-failed`), and read by both of Home Assistant's readers.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe

from wyoming_xtts.core.errors import ErrorCode
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.core.voices import Voice
from wyoming_xtts.server import create_cloud_engine

from .conftest import read_until, serving
from .support import home_assistant
from .support.clips import write_profile
from .support.fake_providers import REPLICATE_TOKEN, FakeReplicate
from .support.scripted_engine import ScriptedEngine

SENTENCE = "The washing machine is done."
HUGE = "x" * 300_000  # past the 256 KiB an event's data may hold
NOT_CONNECTION_LEVEL = {
    # Connection-level codes that a request cannot cause: they close the connection anyway.
    ErrorCode.IDLE,
    ErrorCode.TOO_MANY_REQUESTS,
}
READ_IN_TEST_SHUTDOWN = {
    # Caused by a signal to a server process: tests/test_shutdown.py reads it through both
    # of Home Assistant's readers.
    ErrorCode.SHUTTING_DOWN,
    # Caused by filling a held engine's queue: tests/test_fallback.py reads it through both
    # of Home Assistant's readers (`…a_full_queue_is_engine_busy_where_home_assistant_listens`).
    ErrorCode.ENGINE_BUSY,
}


@dataclass(frozen=True)
class Case:
    """One error code and how to cause it."""

    code: ErrorCode
    text: str = SENTENCE
    voice: str | None = "alice"
    fake: dict[str, object] = field(default_factory=dict)
    """FakeReplicate knobs."""
    settings: dict[str, object] = field(default_factory=dict)
    failing_engine: bool = False
    plain_request: Sequence[Event] | None = None
    """What the plain path sends, when not `text` and `voice`."""
    streaming_request: Sequence[Event] | None = None
    occupied: bool = False
    """Another client holds the only connection the server allows."""


ANGRY_ALICE = {"name": "alice", "speaker": "angry"}
CASES = [
    Case(ErrorCode.VOICE_NOT_FOUND, voice="nobody"),
    Case(ErrorCode.VOICE_UNUSABLE, voice="broken"),
    Case(
        ErrorCode.SPEAKER_NOT_FOUND,
        plain_request=[Event("synthesize", {"text": SENTENCE, "voice": ANGRY_ALICE})],
        streaming_request=[
            Event("synthesize-start", {"voice": ANGRY_ALICE}),
            Event("synthesize-chunk", {"text": SENTENCE}),
            Event("synthesize-stop", {}),
        ],
    ),
    Case(ErrorCode.EMPTY_TEXT, text="***"),
    Case(ErrorCode.TEXT_TOO_LONG, text="word " * 100, settings={"max_text_chars": 200}),
    Case(ErrorCode.LANGUAGE_UNSUPPORTED, voice="alice@xx"),
    Case(
        ErrorCode.BAD_REQUEST,
        plain_request=[Event("synthesize", {"text": 5})],
        streaming_request=[
            Event("synthesize-start", {}),
            Event("synthesize-chunk", {"text": 5}),
            Event("synthesize-stop", {}),
        ],
    ),
    Case(
        ErrorCode.TOO_LARGE,
        plain_request=home_assistant.plain_request(HUGE, "alice"),
        streaming_request=home_assistant.streaming_request([SENTENCE, HUGE], "alice"),
    ),
    Case(ErrorCode.TOO_MANY_CONNECTIONS, settings={"max_connections": 1}, occupied=True),
    Case(ErrorCode.SYNTHESIS_FAILED, failing_engine=True),
    Case(ErrorCode.PROVIDER_AUTH, fake={"create_error": (401, "Unauthenticated", "Bad token")}),
    Case(ErrorCode.PROVIDER_BALANCE, fake={"create_error": (402, "Payment Required", "No credit")}),
    Case(ErrorCode.PROVIDER_REJECTED, fake={"create_error": (422, "Invalid", "speaker: bad")}),
    Case(ErrorCode.PROVIDER_THROTTLED, fake={"throttle_creates": 1000, "retry_after": "0"}),
    Case(ErrorCode.PROVIDER_FAILED, fake={"prediction_error": "CUDA out of memory"}),
    Case(ErrorCode.PROVIDER_UNAVAILABLE, fake={"unavailable_creates": 1000}),
    Case(
        ErrorCode.PROVIDER_TIMEOUT,
        fake={"never_finish": True, "hold_s": 0},
        settings={"provider_timeout": 1.0},
    ),
    Case(ErrorCode.PROVIDER_BAD_AUDIO, fake={"output": "garbage"}),
]


def test_every_error_code_a_request_can_meet_is_covered() -> None:
    covered = {case.code for case in CASES}

    assert covered | NOT_CONNECTION_LEVEL | READ_IN_TEST_SHUTDOWN == set(ErrorCode)


FAST_CASES = {ErrorCode.VOICE_NOT_FOUND, ErrorCode.SYNTHESIS_FAILED, ErrorCode.PROVIDER_AUTH}
"""A request error, an engine error and a provider error stay in the fast tier; every case
stops a Replicate stand-in (about 0.5 s), so the other codes are marked slow."""


@pytest.mark.parametrize("path", ["plain", "streaming"])
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case, id=case.code.value, marks=() if case.code in FAST_CASES else pytest.mark.slow
        )
        for case in CASES
    ],
)
async def test_home_assistant_stops_waiting_within_a_second_of_any_error(
    case: Case, path: str, tmp_path: Path
) -> None:
    async with _server(case, tmp_path) as port:
        async with _occupied(port, case.occupied):
            if path == "plain":
                request = case.plain_request or home_assistant.plain_request(case.text, case.voice)
                reply = await home_assistant.plain(port, request)
            else:
                request = case.streaming_request or home_assistant.streaming_request(
                    [case.text[:10], case.text[10:]], case.voice
                )
                reply = await home_assistant.streaming(port, request)
        served_after = await _describes(port)

    assert [error["code"] for error in reply.errors] == [case.code.value]
    assert reply.wait_after_error_s is not None and reply.wait_after_error_s < 1.0
    if path == "plain":
        # The connection closing ends the plain reader with no audio: Home Assistant reports
        # the failure instead of caching an empty WAV.
        assert (reply.ended_by, reply.audio) == ("closed", None)
    else:
        expected_end = "closed" if case.code in _CLOSES_A_STREAM else "synthesize-stopped"
        assert reply.ended_by == expected_end
        assert not reply.audio
    assert served_after, "the server keeps serving the next client"


_CLOSES_A_STREAM = {ErrorCode.TOO_MANY_CONNECTIONS}
"""The connection was refused before the stream began."""


class _FailingEngine(ScriptedEngine):
    """Raises from inside synthesis, as a broken engine would."""

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        raise RuntimeError("the engine broke")
        yield np.zeros(0, dtype=np.float32)  # pragma: no cover - makes this a generator


@asynccontextmanager
async def _server(case: Case, tmp_path: Path) -> AsyncIterator[int]:
    replicate = FakeReplicate().start()
    for knob, value in case.fake.items():
        setattr(replicate, knob, value)
    settings = Settings(
        engine="replicate",
        provider_url=f"{replicate.base}/v1",
        voices_dir=tmp_path / "voices",
        data_dir=tmp_path / "data",
    )
    settings = replace(settings, **case.settings)  # type: ignore[arg-type]
    write_profile(settings.voices_dir, "alice", 'languages = ["en"]\n')
    write_profile(settings.voices_dir, "broken", 'speed = "fast"\n')
    engine = (
        _FailingEngine()
        if case.failing_engine
        else create_cloud_engine(settings, {"REPLICATE_API_TOKEN": REPLICATE_TOKEN})
    )
    await engine.start()
    try:
        async with serving(settings, engine) as port:  # type: ignore[arg-type]
            yield port
    finally:
        await engine.close()
        replicate.stop()


@asynccontextmanager
async def _occupied(port: int, occupied: bool) -> AsyncIterator[None]:
    if not occupied:
        yield
        return
    async with AsyncTcpClient("127.0.0.1", port) as holder:
        await _answered(holder)
        yield


async def _describes(port: int) -> bool:
    """Whether a new client is served (retried briefly: a closed holder is let go async)."""
    for _ in range(50):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            event = await asyncio.wait_for(client.read_event(), 10)
            if event is not None and event.type == "info":
                return True
        await asyncio.sleep(0.1)
    return False


async def _answered(client: AsyncTcpClient) -> bool:
    await client.write_event(Describe().event())
    return (await read_until(client, "info"))[-1].type == "info"
