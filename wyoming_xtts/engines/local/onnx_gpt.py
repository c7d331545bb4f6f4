"""XTTS-v2's GPT token loop on ONNX Runtime (`--gpt-runtime onnx`, and `auto` on a CPU).

One ONNX graph of the engine's own, written once from the loaded checkpoint's weights, runs
every GPT pass the engine makes: a voice's conditioning prefix, a sentence's prompt after it
and each token step. Its inputs are the new positions' input embeddings (computed in PyTorch
from coqui-tts' embedding tables, exactly as `gpt_batch.GptBatch` does), each row's length
after them and each layer's key/value cache; its outputs are the last position's audio-token
logits and its latent (the hidden state after the transformer's `ln_f` and XTTS'
`final_norm`, what the HiFi-GAN decoder needs: no second pass to recompute latents, so the
audio streams). The prompt pass and the one-token step are the same graph at two lengths: two
graphs would hold the weights twice, on disk and in memory.

The graph is GPT-2's blocks as transformers computes them (layer norms, `c_attn`, attention
scaled by the head width's root, `c_proj`, the MLP with GPT-2's tanh GELU), each attention one
ONNX Runtime `GroupQueryAttention` operation (as many key/value heads as query heads: plain
multi-head attention). That operation appends the new positions' keys and values to a cache
buffer bound as both its input and its output, so a step copies no cache, where a graph that
concatenates the new positions to the old copies every layer's whole cache at every step (the
most expensive operation after the weight matrices' for four sentences at once: docs/speed.md).
Each row of the buffer is right-padded to its own length, so sentences of different lengths
share a step without masks. It gives PyTorch's numbers within float rounding (tested: the same
tokens for the same seed).

The export is kept under the data directory, keyed by the checkpoint's fingerprint and the
versions of everything that shapes the graph (`export_key`); it is written to a temporary
directory and renamed into place whole, with a manifest of its files' sizes and SHA-256
digests, which is checked at every load: an export that does not match is logged and made
again. The key/value cache lives in PyTorch tensors that ONNX Runtime reads and writes in
place (I/O binding): nothing is copied through numpy.
"""

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from TTS.tts.layers.xtts.gpt import GPT

from .gpt_batch import BatchRows, StepOutput, VoicePrefix, prompt_embeddings, step_embeddings

if TYPE_CHECKING:
    import onnx

_LOGGER = logging.getLogger(__name__)

GRAPH_FORMAT = 4
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
_MICROSOFT = "com.microsoft"
"""ONNX Runtime's own operations: `GroupQueryAttention`, `FastGelu`."""

CACHE_GROWTH = 64
"""Positions a cache buffer grows by when a row needs more room: it is copied once per 64
steps instead of at every step (245 KB a position and sentence at the release's size)."""

_SUPPORTED_GPT2 = {
    "activation_function": ("gelu_new", "gelu_pytorch_tanh"),
    "scale_attn_weights": (True,),
    "scale_attn_by_inverse_layer_idx": (False,),
    "reorder_and_upcast_attn": (False,),
}
"""The GPT-2 settings the graph computes (XTTS-v2's); a checkpoint with others is refused."""


class OnnxExportError(Exception):
    """An export could not be made or read."""


