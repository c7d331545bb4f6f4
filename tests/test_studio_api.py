"""The voice studio's API over real HTTP: making, tuning and removing voices as the page does."""

import io
import os
import shutil
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import httpx
import pytest
import pytest_asyncio
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from wyoming_xtts.core.voices import VoiceLibrary
from wyoming_xtts.doors.http.uploads import UploadLimits

from .conftest import RecordingEngine, audio_bytes, read_until
from .support.clips import phone_recording, write_clip, write_silence
from .support.http_server import HttpUnderTest, http_serving

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@pytest_asyncio.fixture
async def studio(engine: RecordingEngine, tmp_path: Path) -> AsyncIterator[HttpUnderTest]:
    async with http_serving(engine, tmp_path) as running:
        yield running


def http(server: HttpUnderTest) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, headers=SAME_ORIGIN, timeout=120)


async def upload(client: httpx.AsyncClient, path: Path, name: str | None = None) -> dict:
    response = await client.post(
        "api/uploads", files={"clip": (name or path.name, path.read_bytes(), "audio/wav")}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def wyoming_voice_names(server: HttpUnderTest) -> list[str]:
    async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as client:
        await client.write_event(Describe().event())
        while True:
            event = await client.read_event()
            assert event is not None
            if Info.is_type(event.type):
                info = Info.from_event(event)
                return [voice.name for voice in info.tts[0].voices]


@pytest.mark.slow
async def test_a_voice_made_from_uploads_is_offered_over_wyoming_at_the_next_describe(
    studio: HttpUnderTest, tmp_path: Path
) -> None:
    async with http(studio) as client:
        first = await upload(client, write_clip(tmp_path / "kitchen.wav", seconds=9))
        second = await upload(client, write_clip(tmp_path / "hall.flac", seconds=7, seed=2))
        assert first["ok"] and second["ok"]
        assert first["verdict"].startswith("Usable:") and first["name"] == "kitchen.wav"
        cleaned = await client.get(f"api/uploads/{first['id']}/audio")
        assert cleaned.headers["content-type"] == "audio/wav" and len(cleaned.content) > 100_000
        created = await client.post(
            "api/voices",
            json={
                "name": "Grandma",
                "description": "Grandma Rose",
                "languages": ["en", "de"],
                "uploads": [first["id"], second["id"]],
            },
        )
        assert created.status_code == 201, created.text
        voice = created.json()
        assert (voice["name"], voice["description"], voice["languages"]) == (
            "Grandma",
            "Grandma Rose",
            ["en", "de"],
        )
        assert voice["usable"] and [clip["name"] for clip in voice["clips"]] == [
            "clip1.wav",
            "clip2.wav",
        ]
        # The uploads were used up; the profile is what `voice add` writes.
        gone = await client.get(f"api/uploads/{first['id']}/audio")
        assert gone.status_code == 404
    profile = VoiceLibrary(studio.voices_dir, "en").find("Grandma")
    assert profile is not None and profile.usable and len(profile.voice.clips) == 2
    assert "Grandma" in await wyoming_voice_names(studio)
    async with AsyncTcpClient("127.0.0.1", studio.wyoming_port) as wyoming:
        from wyoming.tts import SynthesizeVoice

        await wyoming.write_event(
            Synthesize(text="Hello.", voice=SynthesizeVoice(name="Grandma")).event()
        )
        assert audio_bytes(await read_until(wyoming, "audio-stop"))


@pytest.mark.parametrize(
    ("container", "codec", "suffix"),
    [("mp4", "aac", ".m4a"), ("webm", "libopus", ".webm"), ("adts", "aac", ".aac")],
)
async def test_phone_and_browser_recordings_are_read_and_checked(
    studio: HttpUnderTest, tmp_path: Path, container: str, codec: str, suffix: str
) -> None:
    recording = phone_recording(tmp_path / f"phone{suffix}", container, codec)
    async with http(studio) as client:
        checked = await upload(client, recording)
    assert checked["ok"], checked
    assert checked["sample_rate"] == 48_000 and 7.5 < checked["duration_s"] < 8.5


async def test_an_unusable_recording_is_answered_with_its_reason_and_cannot_be_saved(
    studio: HttpUnderTest, tmp_path: Path
) -> None:
    async with http(studio) as client:
        short = await upload(client, write_clip(tmp_path / "short.wav", seconds=2))
        silent = await upload(client, write_silence(tmp_path / "quiet.wav"))
        long = await upload(client, write_clip(tmp_path / "speech.flac", seconds=75))
        garbage_path = tmp_path / "notes.m4a"
        garbage_path.write_bytes(b"this is not audio at all" * 100)
        garbage = await upload(client, garbage_path)
        refused = await client.post("api/voices", json={"name": "Short", "uploads": [short["id"]]})
    assert not short["ok"] and "2.0 s long" in short["verdict"] and "short.wav" in short["verdict"]
    assert not silent["ok"] and "silent" in silent["verdict"]
    assert not long["ok"] and "is 75 s long" in long["verdict"] and "up to 60 s" in long["verdict"]
    assert not garbage["ok"] and "cannot be decoded" in garbage["verdict"]
    # Plain words: neither the server's paths nor the decoders' messages reach the page.
    assert "studio-uploads" not in garbage["verdict"] and "/" not in garbage["verdict"]
    assert short["verdict"].count("short.wav") == 1
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "voice-unusable"
    assert not (studio.voices_dir / "Short").exists()


async def test_a_profile_is_tuned_made_default_and_removed(studio: HttpUnderTest) -> None:
    async with http(studio) as client:
        changed = await client.patch(
            "api/voices/alice",
            json={
                "description": "Alice in the kitchen",
                "languages": ["en", "fr"],
                "synthesis": {"temperature": 0.5, "speed": 1.1, "seed": 7},
            },
        )
        assert changed.status_code == 200, changed.text
        view = changed.json()
        assert view["description"] == "Alice in the kitchen" and view["languages"] == ["en", "fr"]
        assert view["synthesis"]["temperature"] == 0.5 and view["synthesis"]["seed"] == 7
        cleared = await client.patch("api/voices/alice", json={"description": ""})
        assert cleared.json()["description"] == "alice"
        reset = await client.patch("api/voices/alice", json={"synthesis": {"seed": None}})
        assert reset.json()["synthesis"]["seed"] is None
        assert reset.json()["synthesis"]["temperature"] == 0.5
        default = await client.put("api/default-voice", json={"voice": "alice"})
        assert default.json() == {"default_voice": "alice"}
        listed = (await client.get("api/voices")).json()["voices"]
        assert listed[0]["name"] == "alice" and listed[0]["default"]
        assert any(voice["builtin"] for voice in listed)
        removed = await client.delete("api/voices/alice")
        assert removed.status_code == 204
        after = [voice["name"] for voice in (await client.get("api/voices")).json()["voices"]]
    assert "alice" not in after
    assert not (studio.voices_dir / "alice").exists()
    assert [p.name for p in studio.voices_dir.iterdir()] == []


async def test_the_marked_default_voice_speaks_requests_that_name_none(
    studio: HttpUnderTest, tmp_path: Path, engine: RecordingEngine
) -> None:
    async with http(studio) as client:
        clip = await upload(client, write_clip(tmp_path / "b.wav", seconds=8, seed=4))
        await client.post("api/voices", json={"name": "bob", "uploads": [clip["id"]]})
        await client.put("api/default-voice", json={"voice": "bob"})
        studio_page = (await client.get("api/studio")).json()
    assert studio_page["default_voice"] == "bob" and not studio_page["default_fixed"]
    assert "bob" in (studio.voices_dir / "bob" / "voice.toml").read_text().replace('"', "")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"synthesis": {"temperature": 9}}, "temperature"),
        ({"synthesis": {"top_k": 1.5}}, "top_k"),
        ({"synthesis": {"warmth": 1}}, "synthesis"),
        ({"languages": ["klingon"]}, "languages"),
        ({"description": 5}, "description"),
        ({}, None),
    ],
)
async def test_a_bad_change_is_refused_with_a_sentence_and_the_profile_is_untouched(
    studio: HttpUnderTest, change: dict, param: str | None
) -> None:
    before = (studio.voices_dir / "alice" / "voice.toml").read_bytes()
    async with http(studio) as client:
        response = await client.patch("api/voices/alice", json=change)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert (studio.voices_dir / "alice" / "voice.toml").read_bytes() == before


