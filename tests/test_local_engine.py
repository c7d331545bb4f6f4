"""The local XTTS-v2 engine on a random-initialised checkpoint: loading, audio, latents cache."""

import hashlib
import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from wyoming_xtts.core.engine import EngineUnavailableError
from wyoming_xtts.core.voices import Voice, VoiceLibrary
from wyoming_xtts.engines.local.engine import XttsEngine

from .conftest import BUILTIN_SPEAKERS, Computations, make_local_engine
from .support.clips import write_clip, write_profile
from .support.xtts_checkpoint import build_checkpoint


async def speak(
    engine: XttsEngine, voice, text: str = "A short test sentence for the cache."
) -> np.ndarray:
    pieces = [piece async for piece in engine.synthesize(text, "en", voice)]
    return np.concatenate(pieces)


def profile_voice(voices_dir: Path, name: str = "alice") -> Voice:
    profile = VoiceLibrary(voices_dir, "en").find(name)
    assert profile is not None
    return profile.voice


@pytest.fixture
def voices_dir(tmp_path: Path) -> Path:
    write_profile(tmp_path / "voices", "alice", clips=2)
    return tmp_path / "voices"


async def test_engine_streams_float_audio_at_24khz_in_several_pieces(
    checkpoint_dir: Path, tmp_path: Path, voices_dir: Path
) -> None:
    engine = make_local_engine(checkpoint_dir, tmp_path / "data")
    await engine.start()
    try:
        pieces = [
            p
            async for p in engine.synthesize(
                "Hello there, this is a test.", "en", profile_voice(voices_dir)
            )
        ]
    finally:
        await engine.close()

    assert engine.sample_rate == 24000
    assert len(pieces) >= 2  # streamed: a piece per 20 GPT tokens, then the rest
    assert all(piece.dtype == np.float32 and piece.ndim == 1 for piece in pieces)
    # 21 tokens of 1024 samples at 22.05 kHz, decoded at 24 kHz (bounded by the checkpoint).
    assert sum(piece.size for piece in pieces) == pytest.approx(21 * 1024 * 24000 / 22050, rel=0.05)


