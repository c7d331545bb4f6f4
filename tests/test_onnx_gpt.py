"""The GPT's token loop on ONNX Runtime (`--gpt-runtime onnx`): PyTorch's numbers, kept export."""

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from TTS.tts.models.xtts import Xtts

from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.engines.local import onnx_gpt
from wyoming_xtts.engines.local.checkpoint import read_checkpoint
from wyoming_xtts.engines.local.gpt_batch import GptBatch, StepOutput, VoicePrefixes
from wyoming_xtts.engines.local.onnx_gpt import CacheBuffer, OnnxGpt, OnnxGptBatch
from wyoming_xtts.engines.local.xtts_stream import token_budget

from .conftest import RecordingEngine, audio_bytes, make_local_engine, serving
from .support.clips import write_profile
from .support.sentences import CollectingSink, speak_directly
from .support.xtts_checkpoint import CheckpointShape, build_checkpoint
from .test_batching import TEXTS, conditioning, timed_request, tokens_of

SAMPLES_PER_TOKEN = 1024 * 24000 / 22050


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint, with room for 60 audio tokens per sentence."""
    return build_checkpoint(
        tmp_path_factory.mktemp("onnx") / "checkpoint", CheckpointShape(max_audio_tokens=60)
    )


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> Xtts:
    xtts, _ = read_checkpoint(checkpoint, use_deepspeed=False)
    return xtts


@pytest.fixture(scope="module")
def graph(model: Xtts, tmp_path_factory: pytest.TempPathFactory) -> OnnxGpt:
    export = onnx_gpt.ensure_export(model.gpt, tmp_path_factory.mktemp("data"), "tiny")
    return OnnxGpt(export.directory, len(model.gpt.gpt.h))


def test_the_onnx_graph_samples_pytorchs_tokens_for_the_same_seed_and_latents(
    model: Xtts, graph: OnnxGpt
) -> None:
    settings = GenerationSettings()
    cond, text = conditioning(model, 1), tokens_of(model, TEXTS[1])

    def generate(batch: GptBatch | OnnxGptBatch) -> list[tuple[int, StepOutput]]:
        sampler = batch.sampler(settings, torch.Generator().manual_seed(11))
        output = batch.join(batch.voice_prefix(cond), text)
        generated = []
        for _ in range(40):
            token = sampler.draw(output.logits)
            generated.append((token, output))
            output = batch.step([token])[0]
        return generated

    with torch.inference_mode():
        expected = generate(GptBatch(model.gpt, torch.inference_mode))
        ours = generate(OnnxGptBatch(model.gpt, graph))

    assert [token for token, _ in ours] == [token for token, _ in expected]
    for (_, mine), (_, theirs) in zip(ours, expected, strict=True):
        torch.testing.assert_close(mine.latent, theirs.latent, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(mine.logits, theirs.logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("growth", [onnx_gpt.CACHE_GROWTH, 3])
def test_sentences_sharing_onnx_steps_get_pytorchs_latents_alone(
    model: Xtts, graph: OnnxGpt, growth: int
) -> None:
    """Fed the same tokens, each sentence batched on ONNX Runtime gets what PyTorch gives it
    alone, with sentences of different lengths joining and leaving while others go on (and,
    with room for 3 more positions at a time, the cache outgrowing its buffer again and
    again)."""
    fed = [[(7 * step + 131 * row) % 1024 for step in range(30)] for row in range(3)]
    with torch.inference_mode():
        torch_batch = GptBatch(model.gpt, torch.inference_mode)
        prompts = [
            (torch_batch.voice_prefix(conditioning(model, row)), tokens_of(model, TEXTS[row]))
            for row in range(3)
        ]

        def alone(row: int) -> list[StepOutput]:
            batch = GptBatch(model.gpt, torch.inference_mode)
            outputs = [batch.join(*prompts[row])]
            outputs += [batch.step([token])[0] for token in fed[row]]
            return outputs

        expected = [alone(row) for row in range(3)]
        onnx_batch = OnnxGptBatch(model.gpt, graph, growth)
        onnx_prompts = [
            (onnx_batch.voice_prefix(conditioning(model, row)), tokens_of(model, TEXTS[row]))
            for row in range(3)
        ]
        shared: list[list[StepOutput]] = [[onnx_batch.join(*onnx_prompts[0])], [], []]
        rows = [0]
        for step in range(30):
            if step in (5, 9):  # a longer, then a shorter prompt joins mid-sentence
                row = 1 if step == 5 else 2
                shared[row].append(onnx_batch.join(*onnx_prompts[row]))
                rows.append(row)
            if step == 20:  # the first sentence leaves; its padding goes with it
                onnx_batch.leave([rows.index(0)])
                rows.remove(0)
            outputs = onnx_batch.step([fed[row][len(shared[row]) - 1] for row in rows])
            for row, output in zip(rows, outputs, strict=True):
                shared[row].append(output)

    assert [len(outputs) for outputs in shared] == [21, 26, 22]
    for row in range(3):
        for ours, theirs in zip(shared[row], expected[row], strict=False):
            torch.testing.assert_close(ours.latent, theirs.latent, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ours.logits, theirs.logits, rtol=1e-5, atol=1e-5)


def test_a_step_appends_to_the_cache_in_place_and_copies_it_only_to_grow(
    model: Xtts, graph: OnnxGpt
) -> None:
    with torch.inference_mode():
        batch = OnnxGptBatch(model.gpt, graph, growth=16)
        for row in range(2):
            batch.join(batch.voice_prefix(conditioning(model, row)), tokens_of(model, TEXTS[row]))
        assert batch.cache is not None
        lengths = list(batch.cache.lengths)
        copies = 0
        for step in range(40):
            before = batch.cache
            batch.step([step, step + 1])
            if batch.cache.tensor.data_ptr() != before.tensor.data_ptr():
                copies += 1
                assert max(before.lengths) == before.capacity, "copied while there was room"
        cache = batch.cache

    assert cache.lengths == [length + 40 for length in lengths]
    assert cache.capacity % 16 == 0 and 0 < cache.capacity - max(cache.lengths) <= 16
    assert copies in (2, 3), "once per 16 positions"
    for row, length in enumerate(cache.lengths):
        keys = cache.tensor[:, 0, row]  # every layer's keys of this row
        assert keys[:, :, length - 1].abs().sum() > 0, "the last step's keys were written"
        assert keys[:, :, length:].abs().sum() == 0, "nothing past a row's length"


def test_the_graph_runs_each_layers_attention_as_one_operation_on_the_cache_it_updates(
    model: Xtts, graph: OnnxGpt, tmp_path: Path
) -> None:
    import onnx

    export = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny")
    nodes = onnx.load(str(export.directory / onnx_gpt.MODEL_FILE), load_external_data=False)
    attention = [node for node in nodes.graph.node if node.op_type == "GroupQueryAttention"]

    assert len(attention) == len(model.gpt.gpt.h)
    assert not [node for node in nodes.graph.node if node.op_type in ("Concat", "Softmax")]
    for layer, node in enumerate(attention):
        assert list(node.input)[3:5] == [f"past.{layer}.key", f"past.{layer}.value"]
        assert list(node.output)[1:] == [f"present.{layer}.key", f"present.{layer}.value"]


class _StopsRowAtStep(OnnxGptBatch):
    """Makes one row's prediction at one batched step the stop token, as a trained model ends
    a sentence (the tiny checkpoint never samples it), and counts the steps."""

    def __init__(self, model: Xtts, graph: OnnxGpt, row: int | None, at_step: int) -> None:
        super().__init__(model.gpt, graph)
        self.steps: list[int] = []
        self._row, self._at = row, at_step

    def step(self, tokens: Sequence[int]) -> list[StepOutput]:
        outputs = super().step(tokens)
        self.steps.append(len(tokens))
        if self._row is not None and len(self.steps) == self._at:
            logits = outputs[self._row].logits.clone()
            logits[self.stop_token] = 1e4
            outputs[self._row] = StepOutput(outputs[self._row].latent, logits)
        return outputs


@pytest.mark.slow
def test_a_sentence_stops_within_a_token_on_onnx_and_the_others_go_on(
    model: Xtts, graph: OnnxGpt
) -> None:
    texts = list(TEXTS[:3])
    sinks = [CollectingSink() for _ in texts]
    stopping = _StopsRowAtStep(model, graph, row=1, at_step=10)  # the join gave token 1
    speak_directly(model, texts, sinks, new_batch=lambda: stopping)
    alone = CollectingSink()
    speak_directly(model, [texts[1]], [alone], new_batch=lambda: OnnxGptBatch(model.gpt, graph))

    assert all(sink.finished and sink.error is None for sink in sinks)
    stopped = np.concatenate(sinks[1].pieces)
    assert abs(stopped.size - 11 * SAMPLES_PER_TOKEN) < SAMPLES_PER_TOKEN
    np.testing.assert_allclose(sinks[1].pieces[0], alone.pieces[0], atol=1e-4)  # same till then
    cap = int(model.gpt.max_gen_mel_tokens)  # the others run on to the test checkpoint's cap
    for row in (0, 2):
        spoken = np.concatenate(sinks[row].pieces).size
        assert abs(spoken - min(cap, token_budget(model, texts[row], "en")) * SAMPLES_PER_TOKEN) < (
            SAMPLES_PER_TOKEN
        )


@pytest.mark.slow
def test_no_onnx_step_goes_past_the_speech_budget(tmp_path: Path) -> None:
    """Room for 400 audio tokens: the sentence runs to its speech budget (random weights)."""
    roomy = build_checkpoint(tmp_path / "checkpoint", CheckpointShape(max_audio_tokens=400))
    model, _ = read_checkpoint(roomy, use_deepspeed=False)
    export = onnx_gpt.ensure_export(model.gpt, tmp_path / "data", "roomy")
    graph = OnnxGpt(export.directory, len(model.gpt.gpt.h))
    text = TEXTS[2]
    budget = token_budget(model, text, "en")
    counting = _StopsRowAtStep(model, graph, row=None, at_step=0)
    sink = CollectingSink()
    speak_directly(model, [text], [sink], new_batch=lambda: counting)

    assert sink.finished and budget < int(model.gpt.max_gen_mel_tokens)
    assert len(counting.steps) == budget - 1  # the prompt pass predicts the first token
    assert abs(np.concatenate(sink.pieces).size - budget * SAMPLES_PER_TOKEN) < SAMPLES_PER_TOKEN


class _CountingGraph:
    """An `OnnxGpt` that records how many new positions each pass feeds it."""

    def __init__(self, graph: OnnxGpt) -> None:
        self.positions: list[int] = []
        self._graph = graph

    def run(
        self, embeds: torch.Tensor, cache: CacheBuffer, row: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.positions.append(embeds.shape[1])
        return self._graph.run(embeds, cache, row)


def test_a_voices_conditioning_is_run_once_on_onnx_for_all_its_sentences(
    model: Xtts, graph: OnnxGpt
) -> None:
    counting = _CountingGraph(graph)
    batch = OnnxGptBatch(model.gpt, counting)  # type: ignore[arg-type]
    grandma, grandpa = (conditioning(model, seed).numpy() for seed in (1, 2))
    prefixes = VoicePrefixes(capacity=1)
    with torch.inference_mode():
        first = prefixes.get(batch, grandma, "cpu")
        again = prefixes.get(batch, grandma.copy(), "cpu")
        prefixes.get(batch, grandpa, "cpu")  # evicts grandma's (capacity 1)
        prefixes.get(batch, grandma, "cpu")
        batch.join(again, tokens_of(model, TEXTS[0]))

    assert again is first
    assert counting.positions == [32, 32, 32, len(tokens_of(model, TEXTS[0])) + 3]
    with torch.inference_mode():
        expected = GptBatch(model.gpt, torch.inference_mode).voice_prefix(torch.from_numpy(grandma))
    for (keys, values), (their_keys, their_values) in zip(
        first.layers, expected.layers, strict=True
    ):
        torch.testing.assert_close(keys, their_keys, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(values, their_values, rtol=1e-5, atol=1e-5)


def test_an_export_for_a_changed_checkpoint_is_made_again_and_the_old_one_removed(
    model: Xtts, tmp_path: Path
) -> None:
    first = onnx_gpt.ensure_export(model.gpt, tmp_path, "checkpoint-a")
    again = onnx_gpt.ensure_export(model.gpt, tmp_path, "checkpoint-a")
    changed = onnx_gpt.ensure_export(model.gpt, tmp_path, "checkpoint-b")

    assert first.seconds > 0 and again.seconds == 0 and again.directory == first.directory
    assert changed.seconds > 0 and changed.directory != first.directory
    assert [path.name for path in (tmp_path / "onnx").iterdir()] == [changed.directory.name]
    manifest = json.loads((changed.directory / onnx_gpt.MANIFEST_FILE).read_text())
    assert manifest["checkpoint"] == "checkpoint-b"


def test_a_corrupt_export_is_detected_logged_and_made_again(
    model: Xtts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    export = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny")
    graph_file = export.directory / onnx_gpt.MODEL_FILE
    damaged = bytearray(graph_file.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte, the size unchanged
    graph_file.write_bytes(bytes(damaged))
    assert onnx_gpt.verify_export(export.directory) == "gpt.onnx does not match its checksum"

    with caplog.at_level(logging.WARNING):
        remade = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny")
    assert remade.seconds > 0 and onnx_gpt.verify_export(remade.directory) is None
    assert "unusable (gpt.onnx does not match its checksum): exporting again" in caplog.text

    (remade.directory / onnx_gpt.MANIFEST_FILE).write_text('{"files": ')  # cut short
    assert onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny").seconds > 0


def test_an_export_onnx_runtime_cannot_read_is_made_again_once(model: Xtts, tmp_path: Path) -> None:
    """Files that match their manifest but are no graph (written so by something else)."""
    export = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny")
    (export.directory / onnx_gpt.MODEL_FILE).write_bytes(b"not a graph")
    manifest_path = export.directory / onnx_gpt.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = {
        onnx_gpt.MODEL_FILE: {"size": 11, "sha256": onnx_gpt._digest(export.directory / "gpt.onnx")}
    }
    manifest_path.write_text(json.dumps(manifest))

    session, remade = onnx_gpt.load_onnx_gpt(model.gpt, tmp_path, "tiny", "fp32")
    assert remade.seconds > 0 and isinstance(session, OnnxGpt)


def test_a_gpt_the_graph_does_not_compute_is_refused_with_the_setting_named(
    model: Xtts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model.gpt.gpt.config, "activation_function", "relu")

    with pytest.raises(onnx_gpt.OnnxExportError, match="activation_function='relu'"):
        onnx_gpt.ensure_export(model.gpt, tmp_path, "relu")
    assert not [path for path in (tmp_path / "onnx").iterdir()], "nothing half-written kept"


def test_a_half_written_export_is_never_used(model: Xtts, tmp_path: Path) -> None:
    key = onnx_gpt.export_key("tiny", "fp32")
    abandoned = tmp_path / "onnx" / f".{key}.crashed.tmp"
    abandoned.mkdir(parents=True)
    (abandoned / onnx_gpt.MODEL_FILE).write_bytes(b"half")
    export = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny")

    assert export.seconds > 0 and export.directory.name == key
    assert not abandoned.exists()  # cleared once the export is in place


# -- block-quantised weights (--precision int8, int4) --------------------------------------


@pytest.fixture(scope="module")
def quantised(model: Xtts, tmp_path_factory: pytest.TempPathFactory) -> dict[str, OnnxGpt]:
    data = tmp_path_factory.mktemp("quantised")
    graphs = {}
    for precision in ("int8", "int4"):
        export = onnx_gpt.ensure_export(model.gpt, data / precision, "tiny", precision)
        graphs[precision] = OnnxGpt(export.directory, len(model.gpt.gpt.h))
    return graphs


@pytest.mark.parametrize(("precision", "bits"), [("int8", 8), ("int4", 4)])
def test_a_quantised_export_holds_the_blocks_weights_in_blocks_of_32_and_the_head_in_float(
    model: Xtts, precision: str, bits: int, tmp_path: Path
) -> None:
    import onnx

    export = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny", precision)  # type: ignore[arg-type]
    graph = onnx.load(str(export.directory / onnx_gpt.MODEL_FILE))
    quantised = [node for node in graph.graph.node if node.op_type == "MatMulNBits"]
    attributes = [
        {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in quantised
    ]
    manifest = json.loads((export.directory / onnx_gpt.MANIFEST_FILE).read_text())

    assert len(quantised) == 4 * len(model.gpt.gpt.h), "qkv, attention out, MLP in and out"
    assert {(a["bits"], a["block_size"], a["accuracy_level"]) for a in attributes} == {
        (bits, 32, 4)
    }
    assert [node.op_type for node in graph.graph.node if "mel_head" in node.name] == ["Gemm"]
    assert sorted(path.name for path in export.directory.iterdir()) == ["gpt.onnx", "manifest.json"]
    assert manifest["precision"] == precision and onnx_gpt.verify_export(export.directory) is None


def fed_steps(
    batch: OnnxGptBatch | GptBatch, model: Xtts, row: int, tokens: list[int]
) -> list[StepOutput]:
    """A sentence alone, fed `tokens` (teacher forcing: the same for every precision)."""
    outputs = [
        batch.join(batch.voice_prefix(conditioning(model, row)), tokens_of(model, TEXTS[row]))
    ]
    return outputs + [batch.step([token])[0] for token in tokens]


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_a_quantised_sentences_numbers_do_not_depend_on_the_sentences_sharing_its_steps(
    model: Xtts, quantised: dict[str, OnnxGpt], precision: str
) -> None:
    """Each row's activations are quantised on their own (per block of 32), never with a
    scale shared across the batch as PyTorch's dynamic int8 did."""
    graph = quantised[precision]
    fed = [[(7 * step + 131 * row) % 1024 for step in range(20)] for row in range(3)]
    with torch.inference_mode():
        alone = [
            fed_steps(OnnxGptBatch(model.gpt, graph), model, row, fed[row]) for row in range(3)
        ]
        batch = OnnxGptBatch(model.gpt, graph)
        shared = [
            [batch.join(batch.voice_prefix(conditioning(model, row)), tokens_of(model, TEXTS[row]))]
            for row in range(3)
        ]
        for step in range(20):
            for row, output in enumerate(batch.step([fed[row][step] for row in range(3)])):
                shared[row].append(output)

    for row in range(3):
        for ours, theirs in zip(shared[row], alone[row], strict=True):
            torch.testing.assert_close(ours.latent, theirs.latent, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ours.logits, theirs.logits, rtol=1e-5, atol=1e-5)