@pytest.mark.parametrize("name", ["..", "../etc", ".hidden", "a/b", "x" * 80])
async def test_voice_names_cannot_leave_the_voices_directory(
    studio: HttpUnderTest, tmp_path: Path, name: str
) -> None:
    async with http(studio) as client:
        clip = await upload(client, write_clip(tmp_path / "c.wav", seconds=8))
        created = await client.post("api/voices", json={"name": name, "uploads": [clip["id"]]})
        removed = await client.delete(f"api/voices/{name.replace('/', '%2F')}")
    assert created.status_code == 400 and created.json()["error"]["code"] == "bad-request"
    assert removed.status_code == 404
    assert sorted(p.name for p in studio.voices_dir.iterdir()) == ["alice"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.wav", "data", "voices"]


async def test_an_existing_voice_is_only_replaced_when_asked(
    studio: HttpUnderTest, tmp_path: Path
) -> None:
    async with http(studio) as client:
        clip = await upload(client, write_clip(tmp_path / "d.wav", seconds=8))
        taken = await client.post("api/voices", json={"name": "alice", "uploads": [clip["id"]]})
        replaced = await client.post(
            "api/voices",
            json={"name": "alice", "uploads": [clip["id"]], "replace": True, "description": "New"},
        )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "voice-exists"
    assert replaced.status_code == 201 and replaced.json()["description"] == "New"


async def test_uploads_are_bounded_in_size_and_in_number_waiting(studio: HttpUnderTest) -> None:
    limits = UploadLimits()
    async with http(studio) as client:
        big = await client.post(
            "api/uploads", files={"clip": ("big.wav", b"\0" * (limits.max_bytes + 1), "audio/wav")}
        )
        waiting = [
            await client.post("api/uploads", files={"clip": (f"n{i}.wav", b"no", "audio/wav")})
            for i in range(limits.max_pending + 1)
        ]
        await client.delete(f"api/uploads/{waiting[0].json()['id']}")
        after_removing_one = await client.post(
            "api/uploads", files={"clip": ("again.wav", b"no", "audio/wav")}
        )
    assert big.status_code == 413 and big.json()["error"]["code"] == "too-large"
    assert [r.status_code for r in waiting] == [201] * limits.max_pending + [429]
    assert waiting[-1].json()["error"]["code"] == "upload-limit"
    assert after_removing_one.status_code == 201
    kept = list((studio.data_dir / "studio-uploads").iterdir())
    assert len(kept) == limits.max_pending  # the refused ones left nothing behind


async def test_the_preview_streams_mp3_with_settings_that_override_the_voices_own(
    studio: HttpUnderTest, engine: RecordingEngine
) -> None:
    async with http(studio) as client:
        heard = await client.get(
            "api/speech", params={"voice": "alice", "text": "Hello there.", "speed": "1.5"}
        )
        wrong = await client.get(
            "api/speech", params={"voice": "alice", "text": "Hello.", "temperature": "hot"}
        )
        empty = await client.get("api/speech", params={"voice": "alice", "text": ""})
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/mpeg"
    with av.open(io.BytesIO(heard.content)) as container:
        assert sum(frame.samples for frame in container.decode(audio=0)) > 2400
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "temperature"
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty-text"


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """The directory made unwritable, for root too (immutable) where chattr works."""
    if os.geteuid() != 0:
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            yield
        finally:
            directory.chmod(stat.S_IRWXU)
        return
    if (
        shutil.which("chattr") is None
        or subprocess.run(["chattr", "+i", str(directory)], check=False).returncode
    ):
        pytest.skip("running as root where chattr +i cannot make a directory read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


async def test_a_read_only_voices_directory_is_reported_and_listening_still_works(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with http_serving(engine, tmp_path) as server:
        with read_only(server.voices_dir):
            async with http(server) as client:
                page = (await client.get("api/studio")).json()
                removed = await client.delete("api/voices/alice")
                heard = await client.get("api/speech", params={"voice": "alice", "text": "Hi."})
    assert not page["writable"] and "mounted read-only" in page["not_writable_reason"]
    assert removed.status_code == 403 and removed.json()["error"]["code"] == "not-writable"
    assert heard.status_code == 200
    assert (server.voices_dir / "alice").is_dir()


async def test_state_changes_from_another_sites_page_are_refused(studio: HttpUnderTest) -> None:
    async with httpx.AsyncClient(base_url=studio.base_url) as client:
        removed = await client.delete("api/voices/alice", headers={"Sec-Fetch-Site": "cross-site"})
        form = await client.put(
            "api/default-voice",
            content=b"voice=alice",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        embedded = await client.get(
            "api/speech",
            params={"voice": "alice", "text": "Hi."},
            headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        )
        linked_page = await client.get(
            "", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
        )
    assert removed.status_code == 403 and removed.json()["error"]["code"] == "cross-site"
    assert form.status_code == 415
    assert embedded.status_code == 403
    assert linked_page.status_code == 200 and "text/html" in linked_page.headers["content-type"]
    assert (studio.voices_dir / "alice").is_dir()


async def test_with_a_token_the_page_asks_for_it_and_the_login_sets_a_session(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with http_serving(engine, tmp_path, token="s3cret") as server:
        async with http(server) as client:
            login_page = await client.get("")
            api = await client.get("api/voices")
            wrong = await client.post("login", data={"token": "guess"})
            right = await client.post("login", data={"token": "s3cret"})
            cookie = right.headers["set-cookie"]
            page = await client.get("")
            voices = await client.get("api/voices")
        async with httpx.AsyncClient(base_url=server.base_url) as other:
            bearer = await other.get("api/voices", headers={"Authorization": "Bearer s3cret"})
            script = await other.get("static/studio.js", headers={"Authorization": "Bearer s3cret"})
    assert login_page.status_code == 401 and 'name="token"' in login_page.text
    assert api.status_code == 401 and api.json()["error"]["code"] == "unauthorized"
    assert wrong.status_code == 303 and wrong.headers["location"] == "./?failed=1"
    assert right.status_code == 303 and right.headers["location"] == "./"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret" not in cookie
    assert page.status_code == 200 and "static/studio.js" in page.text
    assert script.status_code == 200 and "api/" in script.text
    assert voices.status_code == 200 and bearer.status_code == 200


async def test_the_page_and_its_files_carry_a_strict_content_security_policy(
    studio: HttpUnderTest,
) -> None:
    async with http(studio) as client:
        page = await client.get("")
        script = await client.get("static/studio.js")
        escape = await client.get("static/../app.py")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert escape.status_code in (403, 404)


async def test_an_ingress_prefix_scopes_the_session_cookie(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with http_serving(engine, tmp_path, token="t") as server, http(server) as client:
        right = await client.post(
            "login",
            data={"token": "t"},
            headers={"X-Ingress-Path": "/api/hassio_ingress/abc123"},
        )
        hostile = await client.post(
            "login", data={"token": "t"}, headers={"X-Ingress-Path": "/x; Domain=evil"}
        )
    assert "Path=/api/hassio_ingress/abc123/" in right.headers["set-cookie"]
    assert "evil" not in hostile.headers["set-cookie"] and "Path=/;" in (
        hostile.headers["set-cookie"] + ";"
    )


async def test_the_wyoming_door_keeps_speaking_whatever_arrives_over_http(
    studio: HttpUnderTest, tmp_path: Path
) -> None:
    async with http(studio) as client:
        for _ in range(3):
            await client.post(
                "api/uploads",
                content=b"garbage",
                headers={"Content-Type": "multipart/form-data; boundary=x"},
            )
            await client.patch(
                "api/voices/alice", content=b"{{{", headers={"Content-Type": "application/json"}
            )
            await client.get("api/speech", params={"voice": "nobody", "text": "x"})
    async with AsyncTcpClient("127.0.0.1", studio.wyoming_port) as wyoming:
        await wyoming.write_event(Synthesize(text="Still here.").event())
        assert audio_bytes(await read_until(wyoming, "audio-stop"))


async def test_a_style_is_added_to_a_voice_heard_and_removed(
    studio: HttpUnderTest, tmp_path: Path
) -> None:
    async with http(studio) as client:
        clip = await upload(client, write_clip(tmp_path / "party.wav", seconds=8, seed=3))
        added = await client.post(
            "api/voices/alice/styles", json={"style": "cheerful", "uploads": [clip["id"]]}
        )
        heard = await client.get(
            "api/speech", params={"voice": "alice", "style": "cheerful", "text": "Hi there."}
        )
        unknown = await client.get(
            "api/speech", params={"voice": "alice", "style": "angry", "text": "Hi there."}
        )
        removed = await client.delete("api/voices/alice/styles/cheerful")
        after = (await client.get("api/voices")).json()["voices"][0]
    assert added.status_code == 201, added.text
    (style,) = added.json()["styles"]
    assert style["name"] == "cheerful" and style["usable"] and len(style["clips"]) == 1
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/mpeg"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "speaker-not-found"
    assert removed.status_code == 204 and after["styles"] == []


async def test_a_default_voice_fixed_by_the_server_option_is_reported_as_fixed(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    async with (
        http_serving(engine, tmp_path, default_voice="Ana Florence") as server,
        http(server) as client,
    ):
        page = (await client.get("api/studio")).json()
        await client.put("api/default-voice", json={"voice": "alice"})
        after = (await client.get("api/studio")).json()
    assert page["default_voice"] == "Ana Florence" and page["default_fixed"]
    # Marking a profile changes its voice.toml, but the option still wins.
    assert after["default_voice"] == "Ana Florence"
