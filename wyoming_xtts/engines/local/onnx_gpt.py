"""XTTS-v2's GPT token loop on ONNX Runtime (`--gpt-runtime onnx`, fp32).

One ONNX graph of the engine's own, exported once from the loaded checkpoint, runs every
GPT pass the engine makes: a voice's conditioning prefix, a sentence's prompt after it and
each token step. Its inputs are the new positions' input embeddings (computed in PyTorch from
coqui-tts' embedding tables, exactly as `gpt_batch.GptBatch` does), the attention mask over
cached and new positions (1 real, 0 left padding) and each layer's cached keys and values; its
outputs are the last position's audio-token logits, its latent (the hidden state after the
transformer's `ln_f` and XTTS' `final_norm`, what the HiFi-GAN decoder needs: no second pass to
recompute latents, so the audio streams) and each layer's keys and values with the new
positions appended. The prompt pass and the one-token step are the same graph at two lengths:
two graphs would hold the weights twice, on disk and in memory.

The graph is built from coqui-tts' public model pieces, the GPT-2 blocks' own layers (layer
norms, `c_attn`, `c_proj`, the MLP), with the attention written out as transformers' GPT-2
computes it (scaled by the head width's root, padding and future positions masked), so it
gives PyTorch's numbers within float rounding (tested: the same tokens for the same seed).

The export is kept under the data directory, keyed by the checkpoint's fingerprint and the
versions of everything that shapes the graph (`export_key`); it is written to a temporary
directory and renamed into place whole, with a manifest of its files' sizes and SHA-256
digests, which is checked at every load: an export that does not match is logged and made
again. Between steps the key/value cache stays in PyTorch tensors that ONNX Runtime reads and
writes in place (I/O binding): nothing is copied through numpy.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from TTS.tts.layers.xtts.gpt import GPT

from .gpt_batch import (
    BatchRows,
    KeysValues,
    StepOutput,
    VoicePrefix,
    keep_rows,
    merge_rows,
    prompt_embeddings,
    step_embeddings,
)

_LOGGER = logging.getLogger(__name__)

GRAPH_FORMAT = 3
"""Changes whenever the graph's design changes: older exports are then made again."""

OnnxPrecision = Literal["fp32", "int8", "int4"]
"""What the exported GPT's weight matrices are stored and multiplied in."""

QUANTISED_BITS: dict[str, int] = {"int8": 8, "int4": 4}

QUANTISATION_BLOCK = 32
"""Weights per scale in `MatMulNBits`: finer blocks keep more of fp32's numbers; 32 is what
ONNX Runtime's int8-compute kernels are fastest at (measured in benchmarks/gpt_runtime.py)."""

_INT8_COMPUTE = 4
"""`accuracy_level` 4: the kernels quantise each row's activations to int8 per block as they
multiply, so nothing is shared between the sentences of a batch, and use the CPU's int8 dot
products (AVX2, AVX-VNNI, AVX-512 VNNI, NEON); with float compute the same weights are several
times slower (the issue's probe: int8 914 ms against 26 ms)."""

MODEL_FILE = "gpt.onnx"
WEIGHTS_FILE = "gpt.weights"
"""The fp32 graph's weights, beside it (quantised graphs hold theirs inside: under 2 GB)."""
MANIFEST_FILE = "manifest.json"
_OPSET = 17


class OnnxExportError(Exception):
    """An export could not be made or read."""


