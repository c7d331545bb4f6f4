"""A base for engines whose audio a test scripts (faults, babble): the `Engine` interface minus
`synthesize`, which each subclass writes."""

from collections.abc import AsyncGenerator, Sequence

import numpy as np

from wyoming_xtts.core.engine import READY, EngineHealth, EngineInfo

RATE = 24_000


class ScriptedEngine:
    """Everything an engine must offer except `synthesize`; audio at 24 kHz, English only."""

    info = EngineInfo("test engine", "tests", "https://example.org", "0")
    sample_rate = RATE
    languages: Sequence[str] = ("en",)
    max_concurrency = 1
    segments_in_flight = 1
    cache_identity: str | None = None

    def health(self) -> EngineHealth:
        return READY

    def spoke_itself(self, audio: AsyncGenerator[np.ndarray, None]) -> bool:
        return True

    async def start(self) -> None:
        """Nothing to load."""

    async def close(self) -> None:
        """Nothing to release."""

    def builtin_voices(self) -> list:
        return []
