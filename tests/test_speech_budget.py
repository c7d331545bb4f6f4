"""The guard against babble: audio longer than its text can justify is cut, generation stopped."""

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from wyoming_xtts.core.service import Core
from wyoming_xtts.core.settings import Settings
from wyoming_xtts.server import build_core
from wyoming_xtts.text.pauses import PAUSE_SECONDS, Ending
from wyoming_xtts.text.speech_budget import max_speech_seconds

from .support.clips import write_profile
from .support.scripted_engine import RATE, ScriptedEngine

SENTENCE_PAUSE_SECONDS = PAUSE_SECONDS[Ending.SENTENCE]


@dataclass
class BabblingEngine(ScriptedEngine):
    """An engine that never stops talking: one second of noise after another."""

    generated_s: list[float] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)
    languages: Sequence[str] = ("en", "zh-cn")

    async def synthesize(
        self, text: str, language: str, voice: object
    ) -> AsyncGenerator[np.ndarray, None]:
        seconds = 0.0
        try:
            while seconds < 600:
                seconds += 1.0
                yield np.random.default_rng(0).uniform(-0.5, 0.5, RATE).astype(np.float32)
        finally:
            self.generated_s.append(seconds)
            self.closed.append(seconds < 600)


async def spoken_seconds(core: Core, text: str) -> float:
    voice = await core.catalogue.resolve_voice("alice")

    async def pieces() -> AsyncIterator[str]:
        yield text

    pcm = b"".join([chunk async for chunk in core.speaking.speak(pieces(), voice)])
    return len(pcm) / 2 / RATE


@pytest.fixture
def core(tmp_path: Path) -> Core:
    write_profile(tmp_path / "voices", "alice", 'languages = ["en"]\n')
    settings = Settings(voices_dir=tmp_path / "voices", samples_per_chunk=1024)
    return build_core(settings, BabblingEngine())  # type: ignore[arg-type]


async def test_runaway_audio_is_cut_at_the_budget_and_generation_stops(core: Core) -> None:
    text = "The washing machine is done."

    seconds = await spoken_seconds(core, text)

    assert seconds == pytest.approx(max_speech_seconds(text, "en"), abs=0.01)
    engine: BabblingEngine = core.speaking.engine  # type: ignore[assignment]
    assert engine.closed == [True]
    assert engine.generated_s[0] <= seconds + 1


async def test_each_segment_gets_its_own_budget(core: Core) -> None:
    first, second = "The washing machine has finished.", "Please take the laundry out now."

    seconds = await spoken_seconds(core, f"{first} {second}")

    budgets = max_speech_seconds(first, "en") + max_speech_seconds(second, "en")
    assert seconds == pytest.approx(budgets + SENTENCE_PAUSE_SECONDS, abs=0.05)


def test_budget_grows_with_text_and_allows_for_slow_scripts_and_speed() -> None:
    assert max_speech_seconds("Hi.", "en") < max_speech_seconds("Hello there, how are you?", "en")
    assert max_speech_seconds("洗衣机洗好了", "zh-cn") > max_speech_seconds("abcdef", "en")
    assert max_speech_seconds("Hello there.", "en", speed=2.0) == pytest.approx(
        max_speech_seconds("Hello there.", "en") / 2
    )
    normal_english_s = len("The washing machine is done.") / 14
    assert max_speech_seconds("The washing machine is done.", "en") > 2 * normal_english_s
