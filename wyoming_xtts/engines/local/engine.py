"""XTTS-v2 run locally (CUDA or CPU) through coqui-tts' public API.

One model instance serves every connection. All model work runs on one dedicated thread:
PyTorch inference is not meant to be shared between threads. Sentences from all connections
are generated together there (`sentence_batcher.py`), sharing each GPT step.

With `--unload-after`, the model is dropped after that long without a segment to speak, so a
GPU (or the RAM) shared with other programs gets its memory back, and is loaded again on the
model thread by the first sentence that needs it. Loading, unloading and generating all run on
that one thread, in the order they were asked for: two of them never overlap, and a load is
never repeated for sentences that arrive while it runs.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

import numpy as np
import soundfile
import torch
from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.models.xtts import Xtts

from ...core.audio import XTTS_OUTPUT_RATE, XTTS_REFERENCE_RATE
from ...core.engine import (
    READY,
    DecoderPrecision,
    EngineHealth,
    EngineInfo,
    EngineUnavailableError,
    GptRuntime,
    Precision,
    Readiness,
)
from ...core.errors import ErrorCode, SpeechError
from ...core.voices import Voice
from ...text.languages import XTTS_LANGUAGES
from .checkpoint import CheckpointReadOnlyError, checkpoint_fingerprint, read_checkpoint
from .conditioning import (
    Conditioning,
    ConditioningCache,
    ConditioningParams,
    conditioning_from,
    reference_recordings,
)
from .gpt_batch import GptBatch, TokenBatch, VoicePrefixes
from .idle import IdleTimer
from .memory import hand_back_model_memory, memory_in_use, release_freed_memory
from .model_files import (
    SPEAKERS_FILE,
    check_checkpoint,
    ensure_release_model,
    make_writable_copy,
    writable_copy_dir,
)
from .offload import Handoff
from .onnx_gpt import OnnxGpt, OnnxGptBatch
from .placement import check_deepspeed, gpt_on_onnx, pick_device
from .precision import gpt_autocast, prepare_for_inference, resolve_gpt, waveform_decoder
from .sentence_batcher import PreparedSentence, SentenceBatcher, SentenceRequest
from .stack import stack_failure
from .streaming_decoder import DecoderGeometry, StreamingDecoder
from .xtts_stream import (
    ChunkSchedule,
    SentenceGeneration,
    decoder_geometry,
    text_tokens,
    token_budget,
)

_LOGGER = logging.getLogger(__name__)

_WARM_UP_TEXT = "Ready."

_RELOAD_FAILURES = (EngineUnavailableError, OSError, RuntimeError, MemoryError)
"""What loading the model again can meet: its files gone, a full GPU (CUDA's out-of-memory
error is a RuntimeError), too little RAM."""


@dataclass(frozen=True)
class LocalEngineConfig:
    """What the local engine needs from the server settings (each field is the `Settings`
    field of the same name, whose option says what it means)."""

    model_dir: Path | None
    data_dir: Path
    device: str
    default_language: str
    licence_accepted: bool
    """`Settings.agree_cpml`."""

    builtin_speakers: bool
    precision: Precision
    deepspeed: bool
    gpt_runtime: GptRuntime
    decoder_precision: DecoderPrecision
    batch_sentences: int
    """1 with DeepSpeed: its injected kernels replace the attention whose padding mask
    batching relies on (untested here)."""

    schedule: ChunkSchedule
    """How many GPT tokens make each piece of streamed audio (from `first_chunk_tokens`)."""

    unload_after: float
    """Minutes without a segment before the model is unloaded; 0: it stays loaded."""


class XttsEngine:
    """The `Engine` for a local XTTS-v2 checkpoint."""

    def __init__(self, config: LocalEngineConfig) -> None:
        self._config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xtts-model")
        self._model: Xtts | None = None
        self._device = "cpu"
        self._precision: Precision = "fp32"
        self._runtime: GptRuntime = "torch"
        self._waveform: torch.nn.Module | None = None
        """The decoder the sentences use: the model's own, or its bf16 copy."""
        self._onnx: OnnxGpt | None = None
        self._cache_identity: str | None = None
        self._languages: tuple[str, ...] = XTTS_LANGUAGES
        self._builtin: dict[str, Conditioning] = {}
        self._builtin_names: tuple[str, ...] = ()  # kept while unloaded, for describe
        self._cache: ConditioningCache | None = None
        self._geometry: DecoderGeometry | None = None
        self._prefixes = VoicePrefixes()
        self._batch_sentences = 1 if config.deepspeed else config.batch_sentences
        self._batcher = SentenceBatcher(
            self._executor,
            self._batch_sentences,
            self._new_batch,
            self._prepare,
            ready=self._ensure_loaded,
        )
        self._segments_open = 0  # changed on the event loop only
        self._idle = IdleTimer(
            config.unload_after * 60 if config.unload_after > 0 else None, self._on_idle
        )
        self._unloaded = False  # dropped on purpose, loads again when needed (model thread)
        self._reload_failure: str | None = None  # why the last load after an unload failed

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            description=(
                "Coqui XTTS-v2 voice cloning, running locally "
                f"({self._device}, {self._precision}"
                f"{', ONNX Runtime' if self._runtime == 'onnx' else ''})"
            ),
            attribution_name="Coqui (CPML, non-commercial)",
            attribution_url="https://huggingface.co/coqui/XTTS-v2",
            version=version("coqui-tts"),
        )

    @property
    def sample_rate(self) -> int:
        return XTTS_OUTPUT_RATE

    @property
    def languages(self) -> Sequence[str]:
        return self._languages

    @property
    def max_concurrency(self) -> int:
        return self._batch_sentences

    @property
    def segments_in_flight(self) -> int:
        return 1

    @property
    def cache_identity(self) -> str | None:
        return self._cache_identity

    def spoke_itself(self, audio: AsyncGenerator[np.ndarray, None]) -> bool:
        return True

    def health(self) -> EngineHealth:
        if self._model is not None:
            return READY
        if self._reload_failure is not None:
            return EngineHealth(
                Readiness.FAILED,
                f"Loading the model again failed ({self._reload_failure}); the next request "
                "tries again.",
            )
        if self._unloaded:
            return EngineHealth(
                Readiness.UNLOADED,
                f"Unloaded after {self._config.unload_after:g} minutes without a request "
                "(--unload-after); the next request loads it again.",
            )
        return EngineHealth(Readiness.FAILED, "The model is not loaded.")

    async def start(self) -> None:
        await asyncio.wrap_future(self._executor.submit(self._load))
        self._idle.idle(asyncio.get_running_loop())

    async def close(self) -> None:
        self._idle.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def builtin_voices(self) -> Sequence[Voice]:
        if not self._config.builtin_speakers:
            return []
        languages = (
            self._config.default_language,
            *(code for code in self._languages if code != self._config.default_language),
        )
        return [Voice(name=name, languages=languages) for name in self._builtin_names]

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        loop = asyncio.get_running_loop()
        self._segments_open += 1
        self._idle.busy()
        try:
            handoff: Handoff[np.ndarray] = Handoff(loop)
            self._batcher.submit(SentenceRequest(text, language, voice, handoff))
            async with aclosing(handoff.items()) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            self._segments_open -= 1
            if self._segments_open == 0:
                self._idle.idle(loop)
                with contextlib.suppress(RuntimeError):  # the engine was closed meanwhile
                    self._executor.submit(self._release_if_idle)

    def _on_idle(self) -> None:
        """`--unload-after` passed with nothing spoken (event loop): unload on the model
        thread, after whatever it is still doing."""
        with contextlib.suppress(RuntimeError):  # the engine was closed meanwhile
            self._executor.submit(self._unload_if_idle)

    # -- on the model thread -------------------------------------------------------------

    def _load(self) -> None:
        """The first load (at start): the model, what `describe` says, then the warm-up."""
        config = self._config
        directory = self._checkpoint_directory()
        self._device = pick_device(config.device)
        self._runtime, self._precision = resolve_gpt(
            config.precision, config.gpt_runtime, self._device
        )
        if config.deepspeed:
            check_deepspeed(self._device)
        _LOGGER.info("Loading XTTS-v2 from %s on %s (%s)", directory, self._device, self._precision)
        directory, xtts_config, params = self._read_model(directory)
        self._languages = tuple(code for code in xtts_config.languages if code in XTTS_LANGUAGES)
        self._builtin_names = tuple(self._builtin)
        try:
            self._warm_up(params)
        except Exception as err:
            # The first generation is where an untested transformers or torch shows itself.
            raise stack_failure("speaking its warm-up sentence", err) from err
        _LOGGER.info(
            "XTTS-v2 ready: %d languages, %d built-in speakers%s",
            len(self._languages),
            len(self._builtin),
            "" if (directory / SPEAKERS_FILE).exists() else f" (no {SPEAKERS_FILE})",
        )

    def _checkpoint_directory(self) -> Path:
        config = self._config
        if config.model_dir is not None:
            return check_checkpoint(config.model_dir)
        return ensure_release_model(config.data_dir, config.licence_accepted)

    def _read_model(self, directory: Path) -> tuple[Path, XttsConfig, ConditioningParams]:
        """Load the checkpoint on the device in its precision, with everything made from it
        (built-in speakers' conditioning, the conditioning cache, the audio cache's identity);
        the engine's state changes only once all of it succeeded. Returns the directory
        actually read (a writable copy, perhaps), its config and conditioning settings."""
        config = self._config
        if (writable_copy_dir(directory, config.data_dir) / "model.pth").is_file():
            directory = writable_copy_dir(directory, config.data_dir)
        try:
            model, xtts_config = read_checkpoint(directory, config.deepspeed)
        except CheckpointReadOnlyError:
            copy = make_writable_copy(directory, config.data_dir)
            _LOGGER.warning(
                "%s is read-only and coqui-tts rewrites model.pth on its first load: "
                "loading a writable copy made in %s instead",
                directory,
                copy,
            )
            model, xtts_config = read_checkpoint(copy, config.deepspeed)
        model.to(self._device)
        prepare_for_inference(model)
        waveform = waveform_decoder(model, config.decoder_precision, self._device)
        release_freed_memory()

        builtin = {}
        if model.speaker_manager is not None:
            builtin = {
                name: Conditioning(
                    gpt_cond_latent=tensors["gpt_cond_latent"].float().cpu().numpy(),
                    speaker_embedding=tensors["speaker_embedding"].float().cpu().numpy(),
                )
                for name, tensors in model.speaker_manager.speakers.items()
            }
        params = ConditioningParams(
            gpt_cond_len=int(xtts_config.gpt_cond_len),
            gpt_cond_chunk_len=int(xtts_config.gpt_cond_chunk_len),
            max_ref_len=int(xtts_config.max_ref_len),
            sound_norm_refs=bool(xtts_config.sound_norm_refs),
        )
        fingerprint = checkpoint_fingerprint(directory)
        self._geometry = decoder_geometry(model)
        self._builtin = builtin
        self._cache_identity = f"xtts-v2:{fingerprint}:{self._precision}:{self._device}"
        if self._runtime == "onnx":
            self._onnx = gpt_on_onnx(model, self._config.data_dir, fingerprint, self._precision)
            self._cache_identity += ":onnx"
        self._cache = ConditioningCache(
            directory=config.data_dir / "latents",
            model_fingerprint=fingerprint,
            params=params,
            compute=partial(self._compute_conditioning, params),
        )
        self._model = model
        self._waveform = waveform
        return directory, xtts_config, params

    def _unload_if_idle(self) -> None:
        """Drop the model and everything made from it, and hand their memory back: GPU memory
        to the driver, RAM to the system. What `describe` says (languages, built-in speakers'
        names, device, precision) and the audio cache's identity stay; so do the conditioning
        latents on disk, so the next request recomputes nothing.

        The count of open segments is read here without a lock: a segment that arrives just
        after the check is queued on this thread behind the unload, and loads the model again.
        """
        if self._segments_open or self._model is None:
            return
        before = memory_in_use(self._device)
        self._unloaded = True  # first: `health` never sees a model missing for no reason
        self._model = None
        self._waveform = None
        self._geometry = None
        self._builtin = {}
        self._cache = None  # the voices' conditioning in memory
        self._prefixes = VoicePrefixes()  # the GPT's keys and values of recent voices
        self._onnx = None  # its session holds the GPT's weights (the export stays on disk)
        hand_back_model_memory(self._device)
        _LOGGER.info(
            "XTTS-v2 unloaded after %g minutes without a request; the next one loads it again "
            "(before: %s; after: %s)",
            self._config.unload_after,
            before,
            memory_in_use(self._device),
        )

    def _ensure_loaded(self) -> None:
        """Before a batch (model thread): load the model again if it was unloaded while idle.
        Sentences arriving meanwhile wait in the batcher's queue for this one load."""
        if self._model is not None or not self._unloaded:
            return
        _LOGGER.info("Loading XTTS-v2 again after %.1f minutes idle", self._idle.idle_minutes())
        started = time.monotonic()
        failure = self._try_reload()
        if failure is not None:
            self._reload_failure = failure
            hand_back_model_memory(self._device)  # whatever the failed load had taken
            raise SpeechError(
                ErrorCode.SYNTHESIS_FAILED,
                f"The XTTS-v2 model could not be loaded again: {failure}",
            )
        self._unloaded = False
        self._reload_failure = None
        _LOGGER.info(
            "XTTS-v2 loaded again in %.1f s (%s)",
            time.monotonic() - started,
            memory_in_use(self._device),
        )

    def _try_reload(self) -> str | None:
        """Read the checkpoint again; why not, if it failed. (The exception is not kept: its
        traceback would hold the half-loaded model's memory.)"""
        try:
            self._read_model(self._checkpoint_directory())
        except _RELOAD_FAILURES as err:
            _LOGGER.error("Loading XTTS-v2 again failed: %s", err)
            return str(err)
        return None

    def _compute_conditioning(
        self, params: ConditioningParams, clips: Sequence[Path]
    ) -> Conditioning:
        return self._conditioning_from(reference_recordings(clips, params), params)

    def _conditioning_from(
        self, recordings: Sequence[np.ndarray], params: ConditioningParams
    ) -> Conditioning:
        return conditioning_from(self._require_model(), self._device, recordings, params)

    def _conditioning_for(self, voice: Voice) -> Conditioning:
        if voice.is_builtin:
            conditioning = self._builtin.get(voice.name)
            if conditioning is None:
                raise SpeechError(ErrorCode.VOICE_NOT_FOUND, f"No built-in speaker {voice.name!r}.")
            return conditioning
        assert self._cache is not None
        try:
            return self._cache.get(voice)
        except (OSError, soundfile.LibsndfileError, RuntimeError, ValueError) as err:
            raise SpeechError(
                ErrorCode.VOICE_UNUSABLE,
                f"Voice {voice.name!r} cannot be used: its clips could not be read ({err}).",
            ) from err

    def _new_batch(self) -> TokenBatch:
        model = self._require_model()
        if self._onnx is not None:
            return OnnxGptBatch(model.gpt, self._onnx)
        return GptBatch(model.gpt, partial(gpt_autocast, self._precision, self._device))

    def _prepare(self, request: SentenceRequest, batch: TokenBatch) -> PreparedSentence:
        """Everything a sentence needs before it joins the batch (on the model thread)."""
        model = self._require_model()
        assert self._geometry is not None
        conditioning = request.conditioning or self._conditioning_for(request.voice)
        settings = request.voice.generation
        generator = torch.Generator(device=self._device)
        if settings.seed is None:
            generator.seed()
        else:
            generator.manual_seed(settings.seed)
        assert self._waveform is not None  # set with the model
        decoder = StreamingDecoder(
            self._waveform,
            torch.from_numpy(conditioning.speaker_embedding).to(self._device),
            self._geometry,
            length_scale=1.0 / max(settings.speed, 0.05),
        )
        return PreparedSentence(
            prefix=self._prefixes.get(batch, conditioning.gpt_cond_latent, self._device),
            text_tokens=text_tokens(model, request.text, request.language).to(self._device),
            sentence=SentenceGeneration(
                request.text,
                batch.sampler(settings, generator),
                decoder,
                batch.stop_token,
                token_budget(model, request.text, request.language),
                self._config.schedule,
                request.sink,
            ),
        )

    def _release_if_idle(self) -> None:
        """Return generation's scratch memory (KV cache, decoder activations: ~1 GB after a
        long sentence) to the system when no segment is waiting; takes 30-100 ms.

        The count is read here without a lock: a segment that arrives just after the check
        waits for the trim, never for more."""
        if self._segments_open == 0:
            release_freed_memory(collect=False)

    def _warm_up(self, params: ConditioningParams) -> None:
        """Condition on a second of noise and speak one piece, so that the first client does
        not pay for lazy initialisation (allocator pools, kernel selection)."""
        noise = np.random.default_rng(0).normal(0.0, 0.05, XTTS_REFERENCE_RATE)
        conditioning = self._conditioning_from([noise.astype(np.float32)], params)
        language = self._config.default_language
        if language not in self._languages:
            language = self._languages[0]
        sink = _FirstPiece()
        voice = Voice(name="warm-up", languages=(language,))
        self._batcher.run_here(
            [SentenceRequest(_WARM_UP_TEXT, language, voice, sink, conditioning=conditioning)]
        )
        if sink.error is not None:
            raise sink.error

    def _require_model(self) -> Xtts:
        if self._model is None:
            raise SpeechError(ErrorCode.SYNTHESIS_FAILED, "The XTTS-v2 model is not loaded.")
        return self._model


class _FirstPiece:
    """The warm-up's listener: one piece is enough; keeps a failure to raise it at load."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._pieces = 0

    @property
    def abandoned(self) -> bool:
        return self._pieces > 0 or self.error is not None

    def put(self, item: np.ndarray) -> bool:
        self._pieces += 1
        return False

    def fail(self, error: BaseException) -> None:
        self.error = error

    def finish(self) -> None:
        pass