def test_int8_stays_closer_to_fp32_than_int4_on_the_same_tokens(
    model: Xtts, graph: OnnxGpt, quantised: dict[str, OnnxGpt]
) -> None:
    fed = [(5 * step + 17) % 1024 for step in range(30)]
    with torch.inference_mode():
        reference = torch.stack(
            [
                out.latent
                for out in fed_steps(GptBatch(model.gpt, torch.inference_mode), model, 0, fed)
            ]
        )
        error = {}
        for precision, quantised_graph in quantised.items():
            latents = torch.stack(
                [
                    out.latent
                    for out in fed_steps(OnnxGptBatch(model.gpt, quantised_graph), model, 0, fed)
                ]
            )
            error[precision] = float((latents - reference).pow(2).mean().sqrt() / reference.std())

    assert 0 < error["int8"] < error["int4"] < 0.05, error


def test_an_export_in_another_precision_replaces_the_one_before(
    model: Xtts, tmp_path: Path
) -> None:
    fp32 = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny", "fp32")
    fp32_bytes = sum(path.stat().st_size for path in fp32.directory.iterdir())
    int4 = onnx_gpt.ensure_export(model.gpt, tmp_path, "tiny", "int4")

    assert int4.directory != fp32.directory and int4.seconds > 0
    assert [path.name for path in (tmp_path / "onnx").iterdir()] == [int4.directory.name]
    assert sum(path.stat().st_size for path in int4.directory.iterdir()) < fp32_bytes * 0.7


