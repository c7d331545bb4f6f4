"""The OpenAI-compatible speech endpoint, driven by the real `openai` client and by plain HTTP."""

import asyncio
import io
import json
import wave
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import httpx
import numpy as np
import openai
import pytest
import pytest_asyncio
import soundfile
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.errors import ErrorCode
from wyoming_xtts.doors.http.encoding import FORMATS
from wyoming_xtts.doors.http.problems import HttpCode, HttpProblem

from .conftest import RecordingEngine, audio_bytes, read_until
from .support.clips import write_profile
from .support.http_server import HttpUnderTest, http_serving
from .support.scripted_engine import RATE, ScriptedEngine


@dataclass
class FaultyEngine(ScriptedEngine):
    """Fails with `fault` on the texts it is told to: after one piece of audio, or before."""

    fault: BaseException
    failing: set[str] = field(default_factory=set)
    first_piece: bool = True

    async def synthesize(
        self, text: str, language: str, voice: object
    ) -> AsyncGenerator[np.ndarray, None]:
        if self.first_piece or text not in self.failing:
            yield np.full(RATE // 10, 0.1, np.float32)
        if text in self.failing:
            raise self.fault
        yield np.full(RATE // 10, 0.1, np.float32)


THREE_SENTENCES = "The washing machine is done. The towels go on the rack. Dinner is at seven."


@pytest_asyncio.fixture
async def server(engine: RecordingEngine, tmp_path: Path) -> AsyncIterator[HttpUnderTest]:
    async with http_serving(engine, tmp_path) as running:
        for record in (engine.started, engine.finished, engine.closed_early):
            record.clear()
        yield running


def client_for(server: HttpUnderTest, token: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url + "v1", api_key=token, max_retries=0)


def decoded_seconds(data: bytes, fmt: str) -> tuple[float, int]:
    """Seconds of audio and the rate they decode at, read back by FFmpeg's decoders."""
    if fmt == "pcm":
        return len(data) / 2 / 24_000, 24_000
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(audio=0))
    samples = sum(frame.samples for frame in frames)
    return samples / frames[0].sample_rate, frames[0].sample_rate


@pytest.mark.parametrize(
    "fmt",  # mp3 (the OpenAI default) stays fast; each format takes ~2 s
    [pytest.param(fmt, marks=() if fmt == "mp3" else pytest.mark.slow) for fmt in FORMATS],
)
async def test_the_openai_client_gets_each_format_streamed_and_it_decodes_to_the_speech(
    server: HttpUnderTest, engine: RecordingEngine, fmt: str
) -> None:
    client = client_for(server)
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alice",
        input=THREE_SENTENCES,
        response_format=fmt,  # type: ignore[arg-type]
    ) as response:
        assert response.headers["content-type"] == FORMATS[fmt].content_type
        pieces = [piece async for piece in response.iter_bytes()]
    data = b"".join(pieces)
    seconds, rate = decoded_seconds(data, fmt)
    # Three sentences of the tiny test model plus two 0.25 s pauses between them.
    assert seconds > 0.5
    assert rate in (24_000, 48_000)
    assert len(engine.finished) == 3
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24_000, 1, 2)
        samples, rate = soundfile.read(io.BytesIO(data))
        assert rate == 24_000 and np.abs(samples).max() > 0.0


@pytest.mark.slow
async def test_a_seeded_voice_sounds_byte_for_byte_the_same_over_http_as_over_wyoming(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with http_serving(engine, tmp_path, audio_cache_mb=0) as server:
        write_profile(server.voices_dir, "seeded", 'languages = ["en"]\n[synthesis]\nseed = 3\n')
        response = await client_for(server).audio.speech.create(
            model="xtts-v2", voice="seeded", input=THREE_SENTENCES, response_format="pcm"
        )
        async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as wyoming:
            await wyoming.write_event(
                Synthesize(text=THREE_SENTENCES, voice=SynthesizeVoice(name="seeded")).event()
            )
            over_wyoming = audio_bytes(await read_until(wyoming, "audio-stop"))
    assert len(over_wyoming) > 24_000
    assert response.content == over_wyoming


@pytest.mark.slow
async def test_the_first_audio_arrives_before_the_last_sentence_is_spoken(
    server: HttpUnderTest, engine: RecordingEngine
) -> None:
    body = {"model": "tts-1", "voice": "alice", "input": THREE_SENTENCES, "response_format": "pcm"}
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=120) as http,
        http.stream("POST", "v1/audio/speech", json=body) as response,
    ):
        assert response.status_code == 200
        pieces = response.aiter_raw()
        first = await anext(pieces)
        finished_at_first_bytes = list(engine.finished)
        rest = b"".join([piece async for piece in pieces])
    assert first
    assert len(finished_at_first_bytes) < 3
    assert len(engine.finished) == 3 and rest


