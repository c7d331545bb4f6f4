"""Streaming speech from the local model: seamless pieces, their sizes, stopping, precision."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.models.xtts import Xtts
from TTS.vocoder.models.hifigan_generator import HifiganGenerator

from wyoming_xtts.core.engine import EngineUnavailableError, GptRuntime, Precision
from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.core.voices import Voice, VoiceLibrary
from wyoming_xtts.engines.local.checkpoint import read_checkpoint
from wyoming_xtts.engines.local.engine import XttsEngine
from wyoming_xtts.engines.local.precision import (
    cpu_features,
    int8_kernels,
    resolve_gpt,
    waveform_decoder,
)
from wyoming_xtts.engines.local.streaming_decoder import StreamingDecoder
from wyoming_xtts.engines.local.streaming_hifigan import StreamingHifigan
from wyoming_xtts.engines.local.xtts_stream import (
    SECONDS_PER_TOKEN,
    ChunkSchedule,
    decoder_geometry,
)
from wyoming_xtts.text.speech_budget import max_speech_seconds

from .conftest import make_local_engine
from .support.clips import write_profile
from .support.sentences import CollectingSink, speak_directly
from .support.xtts_checkpoint import CheckpointShape, build_checkpoint

SEEDED = GenerationSettings(seed=7)


@pytest.fixture(scope="module")
def model(checkpoint_dir: Path) -> Xtts:
    config = XttsConfig()
    config.load_json(str(checkpoint_dir / "config.json"))
    xtts = Xtts(config)
    xtts.load_checkpoint(config, checkpoint_dir=str(checkpoint_dir), eval=True)
    return xtts


async def spoken_pieces(engine: XttsEngine, voice: Voice, text: str) -> list[np.ndarray]:
    return [piece async for piece in engine.synthesize(text, "en", voice)]


def seeded_voice(voices_dir: Path) -> Voice:
    write_profile(voices_dir, "steady", 'languages = ["en"]\n[synthesis]\nseed = 7\n')
    profile = VoiceLibrary(voices_dir, "en").find("steady")
    assert profile is not None
    return profile.voice


def decode_in_pieces(
    model: Xtts, latents: torch.Tensor, speaker: torch.Tensor, sizes: list[int], speed: float
) -> list[np.ndarray]:
    decoder = StreamingDecoder(
        model.hifigan_decoder.waveform_decoder, speaker, decoder_geometry(model), 1.0 / speed
    )
    pieces, added, turn = [], 0, 0
    with torch.inference_mode():
        while added < latents.shape[0]:
            for latent in latents[added : added + sizes[turn % len(sizes)]]:
                decoder.add(latent)
            added = min(added + sizes[turn % len(sizes)], latents.shape[0])
            turn += 1
            pieces.append(decoder.take_audio(final=added == latents.shape[0]))
    return pieces


def decode_whole(model: Xtts, latents: torch.Tensor, speaker: torch.Tensor, speed: float):
    """What coqui-tts decodes for a whole sentence (`inference_stream` at its last chunk)."""
    with torch.inference_mode():
        whole = latents.unsqueeze(0)
        if speed != 1.0:
            whole = F.interpolate(
                whole.transpose(1, 2), scale_factor=1.0 / speed, mode="linear"
            ).transpose(1, 2)
        return model.hifigan_decoder(whole, g=speaker).reshape(-1).numpy()


@pytest.mark.parametrize(
    ("length", "sizes", "speed"),
    [
        (37, [8, 8, 16, 32], 1.0),
        pytest.param(120, [3, 5, 48], 1.0, marks=pytest.mark.slow),  # 2-7 s each
        pytest.param(61, [8, 20], 1.3, marks=pytest.mark.slow),
        pytest.param(50, [1, 7], 0.8, marks=pytest.mark.slow),
    ],
)
def test_pieces_join_into_exactly_the_audio_of_one_whole_decode(
    model: Xtts, length: int, sizes: list[int], speed: float
) -> None:
    torch.manual_seed(length)
    latents = torch.randn(length, model.gpt.model_dim) * 2
    speaker = F.normalize(torch.randn(1, 512, 1), dim=1)

    pieces = decode_in_pieces(model, latents, speaker, sizes, speed)
    whole = decode_whole(model, latents, speaker, speed)

    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() <= 1e-6 * np.abs(whole).max() + 1e-7
    assert sum(1 for piece in pieces if piece.size) >= 3  # it really came in pieces


@pytest.mark.slow
def test_the_last_piece_is_complete_when_no_latent_came_after_the_previous_one(
    model: Xtts,
) -> None:
    torch.manual_seed(5)
    latents = torch.randn(40, model.gpt.model_dim)
    speaker = F.normalize(torch.randn(1, 512, 1), dim=1)
    decoder = StreamingDecoder(
        model.hifigan_decoder.waveform_decoder, speaker, decoder_geometry(model)
    )
    with torch.inference_mode():
        for latent in latents:
            decoder.add(latent)
        pieces = [decoder.take_audio(), decoder.take_audio(final=True)]

    assert pieces[1].size > 0
    assert np.concatenate(pieces).shape == decode_whole(model, latents, speaker, 1.0).shape


def test_streamed_decoding_computes_each_convolution_output_once(
    model: Xtts, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(3)
    latents = torch.randn(30, model.gpt.model_dim)
    speaker = F.normalize(torch.randn(1, 512, 1), dim=1)
    outputs = {"count": 0}
    convolve = F.conv1d

    def counted(signal: torch.Tensor, weight: torch.Tensor, *args: object, **kw: object):
        result = convolve(signal, weight, *args, **kw)  # type: ignore[arg-type]
        if weight.shape[-1] > 1:  # not the speaker's 1x1 conditioning, computed once
            outputs["count"] += result.shape[-1]
        return result

    monkeypatch.setattr(F, "conv1d", counted)
    decode_whole(model, latents, speaker, 1.0)
    whole = outputs["count"]
    outputs["count"] = 0
    decode_in_pieces(model, latents, speaker, [4, 3], 1.0)

    assert outputs["count"] == whole


def test_a_decoder_with_residual_blocks_it_cannot_stream_is_refused() -> None:
    generator = HifiganGenerator(8, 1, "2", [[1, 3]], [3], [4], 8, [2])

    with pytest.raises(ValueError, match="cannot stream"):
        StreamingHifigan(generator, torch.zeros(1, 512, 1))


def test_pieces_start_small_and_grow_with_the_audio_already_sent() -> None:
    schedule = ChunkSchedule(first_tokens=8, max_tokens=48)
    sizes, generated = [], 0
    while generated < 300:
        size = schedule.next_size(generated)
        sizes.append(size)
        generated += size

    assert sizes[:6] == [8, 8, 16, 32, 48, 48]
    assert max(sizes) == 48


@pytest.mark.slow
async def test_the_piece_sizes_never_change_the_audio(checkpoint_dir: Path, tmp_path: Path) -> None:
    voice = seeded_voice(tmp_path / "voices")
    text = "The same sentence, spoken twice."
    small = make_local_engine(
        checkpoint_dir, tmp_path / "data", schedule=ChunkSchedule(first_tokens=2)
    )
    await small.start()
    small_pieces = await spoken_pieces(small, voice, text)
    await small.close()
    large = make_local_engine(
        checkpoint_dir, tmp_path / "data", schedule=ChunkSchedule(first_tokens=48)
    )
    await large.start()
    large_pieces = await spoken_pieces(large, voice, text)
    await large.close()

    assert len(small_pieces) > len(large_pieces) == 1
    small_audio, large_audio = np.concatenate(small_pieces), np.concatenate(large_pieces)
    assert small_audio.shape == large_audio.shape
    assert np.abs(small_audio - large_audio).max() <= 1e-5


def test_a_listener_hanging_up_ends_generation_at_the_next_token(model: Xtts) -> None:
    steps: list[int] = []
    hook = model.gpt.gpt.register_forward_hook(lambda *_: steps.append(1))
    sink = CollectingSink(pieces_wanted=1)
    try:
        speak_directly(
            model, ["A sentence that is long enough to need several pieces of audio."], [sink], 2
        )
    finally:
        hook.remove()

    # The voice's prefix, the prompt, one step per token of the first piece, at most one more.
    assert len(sink.pieces) == 1 and not sink.finished
    assert len(steps) <= 1 + 1 + 2 + 1


def test_a_spoken_sentence_logs_its_audio_time_and_decoding_share_when_debugging(
    model: Xtts, caplog: pytest.LogCaptureFixture
) -> None:
    """What a user with `--debug` reads to see whether the machine is real time, and whether
    the decoder or the GPT holds it back."""
    sink = CollectingSink()
    with caplog.at_level(logging.DEBUG, logger="wyoming_xtts.engines.local.xtts_stream"):
        speak_directly(model, ["The washing machine is done."], [sink])

    spoke = [record for record in caplog.records if record.getMessage().startswith("Spoke ")]
    assert len(spoke) == 1 and sink.finished
    audio, took, rtf, decoding, decoding_rtf = spoke[0].args[1:]  # type: ignore[index,misc]
    assert audio == pytest.approx(np.concatenate(sink.pieces).size / 24000)
    assert 0 < decoding < took and rtf == pytest.approx(took / audio)
    assert decoding_rtf == pytest.approx(decoding / audio)


def test_only_the_gpt_runs_in_the_reduced_precision_context(model: Xtts) -> None:
    """fp16 on CUDA is an autocast around the GPT's steps; the decoder must stay in fp32.

    bf16 autocast on the CPU stands in for it here (no GPU in the tests).
    """
    entered: list[bool] = []

    def reduced_precision() -> torch.autocast:
        entered.append(True)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    sink = CollectingSink()
    speak_directly(
        model, ["A sentence in reduced precision."], [sink], 4, gpt_context=reduced_precision
    )
    pieces = sink.pieces

    assert sink.finished
    assert len(entered) > 10  # once for the prompt, once per token
    assert all(piece.dtype == np.float32 for piece in pieces)
    assert np.isfinite(np.concatenate(pieces)).all() and np.concatenate(pieces).size > 0


@pytest.mark.slow
async def test_generation_stops_at_the_texts_speech_budget_not_the_models_cap(
    tmp_path: Path,
) -> None:
    roomy = build_checkpoint(tmp_path / "roomy", CheckpointShape(max_audio_tokens=400))
    engine = make_local_engine(roomy, tmp_path / "data", schedule=ChunkSchedule(first_tokens=48))
    await engine.start()
    voice = seeded_voice(tmp_path / "voices")
    text = "Done."
    audio = np.concatenate(await spoken_pieces(engine, voice, text))
    await engine.close()

    # The test checkpoint never samples its stop token, so without the budget this would run to
    # the checkpoint's cap of 397 tokens (18 s).
    seconds = audio.size / engine.sample_rate
    assert 0 < seconds <= max_speech_seconds(text, "en") + SECONDS_PER_TOKEN


N100 = frozenset({"sse4_2", "avx", "avx2", "avx_vnni", "fma"})  # an Intel N100 mini PC
PI5 = frozenset({"fp", "asimd", "asimddp", "crc32"})  # a Raspberry Pi 5 (Cortex-A76)
OLD_ATOM = frozenset({"sse4_2", "ssse3"})  # no AVX2: int8 kernels crawl


@pytest.mark.parametrize(
    ("precision", "runtime", "device", "flags", "expected"),
    [
        ("auto", "auto", "cpu", N100, ("onnx", "int8")),
        ("auto", "auto", "cpu", PI5, ("onnx", "int8")),
        ("auto", "auto", "cpu", OLD_ATOM, ("onnx", "fp32")),
        ("auto", "auto", "cpu", frozenset(), ("onnx", "fp32")),
        ("auto", "onnx", "cpu", N100, ("onnx", "int8")),
        ("auto", "torch", "cpu", N100, ("torch", "fp32")),
        ("auto", "auto", "cuda", N100, ("torch", "fp16")),
        ("auto", "auto", "cuda:1", N100, ("torch", "fp16")),
        ("int8", "auto", "cpu", OLD_ATOM, ("onnx", "int8")),
        ("int4", "auto", "cpu", N100, ("onnx", "int4")),
        ("fp32", "auto", "cpu", N100, ("onnx", "fp32")),
        ("fp32", "torch", "cpu", N100, ("torch", "fp32")),
        ("fp32", "auto", "cuda", N100, ("torch", "fp32")),
    ],
)
def test_auto_picks_the_fastest_runtime_and_precision_the_device_runs_well(
    precision: Precision,
    runtime: GptRuntime,
    device: str,
    flags: frozenset[str],
    expected: tuple[str, str],
) -> None:
    assert resolve_gpt(precision, runtime, device, flags) == expected


def test_the_cpus_own_flags_are_read_and_the_choice_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="wyoming_xtts.engines.local.precision")
    flags = cpu_features()
    _, chosen = resolve_gpt("auto", "auto", "cpu")
    assert flags, "/proc/cpuinfo lists no CPU flags"
    assert chosen == ("int8" if int8_kernels(flags) else "fp32")
    assert f"Precision auto: {chosen} on ONNX Runtime" in caplog.text


@pytest.mark.parametrize(
    ("precision", "runtime", "device", "advice"),
    [
        ("fp16", "auto", "cpu", "--precision int8"),
        ("int8", "auto", "cuda", "--precision fp16"),
        ("int4", "torch", "cuda", "--precision fp16"),
        ("int8", "torch", "cpu", "--gpt-runtime onnx"),
        ("fp32", "onnx", "cuda", "--device cpu"),
    ],
)
def test_what_the_device_or_runtime_cannot_run_is_refused_with_advice(
    precision: Precision, runtime: GptRuntime, device: str, advice: str
) -> None:
    with pytest.raises(EngineUnavailableError, match=advice):
        resolve_gpt(precision, runtime, device)


NATIVE_BF16 = bool(cpu_features() & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize(
    ("device", "flags", "refusal"),
    [
        ("cpu", N100, "needs a CPU that multiplies bf16 natively"),
        ("cpu", PI5, "needs a CPU that multiplies bf16 natively"),
        ("cuda", N100 | {"avx512_bf16"}, "on a GPU"),
    ],
)
def test_a_bf16_decoder_is_refused_where_it_would_crawl(
    checkpoint_dir: Path, device: str, flags: frozenset[str], refusal: str
) -> None:
    model, _ = read_checkpoint(checkpoint_dir, use_deepspeed=False)
    with pytest.raises(EngineUnavailableError, match=refusal):
        waveform_decoder(model, "bf16", device, flags)
    assert waveform_decoder(model, "fp32", device, flags) is model.hifigan_decoder.waveform_decoder


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bf16 (avx512_bf16, amx_bf16)")
async def test_a_bf16_decoder_speaks_the_fp32_decoders_audio_within_its_rounding(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    voice = seeded_voice(tmp_path / "voices")
    text = "A sentence through both decoders."
    heard = {}
    for precision in ("fp32", "bf16"):
        engine = make_local_engine(
            checkpoint_dir, tmp_path / "data", precision="fp32", decoder_precision=precision
        )
        await engine.start()
        heard[precision] = np.concatenate(await spoken_pieces(engine, voice, text))
        await engine.close()

    reference, rounded = heard["fp32"], heard["bf16"]
    snr = 10 * np.log10(np.sum(reference**2) / np.sum((rounded - reference) ** 2))
    assert rounded.shape == reference.shape and rounded.dtype == np.float32
    assert 15 < snr < 80, snr  # close to fp32's audio, and not fp32's audio


async def test_deepspeed_without_a_gpu_is_refused_before_loading(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    engine = make_local_engine(checkpoint_dir, tmp_path, deepspeed=True)
    with pytest.raises(EngineUnavailableError, match="--deepspeed needs a CUDA GPU"):
        await engine.start()
    await engine.close()
