"""Several sentences generated at once by the local model, sharing each GPT step."""

import asyncio
import time
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.models.xtts import Xtts
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.core.errors import ErrorCode, SpeechError
from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.engines.local.engine import XttsEngine
from wyoming_xtts.engines.local.gpt_batch import GptBatch, StepOutput, VoicePrefixes

from .conftest import RecordingEngine, audio_bytes, make_local_engine, serving
from .support.clips import write_profile
from .support.sentences import CollectingSink, speak_directly
from .support.xtts_checkpoint import CheckpointShape, build_checkpoint

TEXTS = (
    "The washing machine is done.",
    "Someone is at the front door, and they brought a parcel.",
    "Dinner is ready.",
    "It will rain this afternoon, so take an umbrella when you leave.",
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Xtts:
    """The tiny checkpoint, with room for 60 audio tokens per sentence."""
    directory = build_checkpoint(
        tmp_path_factory.mktemp("batching") / "checkpoint", CheckpointShape(max_audio_tokens=60)
    )
    config = XttsConfig()
    config.load_json(str(directory / "config.json"))
    xtts = Xtts(config)
    xtts.load_checkpoint(config, checkpoint_dir=str(directory), eval=True)
    return xtts


def conditioning(model: Xtts, seed: int) -> torch.Tensor:
    return torch.randn(1, 32, model.gpt.model_dim, generator=torch.Generator().manual_seed(seed))


def tokens_of(model: Xtts, text: str) -> torch.Tensor:
    return torch.tensor(model.tokenizer.encode(text.lower(), lang="en"), dtype=torch.int32)


def test_a_sentence_alone_is_generated_exactly_as_coqui_tts_generates_it(model: Xtts) -> None:
    settings = GenerationSettings()
    cond, text = conditioning(model, 1), tokens_of(model, TEXTS[1])
    with torch.inference_mode():
        prompt = model.gpt.compute_embeddings(cond, text.unsqueeze(0))
        torch.manual_seed(11)
        reference = model.gpt.get_generator(
            fake_inputs=prompt,
            top_k=settings.top_k,
            top_p=settings.top_p,
            temperature=settings.temperature,
            do_sample=True,
            num_beams=1,
            num_return_sequences=1,
            length_penalty=float(settings.length_penalty),
            repetition_penalty=float(settings.repetition_penalty),
            output_attentions=False,
            output_hidden_states=True,
            return_dict_in_generate=True,
        )
        expected = [(int(token), latent[0]) for token, latent in islice(reference, 40)]

        batch = GptBatch(model.gpt, torch.inference_mode)
        sampler = batch.sampler(settings, torch.Generator().manual_seed(11))
        output = batch.join(batch.voice_prefix(cond), text)
        generated = []
        for _ in range(40):
            token = sampler.draw(output.logits)
            generated.append((token, output.latent))
            output = batch.step([token])[0]

    assert [token for token, _ in generated] == [token for token, _ in expected]
    for (_, ours), (_, theirs) in zip(generated, expected, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_sentences_sharing_steps_get_the_latents_they_get_alone(model: Xtts) -> None:
    """Fed the same tokens, each sentence's latents and scores match its unbatched ones, with
    sentences of different lengths joining and leaving while others are under way."""
    fed = [[(7 * step + 131 * row) % 1024 for step in range(30)] for row in range(3)]
    with torch.inference_mode():
        prefixes = GptBatch(model.gpt, torch.inference_mode)
        prompts = [
            (prefixes.voice_prefix(conditioning(model, row)), tokens_of(model, TEXTS[row]))
            for row in range(3)
        ]

    def alone(row: int) -> list[StepOutput]:
        batch = GptBatch(model.gpt, torch.inference_mode)
        outputs = [batch.join(*prompts[row])]
        outputs += [batch.step([token])[0] for token in fed[row]]
        return outputs

    with torch.inference_mode():
        expected = [alone(row) for row in range(3)]
        batch = GptBatch(model.gpt, torch.inference_mode)
        shared: list[list[StepOutput]] = [[batch.join(*prompts[0])], [], []]
        rows = [0]
        for step in range(30):
            if step in (5, 9):  # a longer, then a shorter prompt joins mid-sentence
                row = 1 if step == 5 else 2
                shared[row].append(batch.join(*prompts[row]))
                rows.append(row)
            if step == 20:  # the first sentence leaves; its padding goes with it
                batch.leave([rows.index(0)])
                rows.remove(0)
            outputs = batch.step([fed[row][len(shared[row]) - 1] for row in rows])
            for row, output in zip(rows, outputs, strict=True):
                shared[row].append(output)

    assert [len(outputs) for outputs in shared] == [21, 26, 22]
    for row in range(3):
        for ours, theirs in zip(shared[row], expected[row], strict=False):
            torch.testing.assert_close(ours.latent, theirs.latent, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ours.logits, theirs.logits, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_each_sentence_samples_from_its_own_seeded_generator(model: Xtts) -> None:
    texts, seeds = list(TEXTS[:3]), [7, 8, 9]
    together = [CollectingSink() for _ in texts]
    speak_directly(model, texts, together, seeds=seeds)
    alone = []
    for text, seed in zip(texts, seeds, strict=True):
        sink = CollectingSink()
        speak_directly(model, [text], [sink], seeds=[seed])
        alone.append(sink)

    for shared, single in zip(together, alone, strict=True):
        assert shared.finished and single.finished
        shared_audio, single_audio = np.concatenate(shared.pieces), np.concatenate(single.pieces)
        assert shared_audio.shape == single_audio.shape
        np.testing.assert_allclose(shared_audio, single_audio, atol=1e-4)
    reseeded = CollectingSink()
    speak_directly(model, [texts[0]], [reseeded], seeds=[70])
    assert not np.array_equal(np.concatenate(reseeded.pieces), np.concatenate(alone[0].pieces))


@pytest.mark.slow
def test_a_sentence_that_cannot_be_spoken_fails_alone(model: Xtts) -> None:
    texts = [TEXTS[0], "far too long " * 300, TEXTS[2]]
    sinks = [CollectingSink() for _ in texts]
    speak_directly(model, texts, sinks)

    assert isinstance(sinks[1].error, SpeechError)
    assert sinks[1].error.code is ErrorCode.TEXT_TOO_LONG and not sinks[1].pieces
    assert all(sink.finished and sink.error is None for sink in (sinks[0], sinks[2]))


@pytest.mark.slow
def test_a_sentence_that_samples_its_stop_token_ends_there_and_the_others_go_on(
    model: Xtts,
) -> None:
    """The test checkpoint never samples its stop token by itself: here the middle sentence's
    11th token is made the stop token, as a trained model ends a sentence."""
    texts = list(TEXTS[:3])
    stop, steps_of_three = model.gpt.stop_audio_token, []

    def stop_the_middle_sentence(
        module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], logits: torch.Tensor
    ) -> torch.Tensor:
        if logits.shape[0] != 3:
            return logits
        steps_of_three.append(logits.shape[0])
        if len(steps_of_three) == 10:  # the join gave token 1, this step gives token 11
            logits = logits.clone()
            logits[1, stop] = 1e4
        return logits

    sinks = [CollectingSink() for _ in texts]
    hook = model.gpt.mel_head.register_forward_hook(stop_the_middle_sentence)
    try:
        speak_directly(model, texts, sinks)
    finally:
        hook.remove()
    alone = [CollectingSink() for _ in texts]
    for text, sink in zip(texts, alone, strict=True):
        speak_directly(model, [text], [sink])

    assert all(sink.finished and sink.error is None for sink in sinks)
    stopped, unstopped = sinks[1].pieces, alone[1].pieces
    samples_per_token = 1024 * 24000 / 22050
    assert abs(np.concatenate(stopped).size - 11 * samples_per_token) < samples_per_token
    assert np.concatenate(stopped).size < np.concatenate(unstopped).size
    np.testing.assert_allclose(stopped[0], unstopped[0], atol=1e-4)  # the same until the stop
    for row in (0, 2):
        np.testing.assert_allclose(
            np.concatenate(sinks[row].pieces), np.concatenate(alone[row].pieces), atol=1e-4
        )


@pytest.mark.slow
def test_a_listener_hanging_up_leaves_the_others_their_whole_sentences(model: Xtts) -> None:
    texts = list(TEXTS[:3])
    sinks = [CollectingSink(), CollectingSink(pieces_wanted=1), CollectingSink()]
    speak_directly(model, texts, sinks, first_tokens=2)
    alone = CollectingSink()
    speak_directly(model, [texts[2]], [alone], first_tokens=2)

    assert len(sinks[1].pieces) == 1 and not sinks[1].finished
    assert sinks[0].finished and sinks[2].finished
    np.testing.assert_allclose(
        np.concatenate(sinks[2].pieces), np.concatenate(alone.pieces), atol=1e-4
    )


async def timed_request(port: int, text: str) -> tuple[float, float, list[Event]]:
    """Seconds to the first audio chunk and to `audio-stop`, and the events."""
    started = time.monotonic()
    first_audio = 0.0
    events: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(
            Synthesize(text=text, voice=SynthesizeVoice(name="steady")).event()
        )
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            assert event is not None
            events.append(event)
            if event.type == "audio-chunk" and not first_audio:
                first_audio = time.monotonic() - started
            if event.type == "audio-stop":
                return first_audio, time.monotonic() - started, events


@pytest.fixture(scope="module")
def roomy_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Room for 400 audio tokens: each sentence runs to its speech budget (random weights)."""
    return build_checkpoint(
        tmp_path_factory.mktemp("roomy") / "checkpoint", CheckpointShape(max_audio_tokens=400)
    )


async def speak_over_wyoming(
    engine: XttsEngine, tmp_path: Path, texts: list[str]
) -> list[tuple[float, float, list[Event]]]:
    write_profile(tmp_path / "voices", "steady", 'languages = ["en"]\n[synthesis]\nseed = 7\n')
    settings = Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data")
    async with serving(settings, RecordingEngine(engine)) as port:
        return list(await asyncio.gather(*(timed_request(port, text) for text in texts)))


@pytest.mark.slow
async def test_four_clients_at_once_all_hear_audio_before_any_of_them_is_done(
    roomy_checkpoint: Path, tmp_path: Path
) -> None:
    engine = make_local_engine(roomy_checkpoint, tmp_path / "data", precision="fp32")
    await engine.start()
    try:
        together = await speak_over_wyoming(engine, tmp_path, list(TEXTS))
        alone = [(await speak_over_wyoming(engine, tmp_path, [text]))[0] for text in TEXTS]
    finally:
        await engine.close()

    last_first_audio = max(first for first, _, _ in together)
    first_done = min(done for _, done, _ in together)
    assert last_first_audio < first_done  # taking turns whole, the fourth starts after three end
    for (_, _, shared), (_, _, single) in zip(together, alone, strict=True):
        shared_pcm = np.frombuffer(audio_bytes(shared), np.int16).astype(np.int32)
        single_pcm = np.frombuffer(audio_bytes(single), np.int16).astype(np.int32)
        assert shared_pcm.shape == single_pcm.shape and shared_pcm.size > 24000
        assert np.abs(shared_pcm - single_pcm).max() <= 4  # a seeded voice, batched or not


def test_a_voices_conditioning_is_run_once_for_all_its_sentences(model: Xtts) -> None:
    positions: list[int] = []
    hook = model.gpt.gpt.register_forward_pre_hook(
        lambda _module, _args, kwargs: positions.append(kwargs["inputs_embeds"].shape[1]),
        with_kwargs=True,
    )
    grandma, grandpa = (conditioning(model, seed).numpy() for seed in (1, 2))
    prefixes = VoicePrefixes(capacity=1)
    try:
        with torch.inference_mode():
            batch = GptBatch(model.gpt, torch.inference_mode)
            first = prefixes.get(batch, grandma, "cpu")
            again = prefixes.get(batch, grandma.copy(), "cpu")
            prefixes.get(batch, grandpa, "cpu")  # evicts grandma's (capacity 1)
            prefixes.get(batch, grandma, "cpu")
            batch.join(again, tokens_of(model, TEXTS[0]))
    finally:
        hook.remove()

    assert again is first
    text_positions = len(tokens_of(model, TEXTS[0])) + 3  # start, stop, audio start
    assert positions == [32, 32, 32, text_positions]
