"""Repeated announcements come from the audio cache: at once, byte for byte, never stale."""

from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.audio_cache import AudioCache
from wyoming_xtts.core.settings import Settings

from .conftest import RecordingEngine, audio_bytes, read_until, serving
from .support.clips import write_profile

ANNOUNCEMENT = "The washing machine is done."
SEEDED = 'languages = ["en"]\n[synthesis]\nseed = 42\n'


async def speak(port: int, voice: str, text: str = ANNOUNCEMENT) -> bytes:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(voice)).event())
        events = await read_until(client, "audio-stop", "error")
    assert events[-1].type == "audio-stop", events[-1].data
    return audio_bytes(events)


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data", **overrides)  # type: ignore[arg-type]


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data" / "audio-cache").glob("*.npy"))


async def test_a_repeated_announcement_comes_from_the_cache_byte_for_byte(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "oma", SEEDED)
    async with serving(settings_for(tmp_path), engine) as port:
        engine.started.clear()
        first = await speak(port, "oma")
        spoken_by_engine = list(engine.started)
        second = await speak(port, "oma")

    assert spoken_by_engine == [ANNOUNCEMENT]
    assert engine.started == [ANNOUNCEMENT], "the repeat never reached the engine"
    assert second == first and len(first) > 0
    assert len(cache_files(tmp_path)) == 1


async def test_a_voice_without_a_seed_is_spoken_afresh_every_time(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "oma", 'languages = ["en"]\n')
    async with serving(settings_for(tmp_path), engine) as port:
        engine.started.clear()
        await speak(port, "oma")
        await speak(port, "oma")

    assert engine.started == [ANNOUNCEMENT, ANNOUNCEMENT]
    assert cache_files(tmp_path) == []


@pytest.mark.slow
async def test_changing_the_voice_makes_its_cached_audio_unused(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    profile = write_profile(tmp_path / "voices", "oma", SEEDED)
    async with serving(settings_for(tmp_path), engine) as port:
        await speak(port, "oma")
        (profile / "voice.toml").write_text(SEEDED.replace("seed = 42", "seed = 43"))
        engine.started.clear()
        await speak(port, "oma")
        (profile / "clip0.wav").write_bytes((profile / "clip0.wav").read_bytes() + b"\0\0")
        await speak(port, "oma")

    assert engine.started == [ANNOUNCEMENT, ANNOUNCEMENT], "new settings, then a new clip"
    assert len(cache_files(tmp_path)) == 3


async def test_a_corrupt_cache_file_is_spoken_again_and_replaced(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "oma", SEEDED)
    async with serving(settings_for(tmp_path), engine) as port:
        first = await speak(port, "oma")
        (cached,) = cache_files(tmp_path)
        cached.write_bytes(b"\x93NUMPY garbage, not an array")
        engine.started.clear()
        again = await speak(port, "oma")
        third = await speak(port, "oma")

    assert engine.started == [ANNOUNCEMENT], "spoken once more, then served again"
    assert again == first == third
    assert np.load(cached).dtype == np.float32


async def test_the_cache_can_be_turned_off(engine: RecordingEngine, tmp_path: Path) -> None:
    write_profile(tmp_path / "voices", "oma", SEEDED)
    async with serving(settings_for(tmp_path, audio_cache_mb=0), engine) as port:
        engine.started.clear()
        await speak(port, "oma")
        await speak(port, "oma")

    assert engine.started == [ANNOUNCEMENT, ANNOUNCEMENT]
    assert not (tmp_path / "data" / "audio-cache").exists()


def test_the_cache_keeps_within_its_size_dropping_the_least_recently_used(
    tmp_path: Path,
) -> None:
    second = np.full(10_000, 0.1, np.float32)  # 40 kB each
    cache = AudioCache(tmp_path, max_bytes=100_000)
    keys = [AudioCache.key({"text": str(index)}) for index in range(3)]
    cache.put(keys[0], second)
    cache.put(keys[1], second)
    assert cache.get(keys[0]) is not None  # now the most recently used

    cache.put(keys[2], second)

    assert cache.get(keys[1]) is None, "least recently used, dropped"
    assert cache.get(keys[0]) is not None and cache.get(keys[2]) is not None
    assert sum(path.stat().st_size for path in tmp_path.glob("*.npy")) <= 100_000


@pytest.mark.parametrize("stored", [np.zeros((2, 2), np.float32), np.array([np.nan], np.float32)])
def test_a_cache_file_that_holds_no_usable_audio_is_a_miss(
    tmp_path: Path, stored: np.ndarray
) -> None:
    cache = AudioCache(tmp_path, max_bytes=1_000_000)
    key = AudioCache.key({"text": "x"})
    np.save(tmp_path / f"{key}.npy", stored)

    assert cache.get(key) is None
    assert not (tmp_path / f"{key}.npy").exists()