class _GraphWriter:
    """The graph's nodes, and its weights as initializers whose bytes are streamed to a file
    of their own one tensor at a time (ONNX's external data): the graph's protobuf never holds
    them, so writing it costs no second copy of the weights in memory."""

    def __init__(self, data: IO[bytes], data_name: str) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._data = data
        self._data_name = data_name

    def weight(self, name: str, tensor: torch.Tensor) -> str:
        import onnx

        values = tensor.detach().to(torch.float32).contiguous().numpy()
        initializer = onnx.TensorProto(
            name=name, dims=values.shape, data_type=onnx.TensorProto.FLOAT
        )
        initializer.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (
            ("location", self._data_name),
            ("offset", str(self._data.tell())),
            ("length", str(values.nbytes)),
        ):
            initializer.external_data.add(key=key, value=value)
        self._data.write(values.tobytes())
        self.initializers.append(initializer)
        return name

    def node(
        self,
        op: str,
        inputs: Sequence[str],
        name: str,
        outputs: Sequence[str] | None = None,
        **attributes: Any,
    ) -> list[str]:
        """Add a node named `name`; its outputs are `outputs`, or one named as the node."""
        import onnx

        names = list(outputs or [name])
        domain = _MICROSOFT if op in ("GroupQueryAttention", "FastGelu") else ""
        self.nodes.append(
            onnx.helper.make_node(op, list(inputs), names, name=name, domain=domain, **attributes)
        )
        return names

    def linear(self, layer: torch.nn.Module, inputs: str, name: str) -> str:
        """A GPT-2 `Conv1D` (weight `[in, out]`) as `MatMul` and `Add`: the form ONNX
        Runtime's block quantiser turns into `MatMulNBits` (it leaves `Gemm` alone)."""
        weight = self.weight(f"{name}.weight", layer.get_parameter("weight"))
        bias = self.weight(f"{name}.bias", layer.get_parameter("bias"))
        product = self.node("MatMul", [inputs, weight], f"{name}.matmul")[0]
        return self.node("Add", [product, bias], name)[0]

    def layer_norm(self, norm: torch.nn.LayerNorm, inputs: str, name: str) -> str:
        weight = self.weight(f"{name}.weight", norm.weight)
        bias = self.weight(f"{name}.bias", norm.bias)
        epsilon = float(norm.eps)
        return self.node(
            "LayerNormalization", [inputs, weight, bias], name, axis=-1, epsilon=epsilon
        )[0]


def _check_supported(gpt: GPT) -> None:
    config = gpt.gpt.config
    for setting, supported in _SUPPORTED_GPT2.items():
        if getattr(config, setting) not in supported:
            raise OnnxExportError(
                f"the checkpoint's GPT-2 has {setting}={getattr(config, setting)!r}, which the "
                f"ONNX graph does not compute (it computes {supported[0]!r})"
            )
    head_width = int(gpt.model_dim) // int(gpt.heads)
    if head_width % 8:
        raise OnnxExportError(
            f"ONNX Runtime's attention needs a head width that is a multiple of 8, not {head_width}"
        )


def _write_graph(gpt: GPT, writer: _GraphWriter) -> None:
    """GPT-2's blocks, then the last position's norms and audio-token head (module docstring)."""
    heads = int(gpt.heads)
    head_width = int(gpt.model_dim) // heads
    hidden = "inputs_embeds"
    for index, block in enumerate(gpt.gpt.h):
        name = f"h.{index}"
        attention = block.attn
        normed = writer.layer_norm(block.ln_1, hidden, f"{name}.ln_1")
        packed = writer.linear(attention.c_attn, normed, f"{name}.attn.c_attn")
        mixed = writer.node(
            "GroupQueryAttention",
            [packed, "", "", *_cache_names("past", index), "seqlens_k", "total_sequence_length"],
            f"{name}.attn",
            outputs=[f"{name}.attn", *_cache_names("present", index)],
            num_heads=heads,
            kv_num_heads=heads,
            scale=head_width**-0.5,
        )
        hidden = writer.node(
            "Add",
            [hidden, writer.linear(attention.c_proj, mixed[0], f"{name}.attn.c_proj")],
            f"{name}.attn.residual",
        )[0]
        mlp = block.mlp
        normed = writer.layer_norm(block.ln_2, hidden, f"{name}.ln_2")
        expanded = writer.linear(mlp.c_fc, normed, f"{name}.mlp.c_fc")
        activated = writer.node("FastGelu", [expanded], f"{name}.mlp.act")[0]
        hidden = writer.node(
            "Add",
            [hidden, writer.linear(mlp.c_proj, activated, f"{name}.mlp.c_proj")],
            f"{name}.mlp.residual",
        )[0]
    last_index = writer.node(
        "Constant", [], "last_position", value=_int64_scalar("last_position", -1)
    )[0]
    last = writer.node("Gather", [hidden, last_index], "last", axis=1)[0]
    latent = writer.layer_norm(
        gpt.final_norm, writer.layer_norm(gpt.gpt.ln_f, last, "ln_f"), "latent"
    )
    head_weight = writer.weight("mel_head.weight", gpt.mel_head.weight)
    head_bias = writer.weight("mel_head.bias", gpt.mel_head.bias)
    writer.node("Gemm", [latent, head_weight, head_bias], "mel_head", ["logits"], transB=1)


