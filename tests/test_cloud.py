"""Proxy mode: the Wyoming server in front of local fakes of Replicate and Pixazo.

Every test drives a real Wyoming TCP server with the `wyoming` client; the server's cloud
engine talks real HTTP to `tests/support/fake_providers.py` on 127.0.0.1.
"""

import asyncio
import base64
import io
import itertools
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from wyoming_xtts.commands import health
from wyoming_xtts.core.audio import XTTS_OUTPUT_RATE
from wyoming_xtts.core.engine import Engine
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.engines.cloud.engine import CloudEngine, CloudSettings
from wyoming_xtts.engines.cloud.http import RetryPolicy, Secret
from wyoming_xtts.engines.cloud.replicate import ReplicateProvider
from wyoming_xtts.server import create_cloud_engine

from .conftest import audio_bytes, event_types, free_port, read_until, serving
from .support.clips import write_profile
from .support.fake_providers import (
    PIXAZO_KEY,
    REPLICATE_TOKEN,
    REPLICATE_VERSION,
    FakePixazo,
    FakeProvider,
    FakeReplicate,
)

ALICE = SynthesizeVoice(name="alice")
SPEAKER_URL = "https://voices.example.org/alice.wav"
ENVIRON = {"REPLICATE_API_TOKEN": REPLICATE_TOKEN, "PIXAZO_API_KEY": PIXAZO_KEY}
SECRETS = (REPLICATE_TOKEN, PIXAZO_KEY)
SAMPLE_RATE = XTTS_OUTPUT_RATE


@dataclass
class ProxyServer:
    port: int
    voices_dir: Path

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port)