@pytest.mark.slow
async def test_a_server_with_the_onnx_gpt_streams_pytorchs_audio_to_a_client(
    checkpoint: Path, tmp_path: Path
) -> None:
    write_profile(tmp_path / "voices", "steady", 'languages = ["en"]\n[synthesis]\nseed = 7\n')
    settings = Settings(voices_dir=tmp_path / "voices", data_dir=tmp_path / "data")
    heard = {}
    for runtime in ("onnx", "torch"):
        engine = make_local_engine(
            checkpoint, tmp_path / "data", precision="fp32", gpt_runtime=runtime
        )
        await engine.start()
        try:
            if runtime == "onnx":
                assert "ONNX Runtime" in engine.info.description
                assert engine.cache_identity is not None and engine.cache_identity.endswith(":onnx")
            async with serving(settings, RecordingEngine(engine)) as port:
                replies = await asyncio.gather(*(timed_request(port, text) for text in TEXTS[:2]))
        finally:
            await engine.close()
        heard[runtime] = [audio_bytes(events) for _, _, events in replies]

    assert [path.parent.name for path in (tmp_path / "data").glob("onnx/*/gpt.onnx")]
    for ours, theirs in zip(heard["onnx"], heard["torch"], strict=True):
        onnx_pcm = np.frombuffer(ours, np.int16).astype(np.int32)
        torch_pcm = np.frombuffer(theirs, np.int16).astype(np.int32)
        assert onnx_pcm.shape == torch_pcm.shape and onnx_pcm.size > 24000
        assert np.abs(onnx_pcm - torch_pcm).max() <= 4