@pytest.mark.slow
async def test_builtin_speakers_come_from_speakers_file_and_speak_every_language(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    engine = make_local_engine(checkpoint_dir, tmp_path / "data")
    await engine.start()
    try:
        voices = engine.builtin_voices()
        audio = await speak(engine, voices[0])
    finally:
        await engine.close()

    assert [voice.name for voice in voices] == list(BUILTIN_SPEAKERS)
    assert voices[0].languages[0] == "en" and len(voices[0].languages) == 17
    assert audio.size > 0


async def test_checkpoint_without_speakers_file_offers_no_builtin_speakers(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(checkpoint_dir, tmp_path / "no-speakers"))
    (copy / "speakers_xtts.pth").unlink()
    engine = make_local_engine(copy, tmp_path / "data")
    await engine.start()
    await engine.close()

    assert engine.builtin_voices() == []


async def test_checkpoint_missing_a_file_fails_with_a_message_naming_it(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(checkpoint_dir, tmp_path / "partial"))
    (copy / "vocab.json").unlink()
    engine = make_local_engine(copy, tmp_path / "data")

    with pytest.raises(EngineUnavailableError, match="lacks vocab.json"):
        await engine.start()
    await engine.close()


@pytest.mark.slow
async def test_conditioning_is_computed_once_then_served_from_memory_and_disk(
    checkpoint_dir: Path,
    tmp_path: Path,
    voices_dir: Path,
    conditioning_computations: Computations,
) -> None:
    data_dir = tmp_path / "data"
    first = make_local_engine(checkpoint_dir, data_dir)
    await first.start()
    await speak(first, profile_voice(voices_dir))
    await speak(first, profile_voice(voices_dir))
    await first.close()
    computed_by_first = len(conditioning_computations.voices)

    restarted = make_local_engine(checkpoint_dir, data_dir)
    await restarted.start()
    await speak(restarted, profile_voice(voices_dir))
    await restarted.close()

    assert computed_by_first == 1
    assert len(conditioning_computations.voices) == 1, "the restarted engine read the disk"
    assert len(list((data_dir / "latents").glob("*.npz"))) == 1
    assert list((data_dir / "latents").glob("*.tmp")) == []


@pytest.mark.slow
async def test_changed_clip_gets_new_conditioning(
    checkpoint_dir: Path,
    tmp_path: Path,
    voices_dir: Path,
    conditioning_computations: Computations,
) -> None:
    engine = make_local_engine(checkpoint_dir, tmp_path / "data")
    await engine.start()
    await speak(engine, profile_voice(voices_dir))

    write_clip(voices_dir / "alice" / "clip1.wav", seed=99)
    await speak(engine, profile_voice(voices_dir))
    await speak(engine, profile_voice(voices_dir))
    await engine.close()

    assert len(conditioning_computations.voices) == 2
    assert len(list((tmp_path / "data" / "latents").glob("*.npz"))) == 2


@pytest.mark.slow
async def test_corrupt_cache_file_is_detected_and_rebuilt(
    checkpoint_dir: Path,
    tmp_path: Path,
    voices_dir: Path,
    caplog: pytest.LogCaptureFixture,
    conditioning_computations: Computations,
) -> None:
    data_dir = tmp_path / "data"
    engine = make_local_engine(checkpoint_dir, data_dir)
    await engine.start()
    await speak(engine, profile_voice(voices_dir))
    await engine.close()
    (cache_file,) = (data_dir / "latents").glob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # as after a power cut mid-write

    restarted = make_local_engine(checkpoint_dir, data_dir)
    conditioning_computations.voices.clear()
    await restarted.start()
    with caplog.at_level(logging.WARNING):
        await speak(restarted, profile_voice(voices_dir))
    await restarted.close()

    assert len(conditioning_computations.voices) == 1
    assert any("unreadable" in record.message for record in caplog.records)
    with np.load(cache_file) as rebuilt:
        assert rebuilt["speaker_embedding"].shape == (1, 512, 1)


@pytest.mark.slow
async def test_conditioning_settings_are_part_of_the_cache_key(
    checkpoint_dir: Path,
    tmp_path: Path,
    voices_dir: Path,
    conditioning_computations: Computations,
) -> None:
    data_dir = tmp_path / "data"
    engine = make_local_engine(checkpoint_dir, data_dir)
    await engine.start()
    await speak(engine, profile_voice(voices_dir))
    await engine.close()

    changed = Path(shutil.copytree(checkpoint_dir, tmp_path / "changed"))
    config = json.loads((changed / "config.json").read_text())
    config["gpt_cond_len"] = 6
    (changed / "config.json").write_text(json.dumps(config))
    other = make_local_engine(changed, data_dir)
    conditioning_computations.voices.clear()
    await other.start()
    await speak(other, profile_voice(voices_dir))
    await other.close()

    assert len(conditioning_computations.voices) == 1
    assert len(list((data_dir / "latents").glob("*.npz"))) == 2


@pytest.mark.slow
async def test_closing_the_stream_early_stops_generation(
    checkpoint_dir: Path, tmp_path: Path, voices_dir: Path
) -> None:
    engine = make_local_engine(checkpoint_dir, tmp_path / "data")
    await engine.start()
    stream = engine.synthesize("Hello there, this is a test.", "en", profile_voice(voices_dir))
    first = await anext(stream)
    await stream.aclose()
    after = await speak(engine, profile_voice(voices_dir))  # the model thread is free again
    await engine.close()

    assert first.size > 0 and after.size > 0


@pytest.mark.slow
async def test_a_fixed_seed_makes_a_segment_sound_the_same_every_time(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    voices = tmp_path / "voices"
    write_profile(voices, "steady", 'languages = ["en"]\n[synthesis]\nseed = 1234\n')
    engine = make_local_engine(checkpoint_dir, tmp_path / "data")
    await engine.start()
    first = await speak(engine, profile_voice(voices, "steady"))
    await speak(engine, profile_voice(voices_dir_of(tmp_path), "alice"))  # unseeded in between
    second = await speak(engine, profile_voice(voices, "steady"))
    await engine.close()

    assert np.array_equal(first, second)


def voices_dir_of(tmp_path: Path) -> Path:
    write_profile(tmp_path / "other", "alice")
    return tmp_path / "other"


@pytest.fixture
def immutable_release_checkpoint(tmp_path: Path) -> Iterator[Path]:
    """A checkpoint like the release (model.pth holds a pickled config) that cannot change.

    `chattr +i` stops even root from writing, as a read-only mount would.
    """
    directory = build_checkpoint(tmp_path / "release", pickled_config=True)
    model_file = directory / "model.pth"
    if subprocess.run(
        ["chattr", "+i", str(model_file)], capture_output=True, check=False
    ).returncode:
        pytest.skip("chattr +i is not permitted here, so no read-only file can be made")
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(model_file)], check=False)


@pytest.mark.slow
async def test_a_read_only_release_checkpoint_loads_through_a_writable_copy(
    immutable_release_checkpoint: Path, tmp_path: Path, voices_dir: Path
) -> None:
    original = hashlib.sha256((immutable_release_checkpoint / "model.pth").read_bytes()).digest()

    for _ in range(2):  # the second start reuses the copy
        engine = make_local_engine(immutable_release_checkpoint, tmp_path / "data")
        await engine.start()
        audio = await speak(engine, profile_voice(voices_dir))
        await engine.close()
        assert audio.size > 0

    (copy,) = (tmp_path / "data" / "models" / "writable").iterdir()
    assert (copy / "config.json").is_symlink() and not (copy / "model.pth").is_symlink()
    assert (
        hashlib.sha256((immutable_release_checkpoint / "model.pth").read_bytes()).digest()
        == original
    )
