"""The engine for cloud XTTS-v2 providers: one prediction per segment, over httpx.

Providers differ only in how a prediction is created, awaited and fetched (`CloudProvider`);
everything else — deadline, loudness, languages — is shared here, and downloading and
decoding in `http.py`. Providers do not
stream audio, so the service keeps several segments of one reply in flight at once
(`segments_in_flight`) to start speaking before a long reply is fully synthesized.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
import numpy as np

from ...core.audio import XTTS_OUTPUT_RATE, normalize_loudness
from ...core.engine import READY, EngineHealth, EngineInfo, Readiness
from ...core.errors import ErrorCode, SpeechError
from ...core.voices import Voice
from ...text.languages import XTTS_LANGUAGES

_LOGGER = logging.getLogger(__name__)


PROVIDER_LANGUAGES: tuple[str, ...] = tuple(code for code in XTTS_LANGUAGES if code != "ja")
"""What both providers accept: XTTS-v2's languages except Japanese."""

_PROVIDER_CODES = {"zh-cn": "zh"}


def provider_language(code: str) -> str:
    """The providers' spelling of an XTTS language code (`zh-cn` → `zh`)."""
    return _PROVIDER_CODES.get(code, code)


@dataclass(frozen=True)
class CloudSettings:
    """Provider-independent settings of the cloud engine."""

    timeout_s: float
    """Deadline for one segment: create, wait, download; then `provider-timeout`."""

    segments_in_flight: int
    """Predictions of one reply running at once."""

    max_requests: int
    """Predictions running at once across all clients."""

    cleanup_voice: bool
    """Default for asking the provider to denoise the reference clip."""


@dataclass(frozen=True)
class CloudJob:
    """One segment to synthesize."""

    text: str
    """The segment's text."""

    language: str
    """Language in the provider's spelling."""

    voice: Voice
    """The voice profile (reference clips or speaker URL)."""

    cleanup_voice: bool
    """Ask the provider to denoise the reference."""


class CloudProvider(Protocol):
    """What differs between providers: turning a job into an audio file."""

    @property
    def name(self) -> str:
        """Shown in errors and logs, e.g. `Replicate (lucataco/xtts-v2)`."""

    @property
    def url(self) -> str:
        """Public page of the provider's model, for attribution."""

    async def render(self, client: httpx.AsyncClient, job: CloudJob) -> np.ndarray:
        """Run one prediction and return its audio, mono float32 at `XTTS_OUTPUT_RATE` (decoded by
        `http.download_audio`, which re-fetches an incomplete file once); raise `SpeechError`.

        Cancellation (client gone, deadline) must release provider-side work if the
        provider offers a way to.
        """

    async def close(self) -> None:
        """Wait briefly for any cleanup requests still in flight."""


_ACCOUNT_REFUSALS = frozenset({ErrorCode.PROVIDER_AUTH, ErrorCode.PROVIDER_BALANCE})
"""Failures that no request can get past: the server cannot speak until they are mended."""


class CloudEngine:
    """The `Engine` for a cloud XTTS-v2 provider."""

    def __init__(self, provider: CloudProvider, settings: CloudSettings) -> None:
        self._provider = provider
        self._settings = settings
        self._client: httpx.AsyncClient | None = None
        self._refusal: SpeechError | None = None
        """The last refusal of the account itself (credentials, credit), until a success."""

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            description=f"Coqui XTTS-v2 voice cloning through {self._provider.name}",
            attribution_name=self._provider.name,
            attribution_url=self._provider.url,
            version="cloud",
        )

    @property
    def sample_rate(self) -> int:
        return XTTS_OUTPUT_RATE

    @property
    def languages(self) -> Sequence[str]:
        return PROVIDER_LANGUAGES

    @property
    def max_concurrency(self) -> int:
        return self._settings.max_requests

    @property
    def segments_in_flight(self) -> int:
        return self._settings.segments_in_flight

    @property
    def cache_identity(self) -> None:
        return None  # the providers take no seed: no two readings are the same

    def spoke_itself(self, audio: AsyncGenerator[np.ndarray, None]) -> bool:
        return True

    def health(self) -> EngineHealth:
        if self._refusal is not None:
            return EngineHealth(Readiness.FAILED, self._refusal.message)
        return READY

    async def start(self) -> None:
        # Replicate may hold a create request open for up to 60 s (`Prefer: wait`).
        timeout = httpx.Timeout(connect=10.0, read=75.0, write=30.0, pool=None)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def close(self) -> None:
        await self._provider.close()
        if self._client is not None:
            await self._client.aclose()

    def builtin_voices(self) -> Sequence[Voice]:
        return []

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        assert self._client is not None, "start() first"
        if voice.is_builtin and not voice.speaker_url:
            # Only as the fallback of the local engine: its studio speakers have no clips.
            raise SpeechError(
                ErrorCode.VOICE_UNUSABLE,
                f"{self._provider.name} clones a voice from its clips, and {voice.name!r} is a "
                "built-in speaker of the local model, which has none: ask for a voice profile.",
            )
        cleanup = (
            voice.cleanup_voice if voice.cleanup_voice is not None else self._settings.cleanup_voice
        )
        job = CloudJob(text, provider_language(language), voice, cleanup)
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                audio = await self._provider.render(self._client, job)
        except SpeechError as err:
            if err.code in _ACCOUNT_REFUSALS:
                self._refusal = err
            raise
        except TimeoutError:
            raise SpeechError(
                ErrorCode.PROVIDER_TIMEOUT,
                f"{self._provider.name} did not deliver audio within "
                f"{self._settings.timeout_s:g} s (--provider-timeout).",
            ) from None
        self._refusal = None
        yield normalize_loudness(audio, XTTS_OUTPUT_RATE)
