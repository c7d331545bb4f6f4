"""A full disk is said in one sentence (and where), nothing is left half-written, and the
server keeps serving. The disk is real: a tmpfs of a few kilobytes mounted on the directory
(root in a container may mount one; elsewhere these tests are skipped with the reason)."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from .conftest import RecordingEngine, audio_bytes, read_until
from .support.clips import write_clip
from .support.http_server import http_serving

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def _mount_tiny_disk(directory: Path, size: str = "64k") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")


def _fill(directory: Path) -> None:
    """Leave not one free byte on the disk holding `directory`."""
    with (directory / ".filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass


@pytest.fixture
def full_voices_dir(tmp_path: Path) -> Iterator[Path]:
    voices = tmp_path / "voices"
    _mount_tiny_disk(voices)
    try:
        yield voices
    finally:
        subprocess.run(["umount", "-l", str(voices)], check=False)


@pytest.mark.slow  # a real process
def test_voice_add_onto_a_full_disk_says_so_in_one_sentence_and_leaves_nothing(
    full_voices_dir: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "kitchen.wav", seconds=9)
    added = subprocess.run(
        [sys.executable, "-m", "wyoming_xtts", "voice", "--voices-dir", str(full_voices_dir)]
        + ["add", "grandma", str(clip)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 1
    assert "Traceback" not in added.stderr, added.stderr
    assert f"The disk holding {full_voices_dir} is full" in added.stderr
    assert list(full_voices_dir.iterdir()) == []


async def test_the_studio_answers_a_full_disk_with_507_and_keeps_serving(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    voices = tmp_path / "voices"
    _mount_tiny_disk(voices, size="4m")
    try:
        # Room for the profile "alice" that http_serving writes; then not a byte more.
        async with http_serving(engine, tmp_path) as server:
            _fill(voices)
            before = sorted(path.name for path in voices.iterdir())
            async with httpx.AsyncClient(
                base_url=server.base_url, headers=SAME_ORIGIN, timeout=120
            ) as client:
                clip = write_clip(tmp_path / "kitchen.wav", seconds=9)
                uploaded = await client.post(
                    "api/uploads", files={"clip": ("kitchen.wav", clip.read_bytes(), "audio/wav")}
                )
                assert uploaded.status_code == 201, uploaded.text
                created = await client.post(
                    "api/voices",
                    json={
                        "name": "grandma",
                        "languages": ["en"],
                        "uploads": [uploaded.json()["id"]],
                    },
                )
                listed = await client.get("api/voices")
            async with AsyncTcpClient("127.0.0.1", server.wyoming_port) as wyoming:
                await wyoming.write_event(Synthesize(text="Still here.").event())
                spoken = audio_bytes(await read_until(wyoming, "audio-stop"))
        after = sorted(path.name for path in voices.iterdir())
    finally:
        subprocess.run(["umount", "-l", str(voices)], check=False)

    assert created.status_code == 507
    error = created.json()["error"]
    assert error["code"] == "disk-full"
    assert error["message"] == (
        f"The disk holding {voices} is full: free some space there and try again."
    )
    assert listed.status_code == 200
    assert "grandma" not in [voice["name"] for voice in listed.json()["voices"]]
    assert after == before, "nothing left behind"
    assert spoken