def _int64_scalar(name: str, value: int) -> "onnx.TensorProto":
    import onnx

    return onnx.helper.make_tensor(name, onnx.TensorProto.INT64, [], [value])


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


def _cache_names(kind: str, layer: int) -> list[str]:
    return [f"{kind}.{layer}.key", f"{kind}.{layer}.value"]


def export_graph(gpt: GPT, directory: Path) -> None:
    """Write the GPT's graph into `directory`: `MODEL_FILE`, its weights in `WEIGHTS_FILE`."""
    import onnx

    _check_supported(gpt)
    layers = len(gpt.gpt.h)
    heads = int(gpt.heads)
    width = int(gpt.model_dim)
    cache: list[str | int] = ["rows", heads, "capacity", width // heads]
    floats = onnx.TensorProto.FLOAT
    inputs = [
        onnx.helper.make_tensor_value_info("inputs_embeds", floats, ["rows", "new", width]),
        onnx.helper.make_tensor_value_info("seqlens_k", onnx.TensorProto.INT32, ["rows"]),
        onnx.helper.make_tensor_value_info("total_sequence_length", onnx.TensorProto.INT32, []),
    ]
    outputs = [
        onnx.helper.make_tensor_value_info(
            "logits", floats, ["rows", int(gpt.mel_head.out_features)]
        ),
        onnx.helper.make_tensor_value_info("latent", floats, ["rows", width]),
    ]
    for layer in range(layers):
        inputs += [
            onnx.helper.make_tensor_value_info(n, floats, cache)
            for n in _cache_names("past", layer)
        ]
        outputs += [
            onnx.helper.make_tensor_value_info(n, floats, cache)
            for n in _cache_names("present", layer)
        ]
    with (directory / WEIGHTS_FILE).open("wb") as data, torch.no_grad():
        writer = _GraphWriter(data, WEIGHTS_FILE)
        _write_graph(gpt, writer)
    graph = onnx.helper.make_graph(
        writer.nodes, "xtts_gpt", inputs, outputs, initializer=writer.initializers
    )
    model = onnx.helper.make_model(
        graph,
        opset_imports=[
            onnx.helper.make_opsetid("", _OPSET),
            onnx.helper.make_opsetid(_MICROSOFT, 1),
        ],
        producer_name="wyoming-xtts",
    )
    onnx.save(model, str(directory / MODEL_FILE))


def quantise_graph(source: Path, target: Path, bits: int, block: int = QUANTISATION_BLOCK) -> None:
    """The graph at `source` with each weight matrix of the transformer's blocks quantised in
    blocks of `block` weights (`MatMulNBits`), written to `target`; the logits head (`Gemm`),
    the layer norms, attention and the cache stay in float."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantiser_log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quantiser_log.level
    quantiser_log.setLevel(logging.WARNING)  # it logs every node it looks at
    try:
        quantiser = MatMulNBitsQuantizer(
            onnx.load(str(source)),
            bits=bits,
            block_size=block,
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
    written: Callable[[], None] | None = None,
) -> ExportInfo:
    """The checked export for this checkpoint, precision and these versions, made if missing
    or bad. `written` is called once the fp32 graph is written, before it is quantised: the
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
        _export(gpt, temporary, precision, started, written)
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
    written: Callable[[], None] | None,
) -> None:
    """The graph in `precision` into `directory`: written in fp32, then quantised (the fp32
    graph, in a directory of its own inside, is removed once the quantised one is written)."""
    bits = QUANTISED_BITS.get(precision)
    fp32_into = directory if bits is None else directory / "fp32"
    fp32_into.mkdir(exist_ok=True)
    export_graph(gpt, fp32_into)
    _LOGGER.info("GPT graph written in %.1f s", time.monotonic() - started)
    if written is not None:
        written()
    if bits is not None:
        quantise_graph(fp32_into / MODEL_FILE, directory / MODEL_FILE, bits)
        shutil.rmtree(fp32_into)
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