class _GptGraph(torch.nn.Module):
    """The GPT's pass over new positions after cached ones, as exported (see the module)."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__()
        transformer = gpt.gpt
        self.blocks = transformer.h
        self.ln_f = transformer.ln_f
        self.final_norm = gpt.final_norm
        self.mel_head = gpt.mel_head
        self.heads = int(gpt.heads)
        self.width = int(gpt.model_dim)

    def forward(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, *past: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        # Sizes as the tracer records them (`size` ops), never as constants: each is dynamic.
        rows, new = inputs_embeds.size(0), inputs_embeds.size(1)
        total = attention_mask.size(1)
        width = self.width
        head_width = width // self.heads
        split = (rows, -1, self.heads, head_width)
        key_positions = torch.arange(total, device=inputs_embeds.device)
        query_positions = key_positions[total - new :]
        allowed = (key_positions[None, :] <= query_positions[:, None])[None, None] & (
            attention_mask[:, None, None, :] > 0
        )
        lowest = torch.finfo(inputs_embeds.dtype).min
        hidden = inputs_embeds
        present: list[torch.Tensor] = []
        for index, block in enumerate(self.blocks):
            attention = block.attn
            query, keys, values = torch.split(
                _linear(attention.c_attn, block.ln_1(hidden)), width, dim=2
            )
            query = query.reshape(split).transpose(1, 2)
            keys = torch.cat([past[2 * index], keys.reshape(split).transpose(1, 2)], dim=2)
            values = torch.cat([past[2 * index + 1], values.reshape(split).transpose(1, 2)], dim=2)
            present += [keys, values]
            scores = torch.matmul(query, keys.transpose(-1, -2)) * (head_width**-0.5)
            scores = scores.masked_fill(~allowed, lowest)
            mixed = torch.matmul(scores.softmax(dim=-1), values)
            hidden = hidden + _linear(
                attention.c_proj, mixed.transpose(1, 2).reshape(rows, -1, width)
            )
            mlp = block.mlp
            hidden = hidden + _linear(mlp.c_proj, mlp.act(_linear(mlp.c_fc, block.ln_2(hidden))))
        latent = self.final_norm(self.ln_f(hidden[:, -1]))
        return (self.mel_head(latent), latent, *present)


def _linear(layer: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """A GPT-2 `Conv1D` (weight `[in, out]`) as `MatMul` and `Add`: the layer's own `addmm` on
    flattened rows exports as `Gemm`, which ONNX Runtime's block quantiser does not take."""
    return torch.matmul(inputs, layer.get_parameter("weight")) + layer.get_parameter("bias")