async def test_models_and_voices_list_what_a_request_may_name(server: HttpUnderTest) -> None:
    client = client_for(server)
    models = [model.id async for model in client.models.list()]
    assert {"tts-1", "tts-1-hd", "xtts-v2"} <= set(models)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        voices = (await http.get("v1/audio/voices")).json()["voices"]
    names = [voice["id"] for voice in voices]
    assert names[0] == "alice"
    assert "Ana Florence" in names
    assert voices[0]["languages"] == ["en"] and voices[0]["builtin"] is False


async def test_a_built_in_speaker_and_a_voice_at_a_fixed_language_can_be_asked_for(
    server: HttpUnderTest, engine: RecordingEngine
) -> None:
    client = client_for(server)
    for voice in ("Ana Florence", "alice@de"):
        response = await client.audio.speech.create(
            model="tts-1", voice=voice, input="Guten Tag.", response_format="wav"
        )
        assert decoded_seconds(response.content, "wav")[0] > 0.1
    assert engine.spoken_in[-1] == "de"


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"voice": "nobody", "input": "Hi."}, 404, "voice-not-found", "voice"),
        ({"voice": "alice", "input": "  "}, 400, "empty-text", None),
        ({"voice": "alice", "input": "x" * 2001}, 400, "text-too-long", "input"),
        (
            {"voice": "alice", "input": "Hi.", "response_format": "ogg"},
            400,
            "bad-request",
            "response_format",
        ),
        ({"voice": "alice", "input": "Hi.", "speed": 4.0}, 400, "bad-request", "speed"),
        ({"voice": "alice", "input": "Hi.", "model": "whisper-1"}, 404, "model_not_found", "model"),
        ({"voice": "alice"}, 400, "bad-request", "input"),
        ({"input": "Hi."}, 400, "bad-request", "voice"),
        ({"voice": "alice@xx", "input": "Hi."}, 400, "language-unsupported", "voice"),
        (
            {"voice": "alice", "input": "Hi.", "stream_format": "sse"},
            400,
            "bad-request",
            "stream_format",
        ),
    ],
)
async def test_a_bad_request_gets_the_openai_error_shape_with_a_stable_code(
    engine: RecordingEngine,
    tmp_path: Path,
    body: dict[str, object],
    status: int,
    code: str,
    param: str | None,
) -> None:
    async with http_serving(engine, tmp_path, max_text_chars=2000) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            response = await http.post("v1/audio/speech", json={"model": "tts-1", **body})
        # The Wyoming door of the same process keeps serving.
        async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as wyoming:
            await wyoming.write_event(Synthesize(text="Still here.").event())
            assert audio_bytes(await read_until(wyoming, "audio-stop"))
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == param
    assert error["message"].endswith(".") and len(error["message"]) > 20


async def test_the_openai_client_raises_its_own_errors_with_the_servers_message(
    server: HttpUnderTest,
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client_for(server).audio.speech.create(model="tts-1", voice="bob", input="Hi.")
    assert "no voice named 'bob'" in caught.value.message
    assert caught.value.code == "voice-not-found"


async def test_a_body_that_is_not_json_and_an_unknown_path_are_refused_in_the_same_shape(
    server: HttpUnderTest,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        form = await http.post("v1/audio/speech", data={"input": "Hi", "voice": "alice"})
        broken = await http.post(
            "v1/audio/speech", content=b"{", headers={"Content-Type": "application/json"}
        )
        missing = await http.get("v1/nothing")
        wrong_method = await http.get("v1/audio/speech")
    assert (form.status_code, form.json()["error"]["code"]) == (415, "unsupported-media-type")
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "bad-request")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not-found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (
        405,
        "method-not-allowed",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "v1/audio/speech"),
        ("POST", "api/voices"),
        ("PATCH", "api/voices/alice"),
        ("POST", "api/voices/alice/styles"),
        ("PUT", "api/default-voice"),
    ],
)
async def test_a_json_body_over_the_limit_is_too_large_not_broken_json(
    server: HttpUnderTest, method: str, path: str
) -> None:
    # Found 2026-12-03: a 2 MB body was read up to the first network chunk, parsed and
    # answered 400 "not valid JSON (Unterminated string ...)".
    body = json.dumps({"model": "tts-1", "voice": "alice", "input": "x" * 2_000_000})
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
        still_serving = await http.get("v1/models")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too-large" and "1,000,000 bytes" in error["message"]
    assert still_serving.status_code == 200


async def test_a_json_body_longer_than_one_network_chunk_is_read_whole(
    server: HttpUnderTest, engine: RecordingEngine
) -> None:
    # 300 KB of JSON arrives in many reads; padding in an unknown field keeps the text short.
    body = {"model": "tts-1", "voice": "alice", "input": "Hi.", "padding": "x" * 300_000}
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post("v1/audio/speech", json={**body, "response_format": "pcm"})
    assert response.status_code == 200 and response.content


@pytest.mark.parametrize("model", ["xtts", "xtts_v2", "XTTS-v2", "tts-1-hd", "gpt-4o-mini-tts"])
async def test_every_name_that_means_xtts_and_the_openai_defaults_are_this_model(
    server: HttpUnderTest, model: str
) -> None:
    speech = await client_for(server).audio.speech.create(
        model=model, voice="alice", input="Hi.", response_format="pcm"
    )
    assert speech.content