class CacheBuffer:
    """Every layer's keys and values for the rows of a batch, in one tensor with room for more
    positions, which ONNX Runtime appends to in place.

    The tensor is (layers, 2, rows, heads, capacity, head width): row `r`'s first
    `lengths[r]` positions are real, the rest room (zeros until written). One layer's keys (or
    values) for all rows, or for one row, is a contiguous view of it, which is what the graph
    binds.
    """

    def __init__(self, tensor: torch.Tensor, lengths: list[int]) -> None:
        self.tensor = tensor
        self.lengths = lengths

    @classmethod
    def empty(cls, gpt: GPT, rows: int, capacity: int) -> "CacheBuffer":
        heads = int(gpt.heads)
        shape = (len(gpt.gpt.h), 2, rows, heads, capacity, int(gpt.model_dim) // heads)
        return cls(torch.zeros(shape), [0] * rows)

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def capacity(self) -> int:
        return int(self.tensor.shape[4])

    def views(self, row: int | None = None) -> list[torch.Tensor]:
        """Each layer's keys, then values, of every row or of `row` alone."""
        rows = slice(None) if row is None else slice(row, row + 1)
        return [
            self.tensor[layer, part, rows]
            for layer in range(self.tensor.shape[0])
            for part in (0, 1)
        ]

    def with_room(self, new: int, growth: int = CACHE_GROWTH) -> "CacheBuffer":
        """This buffer if every row has room for `new` more positions, else a copy with room
        for up to `growth` positions beyond them."""
        needed = max(self.lengths) + new
        if needed <= self.capacity:
            return self
        shape = list(self.tensor.shape)
        shape[4] = _room(needed, growth)
        grown = self.tensor.new_zeros(shape)
        grown[:, :, :, :, : self.capacity] = self.tensor
        return CacheBuffer(grown, list(self.lengths))

    def with_row(self, prefix: VoicePrefix, room: int, growth: int = CACHE_GROWTH) -> "CacheBuffer":
        """A copy with one more row, holding the voice's prefix and room for at least `room`
        more positions after it."""
        capacity = max(self.capacity, _room(prefix.length + room, growth))
        shape = list(self.tensor.shape)
        shape[2] += 1
        shape[4] = capacity
        joined = self.tensor.new_zeros(shape)
        joined[:, :, : self.rows, :, : self.capacity] = self.tensor
        for layer, (keys, values) in enumerate(prefix.layers):
            joined[layer, 0, -1, :, : prefix.length] = keys[0]
            joined[layer, 1, -1, :, : prefix.length] = values[0]
        return CacheBuffer(joined, [*self.lengths, prefix.length])

    def keep(self, rows: Sequence[int]) -> "CacheBuffer":
        """Only these rows (copied), in this order."""
        index = torch.tensor(rows, dtype=torch.long)
        return CacheBuffer(self.tensor.index_select(2, index), [self.lengths[row] for row in rows])


def _room(positions: int, growth: int) -> int:
    """`positions` rounded up to a whole number of `growth`s."""
    return math.ceil(positions / growth) * growth


@dataclass
class _Binding:
    """An I/O binding of the graph to one cache buffer's memory and the tensors that carry
    each pass's inputs and outputs: kept while the buffer stays, so a step binds nothing."""

    binding: Any
    embeds: torch.Tensor
    seqlens: torch.Tensor
    total: torch.Tensor
    logits: torch.Tensor
    latent: torch.Tensor


class OnnxGpt:
    """An ONNX Runtime session on an export, run on PyTorch tensors (model thread only)."""

    _KEPT_BINDINGS = 4
    """A batch's steps, a joining row's prompt, a voice's prefix: each binds other memory."""

    def __init__(self, directory: Path, layers: int, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Its threads spin briefly after each operation instead of sleeping: a step is some
        # 300 small operations, and waking sleeping threads for each of them costs more than
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
        self._codes = _output_width(self._session, "logits")
        self._bindings: OrderedDict[tuple[int, ...], _Binding] = OrderedDict()

    def run(
        self, embeds: torch.Tensor, cache: CacheBuffer, row: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and latents of the last of `embeds`' new positions for each row of `cache`
        (or for `row` alone), whose keys and values are appended to it in place: the caller
        makes room first (`CacheBuffer.with_room`)."""
        rows = range(cache.rows) if row is None else [row]
        lengths = [cache.lengths[index] + embeds.shape[1] for index in rows]
        if max(lengths) > cache.capacity:
            raise ValueError(f"no room for {embeds.shape[1]} positions in the cache")
        bound = self._binding(cache.views(row), embeds.shape)
        bound.embeds.copy_(embeds)
        bound.seqlens.copy_(torch.tensor(lengths, dtype=torch.int32) - 1)
        bound.total.fill_(max(lengths))
        self._session.run_with_iobinding(bound.binding)
        for index, length in zip(rows, lengths, strict=True):
            cache.lengths[index] = length
        # The bound outputs are overwritten by the next pass: the caller keeps copies.
        return bound.logits.clone(), bound.latent.clone()

    def _binding(self, views: list[torch.Tensor], shape: torch.Size) -> _Binding:
        rows, new, width = shape
        key = (views[0].data_ptr(), views[1].data_ptr(), *views[0].shape, new)
        bound = self._bindings.get(key)
        if bound is not None:
            self._bindings.move_to_end(key)
            return bound
        bound = _Binding(
            binding=self._session.io_binding(),
            embeds=torch.empty((rows, new, width)),
            seqlens=torch.empty(rows, dtype=torch.int32),
            total=torch.empty((), dtype=torch.int32),
            logits=torch.empty((rows, self._codes)),
            latent=torch.empty((rows, width)),
        )
        inputs = {"inputs_embeds": bound.embeds, "seqlens_k": bound.seqlens}
        inputs["total_sequence_length"] = bound.total
        outputs = {"logits": bound.logits, "latent": bound.latent}
        for layer in range(self._layers):
            names = zip(_cache_names("past", layer), _cache_names("present", layer), strict=True)
            for part, (past, present) in enumerate(names):
                # The same memory in and out: the attention writes only the new positions.
                inputs[past] = outputs[present] = views[2 * layer + part]
        for name, tensor in inputs.items():
            _bind(bound.binding.bind_input, name, tensor)
        for name, tensor in outputs.items():
            _bind(bound.binding.bind_output, name, tensor)
        self._bindings[key] = bound
        if len(self._bindings) > self._KEPT_BINDINGS:
            self._bindings.popitem(last=False)
        return bound


def _output_width(session: Any, name: str) -> int:
    for output in session.get_outputs():
        if output.name == name:
            return int(output.shape[1])
    raise OnnxExportError(f"the graph has no output {name!r}")


_ELEMENTS = {torch.float32: np.float32, torch.int32: np.int32, torch.int64: np.int64}


def _bind(bind: Any, name: str, tensor: torch.Tensor) -> None:
    """Bind a contiguous CPU tensor's own memory: ONNX Runtime reads or writes it in place."""
    assert tensor.is_contiguous(), name
    bind(name, "cpu", 0, _ELEMENTS[tensor.dtype], list(tensor.shape), tensor.data_ptr())


class OnnxGptBatch(BatchRows):
    """`gpt_batch.GptBatch` with the transformer's passes on ONNX Runtime: the same rows,
    prompt embeddings and sampling (`TokenBatch`); the cache is a `CacheBuffer`, each row
    right-padded to its own length instead of left-padded and masked."""

    def __init__(self, gpt: GPT, graph: OnnxGpt, growth: int = CACHE_GROWTH) -> None:
        super().__init__(gpt)
        self._graph = graph
        self._growth = growth
        self._cache: CacheBuffer | None = None

    @property
    def cache(self) -> CacheBuffer | None:
        """The rows' keys and values (None while the batch has no row)."""
        return self._cache

    def voice_prefix(self, cond_latent: torch.Tensor) -> VoicePrefix:
        length = int(cond_latent.shape[1])
        # Exactly as long as the prefix: its views are then contiguous (and hold no room).
        cache = CacheBuffer.empty(self._gpt, rows=1, capacity=length)
        self._graph.run(cond_latent.float(), cache)
        views = cache.views()
        return VoicePrefix(layers=tuple(zip(views[0::2], views[1::2], strict=True)), length=length)

    def join(self, prefix: VoicePrefix, text_tokens: torch.Tensor) -> StepOutput:
        prompt = prompt_embeddings(self._gpt, text_tokens)
        if self._cache is None:
            self._cache = CacheBuffer.empty(self._gpt, rows=0, capacity=0)
        self._cache = self._cache.with_row(prefix, prompt.shape[1], self._growth)
        logits, latent = self._graph.run(prompt, self._cache, row=self._cache.rows - 1)
        self._positions.append(1)
        return StepOutput(latent[0], logits[0])

    def step(self, tokens: Sequence[int]) -> list[StepOutput]:
        assert self._cache is not None
        assert len(tokens) == self.rows, "one token per row"
        embedding = step_embeddings(self._gpt, tokens, self._positions)
        self._cache = self._cache.with_room(1, self._growth)
        logits, latent = self._graph.run(embedding, self._cache)
        self._positions = [position + 1 for position in self._positions]
        return [StepOutput(latent[row], logits[row]) for row in range(self.rows)]

    def leave(self, rows: Sequence[int]) -> None:
        if not rows:
            return
        gone = set(rows)
        kept = [row for row in range(self.rows) if row not in gone]
        self._positions = [self._positions[row] for row in kept]
        if not kept:
            self._cache = None
            return
        assert self._cache is not None
        self._cache = self._cache.keep(kept)


def load_onnx_gpt(
    gpt: GPT,
    data_dir: Path,
    fingerprint: str,
    precision: OnnxPrecision,
    written: Callable[[], None] | None = None,
) -> tuple[OnnxGpt, ExportInfo]:
    """A session on this checkpoint's export, made first if missing, stale or unreadable.

    An export whose files match its manifest but that ONNX Runtime cannot load is made again
    once; what fails then raises `OnnxExportError`.
    """
    layers = len(gpt.gpt.h)
    export = ensure_export(gpt, data_dir, fingerprint, precision, written)
    try:
        return OnnxGpt(export.directory, layers), export
    except OnnxExportError as err:
        _LOGGER.warning("%s: exporting again", err)
        shutil.rmtree(export.directory, ignore_errors=True)
    if next(gpt.gpt.h.parameters()).is_meta:
        raise OnnxExportError(
            f"ONNX Runtime cannot load the GPT's export just made in {export.directory}"
        )
    export = ensure_export(gpt, data_dir, fingerprint, precision, written)
    return OnnxGpt(export.directory, layers), export