def proxy_settings(
    engine: str, fake: FakeProvider, tmp_path: Path, **overrides: object
) -> Settings:
    base = f"{fake.base}/v1" if engine == "replicate" else fake.base
    settings = Settings(
        engine=engine,
        provider_url=base,
        voices_dir=tmp_path / "voices",
        data_dir=tmp_path / "data",
        provider_timeout=20.0,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


@asynccontextmanager
async def proxy(
    settings: Settings, profile_toml: str | None = None, engine: Engine | None = None
) -> AsyncIterator[ProxyServer]:
    """A live Wyoming server in proxy mode with one profile, `alice`."""
    toml = profile_toml or f'languages = ["en"]\nspeaker_url = "{SPEAKER_URL}"\n'
    if settings.engine == "replicate" and profile_toml is None:
        toml = 'languages = ["en"]\n'
    write_profile(settings.voices_dir, "alice", toml)
    engine = engine or create_cloud_engine(settings, ENVIRON)
    await engine.start()
    try:
        async with serving(settings, engine) as port:  # type: ignore[arg-type]
            yield ProxyServer(port, settings.voices_dir)
    finally:
        await engine.close()


async def speak(server: ProxyServer, text: str, voice: str = "alice") -> list[Event]:
    async with server.client() as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        return await read_until(client, "audio-stop", "error")


def error_of(events: list[Event]) -> tuple[str, str]:
    assert events[-1].type == "error", event_types(events)
    return events[-1].data["code"], events[-1].data["text"]


def tone_pitches(pcm: bytes) -> list[int]:
    """Dominant frequency (Hz, rounded to 50) of each sound separated by silence."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
    frame = SAMPLE_RATE // 100
    loud = [np.abs(samples[i : i + frame]).max() > 0.02 for i in range(0, samples.size, frame)]
    pitches, start = [], None
    for index, is_loud in enumerate([*loud, False]):
        if is_loud and start is None:
            start = index
        elif not is_loud and start is not None:
            run = samples[start * frame : index * frame]
            spectrum = np.abs(np.fft.rfft(run))
            peak = np.fft.rfftfreq(run.size, 1 / SAMPLE_RATE)[int(spectrum.argmax())]
            pitches.append(int(round(peak / 50) * 50))
            start = None
    return pitches


def numbered(count: int) -> list[str]:
    return [f"This is sentence {n} of the long reply." for n in range(1, count + 1)]


# -- the happy paths ----------------------------------------------------------------------


async def test_replicate_speaks_a_profile_with_its_clip_sent_as_a_data_uri(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        events = await speak(server, "The washing machine is done.")

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert events[0].data == {"rate": 24000, "width": 2, "channels": 1, "timestamp": None}
    assert len(audio_bytes(events)) == 2 * int(0.6 * SAMPLE_RATE)
    (create,) = replicate.calls("POST", "/v1/predictions")
    assert create.headers["Prefer"] == "wait=4"
    body = create.json()
    assert body["version"] == REPLICATE_VERSION
    assert body["input"]["text"] == "The washing machine is done."
    assert body["input"]["language"] == "en"
    assert body["input"]["cleanup_voice"] is False
    prefix, _, payload = body["input"]["speaker"].partition(",")
    assert prefix == "data:audio/ogg;base64"
    reference, rate = soundfile.read(io.BytesIO(base64.b64decode(payload)))
    assert rate == 22_050 and abs(reference.size / rate - 7.0) < 0.1
    assert not replicate.calls("POST", "/v1/files")


@pytest.mark.slow
async def test_replicate_polls_quickly_when_prefer_wait_ends_before_the_prediction(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.hold_s = 0
    replicate.processing_s = 0.8
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        events = await speak(server, "The washing machine is done.")

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    (create,) = replicate.calls("POST", "/v1/predictions")
    polls = replicate.calls("GET", "/v1/predictions/")
    assert len(polls) >= 2
    assert polls[0].at - create.at < 0.5, "first poll must come well under a second after create"
    (output,) = replicate.calls("GET", "/output/")
    assert output.at - polls[-1].at < 0.5, "output is fetched at once"


async def test_pixazo_speaks_a_profile_through_its_speaker_url(
    pixazo: FakePixazo, tmp_path: Path
) -> None:
    async with proxy(proxy_settings("pixazo", pixazo, tmp_path)) as server:
        events = await speak(server, "The washing machine is done.")

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert len(audio_bytes(events)) == 2 * int(0.6 * SAMPLE_RATE)
    (generate,) = pixazo.calls("POST", "/voice-clone/v1/xtts-v2/generate")
    assert generate.headers["Ocp-Apim-Subscription-Key"] == PIXAZO_KEY
    assert generate.headers["Cache-Control"] == "no-cache"
    assert generate.json() == {
        "speaker": SPEAKER_URL,
        "text": "The washing machine is done.",
        "language": "en",
        "cleanup_voice": False,
    }
    polls = pixazo.calls("GET", "/v2/requests/status/")
    assert polls[0].at - generate.at < 0.5, "polling starts sub-second, not after 5 s"
    assert len(polls) >= 2
    (media,) = pixazo.calls("GET", "/media/")
    assert "Ocp-Apim-Subscription-Key" not in media.headers


async def test_home_assistant_streaming_sequence_works_in_proxy_mode(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path)
    async with proxy(settings) as server, server.client() as client:
        await client.write_event(SynthesizeStart(voice=ALICE).event())
        for piece in (
            "This is sent",
            "ence 1 of the reply. This is sen",
            "tence 2 of the reply.",
        ):
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(Synthesize(text="ignored compat text", voice=ALICE).event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "synthesize-stopped", "error")

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    assert tone_pitches(audio_bytes(events)) == [400, 500]
    texts = [call.json()["input"]["text"] for call in replicate.calls("POST", "/v1/predictions")]
    assert sorted(texts) == ["This is sentence 1 of the reply.", "This is sentence 2 of the reply."]


async def test_describe_offers_voices_under_the_languages_the_provider_speaks(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path)
    write_profile(settings.voices_dir, "hanako", 'languages = ["ja"]\n')
    write_profile(settings.voices_dir, "mei", 'languages = ["zh-cn", "ja", "en"]\n')
    async with proxy(settings) as server, server.client() as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await read_until(client, "info"))[-1])

    program = info.tts[0]
    assert "Replicate (lucataco/xtts-v2)" in (program.description or "")
    voices = {voice.name: voice.languages for voice in program.voices}
    assert voices == {"alice": ["en"], "mei": ["zh-CN", "en"]}


async def test_chinese_is_sent_as_zh_and_cleanup_voice_follows_the_profile(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path, cleanup_voice=True)
    write_profile(settings.voices_dir, "mei", 'languages = ["zh-cn"]\ncleanup_voice = false\n')
    async with proxy(settings) as server:
        assert (await speak(server, "洗衣机已经洗好了。", voice="mei"))[-1].type == "audio-stop"
        assert (await speak(server, "The dryer is done too.", voice="alice"))[
            -1
        ].type == "audio-stop"

    first, second = (call.json()["input"] for call in replicate.calls("POST", "/v1/predictions"))
    assert (first["language"], first["cleanup_voice"]) == ("zh", False)
    assert (second["language"], second["cleanup_voice"]) == ("en", True)


async def test_japanese_voice_gets_language_unsupported_and_nothing_is_sent(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path)
    write_profile(settings.voices_dir, "hanako", 'languages = ["ja"]\n')
    async with proxy(settings) as server:
        code, text = error_of(await speak(server, "洗濯が終わりました。", voice="hanako"))

    assert code == "language-unsupported"
    assert "'ja'" in text
    assert not replicate.calls("POST", "/v1/predictions")


async def test_large_reference_is_uploaded_once_and_reused(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path)
    provider = ReplicateProvider(
        f"{replicate.base}/v1",
        Secret(REPLICATE_TOKEN),
        REPLICATE_VERSION,
        RetryPolicy(),
        data_uri_limit=20_000,
    )
    engine = CloudEngine(provider, CloudSettings(20.0, 3, 8, False))
    async with proxy(settings, engine=engine) as server:
        for _ in range(2):
            assert (await speak(server, "The washing machine is done."))[-1].type == "audio-stop"

    (upload,) = replicate.calls("POST", "/v1/files")
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b"OggS" in upload.body
    speakers = {
        call.json()["input"]["speaker"] for call in replicate.calls("POST", "/v1/predictions")
    }
    assert len(speakers) == 1
    assert speakers.pop().startswith(f"{replicate.base}/v1/files/")


async def test_profile_speaker_url_is_passed_to_replicate_as_is(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path)
    async with proxy(settings, f'languages = ["en"]\nspeaker_url = "{SPEAKER_URL}"\n') as server:
        assert (await speak(server, "The washing machine is done."))[-1].type == "audio-stop"

    (create,) = replicate.calls("POST", "/v1/predictions")
    assert create.json()["input"]["speaker"] == SPEAKER_URL


# -- pipelining ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("in_flight", [1, 3])
async def test_long_reply_audio_arrives_in_order_with_bounded_predictions_in_flight(
    replicate: FakeReplicate, tmp_path: Path, in_flight: int
) -> None:
    replicate.processing_s = 0.4
    settings = proxy_settings("replicate", replicate, tmp_path, segments_in_flight=in_flight)
    async with proxy(settings) as server:
        events = await speak(server, " ".join(numbered(5)))

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert tone_pitches(audio_bytes(events)) == [400, 500, 600, 700, 800]
    creates = replicate.calls("POST", "/v1/predictions")
    outputs = replicate.calls("GET", "/output/")
    created_before_first_output = sum(call.at < outputs[0].at for call in creates)
    assert created_before_first_output == in_flight


# -- failures -----------------------------------------------------------------------------


async def test_pixazo_voice_without_speaker_url_says_what_to_add(
    pixazo: FakePixazo, tmp_path: Path
) -> None:
    settings = proxy_settings("pixazo", pixazo, tmp_path)
    async with proxy(settings, 'languages = ["en"]\n') as server:
        async with server.client() as client:
            await client.write_event(Synthesize(text="Hello there, friend.", voice=ALICE).event())
            code, text = error_of(await read_until(client, "audio-stop", "error"))
            assert await asyncio.wait_for(client.read_event(), 1.0) is None, "closed after"
        async with server.client() as client:
            await client.write_event(Ping().event())
            assert (await read_until(client, "pong"))[-1].type == "pong"

    assert code == "voice-unusable"
    assert 'speaker_url = "https://' in text and "voice.toml" in text
    assert not pixazo.calls("POST", "/voice-clone/v1/xtts-v2/generate")


@pytest.mark.parametrize(
    ("status", "title", "detail", "code"),
    [
        (
            402,
            "Payment Required",
            "You have insufficient credit to run this model",
            "provider-balance",
        ),
        (
            422,
            "Input validation failed",
            "- input.text: String length must be <= 400",
            "provider-rejected",
        ),
        (400, "Bad Request", "The speaker file could not be opened", "provider-rejected"),
        (403, "Forbidden", "You do not have permission to run this model", "provider-auth"),
    ],
)
async def test_replicate_error_statuses_reach_the_client_with_the_providers_reason(
    replicate: FakeReplicate, tmp_path: Path, status: int, title: str, detail: str, code: str
) -> None:
    replicate.create_error = (status, title, detail)
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        received_code, text = error_of(await speak(server, "The washing machine is done."))
        replicate.create_error = None
        assert (await speak(server, "The dryer is done."))[-1].type == "audio-stop"

    assert received_code == code
    assert detail in text and "Replicate" in text
    assert len(replicate.calls("POST", "/v1/predictions")) == 2, "4xx is never retried"


async def test_replicate_bad_token_is_reported_as_provider_auth(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path)
    engine = create_cloud_engine(settings, {"REPLICATE_API_TOKEN": "r8_wrong"})
    async with proxy(settings, engine=engine) as server:
        code, text = error_of(await speak(server, "The washing machine is done."))

    assert code == "provider-auth"
    assert "valid authentication token" in text and "r8_wrong" not in text


async def test_health_is_unhealthy_while_the_provider_refuses_the_credentials_then_healthy(
    replicate: FakeReplicate, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Docker's HEALTHCHECK runs this command: an open port with a refused token is not healthy.
    settings = proxy_settings("replicate", replicate, tmp_path)
    engine = create_cloud_engine(settings, ENVIRON)
    uri = ["--uri"]
    async with proxy(settings, engine=engine) as server:
        uri.append(f"tcp://127.0.0.1:{server.port}")
        before = await asyncio.to_thread(health.main, uri)
        replicate.create_error = (401, "Unauthorized", "Invalid token.")
        error_of(await speak(server, "The washing machine is done."))
        refused = await asyncio.to_thread(health.main, uri)
        refused_err = capsys.readouterr().err
        replicate.create_error = None
        await speak(server, "The key was mended.")
        after = await asyncio.to_thread(health.main, uri)

    assert (before, refused, after) == (0, 1, 0)
    assert "cannot speak" in refused_err and "provider-auth" not in refused_err


@pytest.mark.parametrize(
    ("status", "error", "message", "code"),
    [
        (
            402,
            "Insufficient Balance",
            "Your wallet does not have enough balance.",
            "provider-balance",
        ),
        (
            400,
            "Model not found",
            "Model 'xtts-v2-api' not found or is disabled",
            "provider-rejected",
        ),
        (401, "Unauthorized", "Access denied due to invalid subscription key.", "provider-auth"),
    ],
)
async def test_pixazo_error_statuses_reach_the_client_with_the_providers_reason(
    pixazo: FakePixazo, tmp_path: Path, status: int, error: str, message: str, code: str
) -> None:
    pixazo.generate_error = (status, error, message)
    async with proxy(proxy_settings("pixazo", pixazo, tmp_path)) as server:
        received_code, text = error_of(await speak(server, "The washing machine is done."))

    assert received_code == code
    assert message in text and "Pixazo" in text


async def test_replicate_failed_prediction_reports_its_error_text(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.prediction_error = "CUDA out of memory while generating"
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        code, text = error_of(await speak(server, "The washing machine is done."))

    assert code == "provider-failed"
    assert "CUDA out of memory while generating" in text


@pytest.mark.slow
@pytest.mark.parametrize("final_status", ["FAILED", "ERROR"])
async def test_pixazo_failed_request_reports_its_error_text(
    pixazo: FakePixazo, tmp_path: Path, final_status: str
) -> None:
    pixazo.final_status = final_status
    async with proxy(proxy_settings("pixazo", pixazo, tmp_path)) as server:
        code, text = error_of(await speak(server, "The washing machine is done."))

    assert code == "provider-failed"
    assert final_status in text and "GPU worker crashed" in text


@pytest.mark.slow
async def test_throttled_create_is_retried_after_the_retry_after_delay(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.throttle_creates = 2
    replicate.retry_after = "1"
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        events = await speak(server, "The washing machine is done.")

    assert events[-1].type == "audio-stop"
    creates = replicate.calls("POST", "/v1/predictions")
    assert len(creates) == 3
    assert all(later.at - earlier.at >= 0.9 for earlier, later in itertools.pairwise(creates))


@pytest.mark.slow
async def test_unavailable_provider_is_retried_then_succeeds(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.unavailable_creates = 1
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        events = await speak(server, "The washing machine is done.")

    assert events[-1].type == "audio-stop"
    assert len(replicate.calls("POST", "/v1/predictions")) == 2


async def test_throttling_beyond_the_retry_budget_is_reported(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.throttle_creates = 100
    replicate.retry_after = "0"
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        code, text = error_of(await speak(server, "The washing machine is done."))

    assert code == "provider-throttled"
    assert "resets in ~1s" in text
    assert len(replicate.calls("POST", "/v1/predictions")) == RetryPolicy().attempts


@pytest.mark.slow
async def test_unreachable_provider_is_reported_and_the_server_keeps_serving(
    tmp_path: Path,
) -> None:
    settings = Settings(
        engine="replicate",
        provider_url=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        voices_dir=tmp_path / "voices",
        data_dir=tmp_path / "data",
    )
    async with proxy(settings) as server:
        code, text = error_of(await speak(server, "The washing machine is done."))
        async with server.client() as client:
            await client.write_event(Describe().event())
            assert (await read_until(client, "info"))[-1].type == "info"

    assert code == "provider-unavailable"
    assert "could not be reached" in text


@pytest.mark.parametrize("output", ["garbage", "empty"])
async def test_unreadable_or_empty_audio_is_reported(
    replicate: FakeReplicate, tmp_path: Path, output: str
) -> None:
    replicate.output = output
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        code, _ = error_of(await speak(server, "The washing machine is done."))

    assert code == "provider-bad-audio"


@pytest.mark.parametrize("cut_kind", ["header", "connection"])
async def test_a_download_cut_short_is_fetched_again_and_spoken_whole(
    replicate: FakeReplicate, tmp_path: Path, cut_kind: str
) -> None:
    replicate.cut_outputs, replicate.cut_kind = 1, cut_kind
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        events = await speak(server, "The washing machine is done.")

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert len(audio_bytes(events)) == int(0.6 * 24_000) * 2, "the whole sentence"
    assert len(replicate.calls("GET", "/output/")) == 2


@pytest.mark.parametrize("cut_kind", ["header", "connection"])
async def test_a_download_cut_short_twice_is_reported_as_bad_audio(
    replicate: FakeReplicate, tmp_path: Path, cut_kind: str
) -> None:
    replicate.cut_outputs, replicate.cut_kind = 2, cut_kind
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        code, text = error_of(await speak(server, "The washing machine is done."))

    assert code == "provider-bad-audio"
    assert ("cut short" if cut_kind == "header" else "the download broke off") in text
    assert len(replicate.calls("GET", "/output/")) == 2


@pytest.mark.slow
async def test_hung_prediction_hits_the_deadline_and_is_canceled(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.never_finish = True
    replicate.hold_s = 0
    settings = proxy_settings("replicate", replicate, tmp_path, provider_timeout=1.5)
    async with proxy(settings) as server:
        started = time.monotonic()
        code, text = error_of(await speak(server, "The washing machine is done."))
        elapsed = time.monotonic() - started
        await wait_for_calls(replicate, "POST", "/v1/predictions/", 1)

    assert code == "provider-timeout"
    assert "1.5 s" in text
    assert 1.4 < elapsed < 5.0
    (prediction,) = replicate.predictions.values()
    assert prediction.canceled


@pytest.mark.slow
async def test_provider_that_never_answers_hits_the_deadline(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.hang_creates = True
    settings = proxy_settings("replicate", replicate, tmp_path, provider_timeout=1.5)
    async with proxy(settings) as server:
        code, _ = error_of(await speak(server, "The washing machine is done."))
        replicate.hang_creates = False
        assert (await speak(server, "The dryer is done."))[-1].type == "audio-stop"

    assert code == "provider-timeout"


async def test_client_that_disconnects_cancels_its_predictions(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    replicate.never_finish = True
    replicate.hold_s = 0
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        async with server.client() as client:
            await client.write_event(Synthesize(text=" ".join(numbered(2)), voice=ALICE).event())
            await wait_for_calls(replicate, "POST", "/v1/predictions", 2)
            await wait_for_calls(replicate, "GET", "/v1/predictions/", 2)
        await wait_for_calls(replicate, "POST", "/v1/predictions/", 2)

    cancels = {call.path.split("/")[3] for call in replicate.calls("POST", "/v1/predictions/")}
    assert cancels == set(replicate.predictions), "every outstanding prediction is canceled"
    assert all(prediction.canceled for prediction in replicate.predictions.values())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("hold_s", "hang_up_after_s"),
    [(60.0, 0.05), (60.0, 1.0), (0.0, 1.0)],
    ids=["creating", "waiting", "polling"],
)
async def test_a_hang_up_reaches_replicate_as_a_cancel_within_5_s_in_every_phase(
    replicate: FakeReplicate, tmp_path: Path, hold_s: float, hang_up_after_s: float
) -> None:
    replicate.processing_s = 20.0  # a long prediction, still running when the client leaves
    replicate.hold_s = hold_s  # 60: the create waits as long as it is asked to; 0: poll
    async with proxy(proxy_settings("replicate", replicate, tmp_path)) as server:
        async with server.client() as client:
            await client.write_event(
                Synthesize(text="The washing machine is done.", voice=ALICE).event()
            )
            await wait_for_calls(replicate, "POST", "/v1/predictions", 1)
            await asyncio.sleep(hang_up_after_s)
        hung_up = time.monotonic()
        while not any(p.canceled for p in replicate.predictions.values()):
            assert time.monotonic() - hung_up < 10, "never canceled"
            await asyncio.sleep(0.02)
        canceled_after = time.monotonic() - hung_up

    assert canceled_after < 5.0
    assert [p.canceled for p in replicate.predictions.values()] == [True]


# -- secrets ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_secrets_never_reach_logs_events_or_other_hosts(
    replicate: FakeReplicate, pixazo: FakePixazo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    replicate.output_host = "localhost"  # outputs on another origin must not get the token
    events: list[Event] = []
    async with proxy(proxy_settings("replicate", replicate, tmp_path / "r")) as server:
        events += await speak(server, "The washing machine is done.")
        replicate.create_error = (403, "Forbidden", f"Token {REPLICATE_TOKEN} may not run this")
        events += await speak(server, "The washing machine is done.")
        replicate.create_error = None
        replicate.throttle_creates, replicate.retry_after = 1, "0"
        events += await speak(server, "The dryer is done.")
        async with server.client() as client:
            await client.write_event(Describe().event())
            events += await read_until(client, "info")
    async with proxy(proxy_settings("pixazo", pixazo, tmp_path / "p")) as server:
        events += await speak(server, "The washing machine is done.")
        pixazo.final_status = "ERROR"
        events += await speak(server, "The washing machine is done.")
    engine = create_cloud_engine(proxy_settings("replicate", replicate, tmp_path), ENVIRON)

    assert [event.type for event in events].count("audio-stop") == 3
    assert [event.type for event in events].count("error") == 2
    seen = caplog.text + repr(engine) + "".join(repr(event.data) for event in events)
    for secret in SECRETS:
        assert secret not in seen
    outputs = replicate.calls("GET", "/output/")
    assert len(outputs) == 2
    assert all("Authorization" not in output.headers for output in outputs)
    (media,) = pixazo.calls("GET", "/media/")
    assert PIXAZO_KEY not in repr(media.headers)


async def wait_for_calls(fake: FakeProvider, method: str, prefix: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(fake.calls(method, prefix)) < count:
        assert time.monotonic() < deadline, f"{method} {prefix}: {len(fake.calls(method, prefix))}"
        await asyncio.sleep(0.02)


# -- the proxy-only install ---------------------------------------------------------------

_WITHOUT_TORCH = """
import runpy, sys

class RefuseLocalEngine:
    BLOCKED = {"torch", "torchaudio", "torchcodec", "TTS", "transformers", "coqpit", "trainer"}

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.BLOCKED:
            print(f"BLOCKED IMPORT {name}", file=sys.stderr, flush=True)
            raise ImportError(f"{name} is not installed")
        return None

sys.meta_path.insert(0, RefuseLocalEngine())
sys.argv = ["wyoming-xtts", *sys.argv[1:]]
runpy.run_module("wyoming_xtts", run_name="__main__")
"""


def proxy_process(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    environment = {**os.environ, **env}
    return subprocess.Popen(
        [sys.executable, "-c", _WITHOUT_TORCH, *args],
        env=environment,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.slow
async def test_proxy_mode_serves_without_torch_or_coqui_tts_installed(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    port = free_port()
    process = proxy_process(
        tmp_path,
        *("--engine", "replicate", "--provider-url", f"{replicate.base}/v1"),
        *("--voices-dir", str(tmp_path / "voices"), "--data-dir", str(tmp_path / "data")),
        *("--uri", f"tcp://127.0.0.1:{port}", "--debug"),
        env={"REPLICATE_API_TOKEN": REPLICATE_TOKEN},
    )
    try:
        server = ProxyServer(port, tmp_path / "voices")
        await wait_until_listening(port, process)
        events = await speak(server, "The washing machine is done.")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert "BLOCKED IMPORT" not in stderr
    assert REPLICATE_TOKEN not in stderr, "not even at debug level"


def test_proxy_mode_without_a_key_exits_saying_which_variable_to_set(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if "REPLICATE" not in key}
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "wyoming_xtts",
            "--engine",
            "replicate",
            "--voices-dir",
            str(tmp_path),
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "REPLICATE_API_TOKEN" in finished.stderr and "--api-key-file" in finished.stderr
    assert "Traceback" not in finished.stderr


async def wait_until_listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("the proxy server did not start listening")


def test_local_engine_without_torch_installed_exits_with_how_to_install_it(tmp_path: Path) -> None:
    process = proxy_process(tmp_path, "--engine", "local", "--voices-dir", str(tmp_path), env={})
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 2
    assert "wyoming-xtts[local]" in stderr and "--engine replicate" in stderr
    assert "Traceback" not in stderr
