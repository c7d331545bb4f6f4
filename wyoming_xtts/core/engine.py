"""The interface every speech engine implements: the core's port.

The speaking service (`speaking.py`) talks only to this interface; the front doors do not
talk to engines at all. Each engine is a subpackage of `engines/` (`local/`, `cloud/`) that
implements this port and that nothing else reaches into except the composition root
(`server.create_engine`, and the `model` command, which downloads through
`engines/local/model_files.py`). An engine yields float32 mono audio at its own sample rate;
conversion to PCM and chunking for the wire happen once, outside the engines. Two engines can
stand as one (`core/fallback.py`): a primary, and a fallback for when it cannot speak.
"""

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, get_args

import numpy as np

from .voices import Voice

Precision = Literal["auto", "fp32", "int8", "int4", "fp16"]
"""Numeric precision of the local model's GPT (see engines/local/precision.py)."""

PRECISIONS: tuple[Precision, ...] = get_args(Precision)

GptRuntime = Literal["auto", "torch", "onnx"]
"""What runs the local model's GPT token loop (see engines/local/onnx_gpt.py)."""

GPT_RUNTIMES: tuple[GptRuntime, ...] = get_args(GptRuntime)

DecoderPrecision = Literal["fp32", "bf16"]
"""Arithmetic of the local model's HiFi-GAN decoder (see engines/local/precision.py)."""

DECODER_PRECISIONS: tuple[DecoderPrecision, ...] = get_args(DecoderPrecision)


class EngineUnavailableError(Exception):
    """The engine cannot start; the message is one sentence telling the user what to do."""


class Readiness(StrEnum):
    """Whether an engine can speak now."""

    READY = "ready"
    """Loaded (or connected) and speaking."""

    UNLOADED = "unloaded"
    """Handed its memory back on purpose (`--unload-after`); loads again on the next request.
    Healthy: it can speak, after a wait."""

    DEGRADED = "degraded"
    """The primary engine cannot speak but a fallback engine can: healthy, with a reason."""

    FAILED = "failed"
    """It cannot speak: the model failed to load, the provider refuses the credentials or
    has no credit. Unhealthy until a request succeeds again."""


@dataclass(frozen=True)
class EngineHealth:
    """What `wyoming-xtts health` (and so Docker's HEALTHCHECK and the add-on's watchdog)
    reports about the engine."""

    readiness: Readiness
    """Whether it can speak now."""

    detail: str = ""
    """Why, in one sentence, when it is not simply ready."""

    @property
    def healthy(self) -> bool:
        """Whether the server can speak (perhaps after a load, or through its fallback)."""
        return self.readiness is not Readiness.FAILED


READY = EngineHealth(Readiness.READY)
"""The health of an engine with nothing to report."""


@dataclass(frozen=True)
class EngineInfo:
    """What `describe` says about the engine."""

    description: str
    """One line about the engine."""

    attribution_name: str
    """Who made the model."""

    attribution_url: str
    """Where the model comes from."""

    version: str
    """Version of the engine (library or model)."""


class Engine(Protocol):
    """A source of speech audio."""

    @property
    def info(self) -> EngineInfo:
        """Describes the engine for clients."""

    @property
    def sample_rate(self) -> int:
        """Rate in Hz of the audio `synthesize` yields (XTTS-v2: 24000)."""

    @property
    def languages(self) -> Sequence[str]:
        """XTTS language codes this engine can speak."""

    @property
    def max_concurrency(self) -> int:
        """How many segments may be synthesized at once, all clients together (local: the
        sentences it generates together, `--batch-sentences`)."""

    @property
    def segments_in_flight(self) -> int:
        """How many segments of one reply may be synthesized ahead of playback.

        1 streams each segment's audio as it is produced (local model); more collects whole
        segments and keeps later ones running while earlier ones play (cloud providers).
        """

    @property
    def cache_identity(self) -> str | None:
        """Identifies everything in the engine that shapes its audio (weights, precision,
        device), so finished audio can be kept; None when its audio cannot be repeated
        exactly (cloud providers take no seed)."""

    def spoke_itself(self, audio: AsyncGenerator[np.ndarray, None]) -> bool:
        """Whether the audio of a finished `synthesize` call (`audio`: the iterator it returned)
        was made by this engine as `cache_identity` identifies it: False when another engine
        stood in for it (a fallback, `core/fallback.py`), whose audio must never be kept and
        replayed as this engine's. Engines that always speak for themselves answer True."""

    def health(self) -> EngineHealth:
        """Whether it can speak now; cheap (asked by every health check), never blocking."""

    async def start(self) -> None:
        """Load the model or open connections; raises with a clear message when it cannot."""

    async def close(self) -> None:
        """Release the model and any background threads or connections."""

    def builtin_voices(self) -> Sequence[Voice]:
        """Speakers that come with the model (no clips); may be empty."""

    def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        """Speak one segment, yielding float32 mono audio pieces as they are produced.

        Raises `SpeechError` for failures the client should hear about. Closing the iterator
        early (the client went away) stops the work promptly.
        """