async def test_an_unknown_model_is_not_found_as_openai_answers_it(server: HttpUnderTest) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client_for(server).audio.speech.create(model="whisper-1", voice="alice", input="Hi.")
    assert caught.value.code == "model_not_found"
    assert "xtts-v2" in caught.value.message


async def test_health_answers_without_the_token_for_the_add_ons_watchdog(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with http_serving(engine, tmp_path, token="s3cret") as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            health = await http.get("health")
            speech = await http.get("v1/models")
    assert (health.status_code, health.json()) == (200, {"healthy": True, "readiness": "ready"})
    assert speech.status_code == 401, "only health is public"


async def test_with_a_token_only_requests_carrying_it_are_spoken(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with http_serving(engine, tmp_path, token="s3cret") as server:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client_for(server, "wrong").audio.speech.create(
                model="tts-1", voice="alice", input="Hi."
            )
        spoken = await client_for(server, "s3cret").audio.speech.create(
            model="tts-1", voice="alice", input="Hi.", response_format="wav"
        )
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            voices = await http.get("v1/audio/voices")
    assert caught.value.code == "unauthorized"
    assert decoded_seconds(spoken.content, "wav")[0] > 0.1
    assert voices.status_code == 401 and voices.headers["WWW-Authenticate"] == "Bearer"


async def test_a_request_another_sites_page_makes_is_refused_before_anything_is_spoken(
    server: HttpUnderTest, engine: RecordingEngine
) -> None:
    body = {"model": "tts-1", "voice": "alice", "input": "Hi."}
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        fetched = await http.post(
            "v1/audio/speech", json=body, headers={"Sec-Fetch-Site": "cross-site"}
        )
        old_browser = await http.post(
            "v1/audio/speech", json=body, headers={"Origin": "http://evil.example"}
        )
        same_origin = await http.post(
            "v1/audio/speech", json=body, headers={"Sec-Fetch-Site": "same-origin"}
        )
    assert (fetched.status_code, fetched.json()["error"]["code"]) == (403, "cross-site")
    assert (old_browser.status_code, old_browser.json()["error"]["code"]) == (403, "cross-site")
    assert same_origin.status_code == 200
    assert engine.started == ["Hi."]


async def test_a_fault_before_audio_is_an_error_and_after_audio_breaks_the_reply_off(
    tmp_path: Path,
) -> None:
    engine = FaultyEngine(RuntimeError("CUDA error"), failing={"Breaks."}, first_piece=False)
    mid = FaultyEngine(RuntimeError("CUDA error"), failing={"Breaks."})
    body = {"model": "tts-1", "voice": "alice", "input": "Breaks.", "response_format": "pcm"}
    async with (
        http_serving(engine, tmp_path / "a") as server,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        before = await http.post("v1/audio/speech", json=body)
        fine = await http.post("v1/audio/speech", json={**body, "input": "Fine."})
    async with (
        http_serving(mid, tmp_path / "b") as server,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=server.base_url) as http,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("v1/audio/speech", json=body)
        after = await http.post("v1/audio/speech", json={**body, "input": "Fine."})
    assert before.status_code == 500 and before.json()["error"]["code"] == "synthesis-failed"
    assert fine.status_code == 200 and len(fine.content) == 2 * 2 * RATE // 10
    assert after.status_code == 200 and len(after.content) == 2 * 2 * RATE // 10


def test_every_code_has_a_status() -> None:
    for code in [*ErrorCode, *HttpCode]:
        problem = HttpProblem(code, "A sentence.")
        assert 400 <= problem.status < 600
        body = json.loads(problem.response().body)  # type: ignore[arg-type]
        assert body["error"]["code"] == str(code) and body["error"]["message"] == "A sentence."


@dataclass
class SlowEngine(ScriptedEngine):
    """Speaks each segment in ten pieces, 50 ms apart: long enough to have many at once."""

    async def synthesize(
        self, text: str, language: str, voice: object
    ) -> AsyncGenerator[np.ndarray, None]:
        for _ in range(10):
            await asyncio.sleep(0.05)
            yield np.full(RATE // 20, 0.1, np.float32)


@pytest.mark.slow
async def test_more_speech_requests_than_the_door_runs_at_once_are_refused_with_429(
    tmp_path: Path,
) -> None:
    async with (
        http_serving(SlowEngine(), tmp_path) as server,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=server.base_url, timeout=60) as http,
    ):
        replies = await asyncio.gather(
            *(
                http.post(
                    "v1/audio/speech",
                    json={"model": "tts-1", "voice": "alice", "input": f"Sentence number {i}."},
                )
                for i in range(9)
            )
        )
        after = await http.post(
            "v1/audio/speech", json={"model": "tts-1", "voice": "alice", "input": "Again."}
        )
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] * 8 + [429]
    (refused,) = [reply for reply in replies if reply.status_code == 429]
    assert refused.json()["error"]["code"] == "too-many-requests"
    assert after.status_code == 200