def export_key(fingerprint: str, precision: OnnxPrecision) -> str:
    """The export's directory name: the checkpoint, the precision and every version that
    shapes the graph."""
    parts = {
        "checkpoint": fingerprint,
        "precision": precision,
        "block": QUANTISATION_BLOCK,
        "graph": GRAPH_FORMAT,
        "torch": version("torch"),
        "onnxruntime": version("onnxruntime"),
        "coqui-tts": version("coqui-tts"),
        "transformers": version("transformers"),
        "wyoming-xtts": version("wyoming-xtts"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _input_names(layers: int) -> list[str]:
    return ["inputs_embeds", "attention_mask", *_cache_names("past", layers)]


def _output_names(layers: int) -> list[str]:
    return ["logits", "latent", *_cache_names("present", layers)]


def _cache_names(kind: str, layers: int) -> list[str]:
    return [f"{kind}.{layer}.{part}" for layer in range(layers) for part in ("key", "value")]


def export_graph(gpt: GPT, directory: Path) -> None:
    """Write the GPT's graph into `directory` (`MODEL_FILE`, and whatever weight files the
    exporter puts beside it: the manifest covers every file there)."""
    graph = _GptGraph(gpt).eval()
    layers = len(graph.blocks)
    width = int(gpt.model_dim)
    head_width = width // graph.heads
    rows, cached, new = 2, 3, 2  # sizes for tracing only: every one is dynamic in the graph
    example = (
        torch.zeros(rows, new, width),
        torch.ones(rows, cached + new, dtype=torch.long),
        *(torch.zeros(rows, graph.heads, cached, head_width) for _ in range(2 * layers)),
    )
    dynamic: dict[str, dict[int, str]] = {
        "inputs_embeds": {0: "rows", 1: "new"},
        "attention_mask": {0: "rows", 1: "total"},
        "logits": {0: "rows"},
        "latent": {0: "rows"},
    }
    dynamic.update({name: {0: "rows", 2: "cached"} for name in _cache_names("past", layers)})
    dynamic.update({name: {0: "rows", 2: "total"} for name in _cache_names("present", layers)})
    model_path = directory / MODEL_FILE
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation (the dynamo exporter needs
        # onnxscript besides); it is what torch 2.11 exports this graph with.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Without the weights: with them the exporter builds the graph's protobuf, its bytes
        # and a copy of every weight in memory at once (+4.6 GB at the release's size, on top
        # of the loaded model); `_attach_weights` streams them into a file of their own.
        torch.onnx.export(
            graph,
            example,
            str(model_path),
            export_params=False,
            input_names=_input_names(layers),
            output_names=_output_names(layers),
            dynamic_axes=dynamic,
            opset_version=_OPSET,
            dynamo=False,
        )
    if not model_path.is_file():
        raise OnnxExportError(f"the exporter wrote no {MODEL_FILE}")
    _attach_weights(model_path, dict(graph.named_parameters()), directory / WEIGHTS_FILE)


def _attach_weights(model_path: Path, weights: dict[str, torch.Tensor], data_path: Path) -> None:
    """Turn the graph's weight inputs into initializers whose bytes lie in `data_path` (ONNX's
    external data), written one tensor at a time; the graph file keeps only their places."""
    import onnx

    model = onnx.load(str(model_path))
    kept_inputs = []
    with data_path.open("wb") as data:
        for graph_input in model.graph.input:
            weight = weights.get(graph_input.name)
            if weight is None:
                kept_inputs.append(graph_input)
                continue
            values = weight.detach().to(torch.float32).contiguous().numpy()
            initializer = onnx.TensorProto(
                name=graph_input.name, dims=values.shape, data_type=onnx.TensorProto.FLOAT
            )
            initializer.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (
                ("location", data_path.name),
                ("offset", str(data.tell())),
                ("length", str(values.nbytes)),
            ):
                initializer.external_data.add(key=key, value=value)
            data.write(values.tobytes())
            model.graph.initializer.append(initializer)
    del model.graph.input[:]
    model.graph.input.extend(kept_inputs)
    onnx.save(model, str(model_path))


def quantise_graph(source: Path, target: Path, bits: int) -> None:
    """The graph at `source` with each weight matrix of the transformer's blocks quantised in
    blocks (`MatMulNBits`), written to `target`; the logits head (`Gemm`), the embeddings, the
    layer norms, attention and the cache stay in float."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantiser_log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quantiser_log.level
    quantiser_log.setLevel(logging.WARNING)  # it logs every node it looks at
    try:
        quantiser = MatMulNBitsQuantizer(
            onnx.load(str(source)),
            bits=bits,
            block_size=QUANTISATION_BLOCK,
            is_symmetric=True,
            accuracy_level=_INT8_COMPUTE,
        )
        quantiser.process()
        quantiser.model.save_model_to_file(str(target), use_external_data_format=False)
    finally:
        quantiser_log.setLevel(level)
    quantised = sum(node.op_type == "MatMulNBits" for node in onnx.load(str(target)).graph.node)
    if not quantised:
        raise OnnxExportError("the quantiser found no weight matrix to quantise")


@dataclass(frozen=True)
class ExportInfo:
    """Where the export lies and what making it cost (0 when it was already there)."""

    directory: Path
    seconds: float


def ensure_export(
    gpt: GPT,
    data_dir: Path,
    fingerprint: str,
    precision: OnnxPrecision = "fp32",
    traced: Callable[[], None] | None = None,
) -> ExportInfo:
    """The checked export for this checkpoint, precision and these versions, made if missing
    or bad. `traced` is called once the fp32 graph is written, before it is quantised: the
    engine drops PyTorch's copy of the weights there, which quantising would otherwise hold
    beside its own (1.5 GB at the release's size)."""
    root = data_dir / "onnx"
    key = export_key(fingerprint, precision)
    directory = root / key
    if directory.is_dir():
        problem = verify_export(directory)
        if problem is None:
            return ExportInfo(directory, 0.0)
        _LOGGER.warning(
            "The ONNX export in %s is unusable (%s): exporting again", directory, problem
        )
        shutil.rmtree(directory, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    _LOGGER.info(
        "Exporting the GPT to ONNX in %s (once for this checkpoint, precision and these "
        "versions) into %s",
        precision,
        directory,
    )
    started = time.monotonic()
    temporary = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=root))
    try:
        _export(gpt, temporary, precision, started, traced)
        _write_manifest(temporary, fingerprint, precision)
        os.replace(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _sync(root)
    _remove_other_exports(root, keep=key)
    seconds = time.monotonic() - started
    size = sum(path.stat().st_size for path in directory.iterdir())
    _LOGGER.info("ONNX export ready in %.1f s (%.0f MB)", seconds, size / 1e6)
    return ExportInfo(directory, seconds)


def _export(
    gpt: GPT,
    directory: Path,
    precision: OnnxPrecision,
    started: float,
    traced: Callable[[], None] | None,
) -> None:
    """The graph in `precision` into `directory`: traced in fp32, then quantised (the fp32
    graph, in a directory of its own inside, is removed once the quantised one is written)."""
    bits = QUANTISED_BITS.get(precision)
    traced_into = directory if bits is None else directory / "fp32"
    traced_into.mkdir(exist_ok=True)
    export_graph(gpt, traced_into)
    _LOGGER.info("GPT graph written in %.1f s", time.monotonic() - started)
    if traced is not None:
        traced()
    if bits is not None:
        quantise_graph(traced_into / MODEL_FILE, directory / MODEL_FILE, bits)
        shutil.rmtree(traced_into)
        _LOGGER.info("GPT weights quantised to %s in %.1f s", precision, time.monotonic() - started)


def verify_export(directory: Path) -> str | None:
    """None if every file the manifest lists is there with its size and digest; else why not."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
        if MODEL_FILE not in files:
            return f"its manifest lists no {MODEL_FILE}"
        for name, expected in files.items():
            path = directory / name
            if path.stat().st_size != expected["size"]:
                return f"{name} is {path.stat().st_size} bytes, not {expected['size']}"
            if _digest(path) != expected["sha256"]:
                return f"{name} does not match its checksum"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{type(err).__name__}: {err}"
    return None


def _write_manifest(directory: Path, fingerprint: str, precision: OnnxPrecision) -> None:
    files = {}
    for path in sorted(directory.iterdir()):
        with path.open("rb") as stream:
            os.fsync(stream.fileno())
        files[path.name] = {"size": path.stat().st_size, "sha256": _digest(path)}
    manifest = {
        "checkpoint": fingerprint,
        "precision": precision,
        "graph": GRAPH_FORMAT,
        "versions": {
            name: version(name) for name in ("torch", "onnxruntime", "coqui-tts", "wyoming-xtts")
        },
        "files": files,
    }
    with (directory / MANIFEST_FILE).open("w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2)
        stream.flush()
        os.fsync(stream.fileno())
    _sync(directory)


def _remove_other_exports(root: Path, keep: str) -> None:
    """Older exports (another checkpoint or version) and abandoned temporary ones: a data
    directory serves one server, and each export holds the GPT's weights (1.5 GB)."""
    for path in root.iterdir():
        if path.name != keep and path.is_dir():
            _LOGGER.info("Removing the ONNX export %s (not for this checkpoint or version)", path)
            shutil.rmtree(path, ignore_errors=True)


def _digest(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _sync(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class OnnxGpt:
    """An ONNX Runtime session on an export, run on PyTorch tensors (model thread only)."""

    def __init__(self, directory: Path, layers: int, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Its threads spin briefly after each operation instead of sleeping: a step is some
        # 750 small operations, and waking sleeping threads for each of them costs more than
        # the spinning takes from PyTorch's decoder between steps: one client's reply is
        # 0.88-0.91x as long with it (benchmarks/several_clients.py; docs/speed.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        try:
            self._session = onnxruntime.InferenceSession(
                str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own classes for a bad file
            raise OnnxExportError(f"ONNX Runtime cannot load {directory}: {err}") from err
        self._layers = layers
        self._inputs = _input_names(layers)
        self._outputs = _output_names(layers)
        self._codes = _output_width(self._session, "logits")

    def run(
        self, embeds: torch.Tensor, mask: torch.Tensor, past: KeysValues
    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Logits and latents of each row's last new position, and the keys and values with
        the new positions appended. `past` may hold no position (a voice's prefix)."""
        rows, new, width = embeds.shape
        total = mask.shape[1]
        embeds = embeds.float().contiguous()
        mask = mask.to(torch.long).contiguous()
        inputs = [embeds, mask, *(t.contiguous() for pair in past for t in pair)]
        keys = past[0][0]
        cache_shape = (rows, keys.shape[1], total, keys.shape[3])
        logits = torch.empty((rows, self._codes))
        latent = torch.empty((rows, width))
        present = [torch.empty(cache_shape) for _ in range(2 * self._layers)]
        binding = self._session.io_binding()
        for name, tensor in zip(self._inputs, inputs, strict=True):
            _bind(binding.bind_input, name, tensor)
        for name, tensor in zip(self._outputs, [logits, latent, *present], strict=True):
            _bind(binding.bind_output, name, tensor)
        self._session.run_with_iobinding(binding)
        return logits, latent, list(zip(present[0::2], present[1::2], strict=True))


def _output_width(session: Any, name: str) -> int:
    for output in session.get_outputs():
        if output.name == name:
            return int(output.shape[1])
    raise OnnxExportError(f"the graph has no output {name!r}")


def _bind(bind: Any, name: str, tensor: torch.Tensor) -> None:
    """Bind a contiguous CPU tensor's own memory: ONNX Runtime reads or writes it in place.

    A tensor without elements (a voice prefix's empty cache) may have no address at all; it
    is given one that nothing is read from."""
    element = np.int64 if tensor.dtype == torch.long else np.float32
    address = tensor.data_ptr() or _SPARE.data_ptr()
    bind(name, "cpu", 0, element, list(tensor.shape), address)


_SPARE = torch.zeros(1, dtype=torch.long)


class OnnxGptBatch(BatchRows):
    """`gpt_batch.GptBatch` with the transformer's passes on ONNX Runtime: the same rows,
    prompt embeddings, left padding, masks and sampling (`TokenBatch`)."""

    def __init__(self, gpt: GPT, graph: OnnxGpt) -> None:
        super().__init__(gpt)
        self._graph = graph
        self._layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def voice_prefix(self, cond_latent: torch.Tensor) -> VoicePrefix:
        heads = int(self._gpt.heads)
        head_width = int(self._gpt.model_dim) // heads
        empty = torch.empty((1, heads, 0, head_width))
        mask = torch.ones((1, cond_latent.shape[1]), dtype=torch.long)
        _, _, layers = self._graph.run(cond_latent, mask, [(empty, empty)] * len(self._gpt.gpt.h))
        return VoicePrefix(layers=tuple(layers), length=cond_latent.shape[1])

    def join(self, prefix: VoicePrefix, text_tokens: torch.Tensor) -> StepOutput:
        prompt = prompt_embeddings(self._gpt, text_tokens)
        length = prefix.length + prompt.shape[1]
        mask = torch.ones((1, length), dtype=torch.long)
        logits, latent, layers = self._graph.run(prompt, mask, prefix.layers)
        if self._layers is None or self._mask is None:
            self._layers, self._mask = layers, mask
        else:
            self._layers, self._mask = merge_rows(self._layers, self._mask, layers, length)
        self._positions.append(1)
        return StepOutput(latent[0], logits[0])

    def step(self, tokens: Sequence[int]) -> list[StepOutput]:
        assert self._layers is not None and self._mask is not None
        assert len(tokens) == self.rows, "one token per row"
        embedding = step_embeddings(self._gpt, tokens, self._positions)
        self._mask = torch.cat([self._mask, self._mask.new_ones((self.rows, 1))], dim=1)
        logits, latent, self._layers = self._graph.run(embedding, self._mask, self._layers)
        self._positions = [position + 1 for position in self._positions]
        return [StepOutput(latent[row], logits[row]) for row in range(self.rows)]

    def leave(self, rows: Sequence[int]) -> None:
        if not rows:
            return
        gone = set(rows)
        kept = [row for row in range(self.rows) if row not in gone]
        self._positions = [self._positions[row] for row in kept]
        if not kept:
            self._layers = None
            self._mask = None
            return
        assert self._layers is not None and self._mask is not None
        layers, self._mask = keep_rows(self._layers, self._mask, kept)
        # index_select copies; the slice after it is a view, which ONNX Runtime needs whole.
        self._layers = [(keys.contiguous(), values.contiguous()) for keys, values in layers]


def load_onnx_gpt(
    gpt: GPT,
    data_dir: Path,
    fingerprint: str,
    precision: OnnxPrecision,
    traced: Callable[[], None] | None = None,
) -> tuple[OnnxGpt, ExportInfo]:
    """A session on this checkpoint's export, made first if missing, stale or unreadable.

    An export whose files match its manifest but that ONNX Runtime cannot load is made again
    once; what fails then raises `OnnxExportError`.
    """
    layers = len(gpt.gpt.h)
    export = ensure_export(gpt, data_dir, fingerprint, precision, traced)
    try:
        return OnnxGpt(export.directory, layers), export
    except OnnxExportError as err:
        _LOGGER.warning("%s: exporting again", err)
        shutil.rmtree(export.directory, ignore_errors=True)
    if next(gpt.gpt.h.parameters()).is_meta:
        raise OnnxExportError(
            f"ONNX Runtime cannot load the GPT's export just made in {export.directory}"
        )
    export = ensure_export(gpt, data_dir, fingerprint, precision, traced)
    return OnnxGpt(export.directory, layers), export
