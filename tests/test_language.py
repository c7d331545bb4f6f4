"""Choosing the language of each segment, and segmenting LLM replies in any chunking."""

import itertools
import random
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeVoice

from wyoming_xtts.text.cleanup import SpeechTextCleaner
from wyoming_xtts.text.language_detection import LanguageDetector, ReplyLanguage
from wyoming_xtts.text.languages import XTTS_CHAR_LIMITS
from wyoming_xtts.text.segmentation import Segment, reply_segments, segment_limits
from wyoming_xtts.text.spoken_forms import speakable

from .conftest import BUILTIN_SPEAKERS, DETECTOR, LiveServer, read_until
from .support.chunking import random_chunking
from .support.clips import write_profile

DATA = Path(__file__).parent / "data"
SHORT_SENTENCES: dict[str, list[str]] = tomllib.loads((DATA / "short_sentences.toml").read_text())
REPLIES = tomllib.loads((DATA / "llm_replies.toml").read_text())["reply"]
LATIN = ["en", "de", "fr", "es", "it", "pt", "nl", "pl", "cs", "tr", "hu"]
NON_LATIN = ["ru", "ar", "hi", "zh-cn", "ja", "ko"]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    DETECTOR.load()
    return DETECTOR


def test_detector_tells_apart_every_pair_of_latin_languages_on_short_sentences(
    detector: LanguageDetector,
) -> None:
    outcomes = [
        (detection := detector.detect(sentence, pair)) is not None
        and detection.language == language
        for pair in itertools.combinations(LATIN, 2)
        for language in pair
        for sentence in SHORT_SENTENCES[language]
    ]

    assert len(outcomes) == 1650
    assert outcomes.count(False) / len(outcomes) <= 0.03


@pytest.mark.parametrize("language", NON_LATIN)
def test_script_decides_for_non_latin_languages(detector: LanguageDetector, language: str) -> None:
    candidates = ["en", "zh-cn", "ja"] if language != "zh-cn" else ["ja", "en", "zh-cn"]
    candidates = [*candidates, language] if language not in candidates else candidates

    for sentence in SHORT_SENTENCES[language]:
        detection = detector.detect(sentence, candidates)
        assert detection is not None and detection.language == language, sentence
        assert detection.confidence == 1.0


def test_text_in_a_script_none_of_the_languages_use_is_undecided(
    detector: LanguageDetector,
) -> None:
    assert detector.detect("Стиральная машина закончила.", ["en", "de"]) is None


def test_short_segments_keep_the_language_of_the_one_before(detector: LanguageDetector) -> None:
    language = ReplyLanguage(detector, ["en", "de"], detect=True)

    spoken = [
        language.of(text)
        for text in (
            "Ja.",
            "Die Waschmaschine ist fertig.",
            "OK.",
            "Danke!",
            "The dryer is done too.",
        )
    ]

    assert spoken == ["en", "de", "de", "de", "en"]


def test_detection_off_always_speaks_the_first_language(detector: LanguageDetector) -> None:
    language = ReplyLanguage(detector, ["en", "de"], detect=False)

    assert language.of("Die Waschmaschine ist fertig und wartet.") == "en"


async def segments_of(pieces: list[str], voice: list[str]) -> list[Segment]:
    async def stream() -> AsyncIterator[str]:
        for piece in pieces:
            yield piece

    language = ReplyLanguage(DETECTOR, voice, detect=True)
    return [segment async for segment in reply_segments(stream(), language)]


def letters(text: str) -> str:
    return re.sub(r"\W", "", text)


@pytest.mark.parametrize("reply", REPLIES, ids=[reply["name"] for reply in REPLIES])
async def test_every_chunking_of_an_llm_reply_yields_the_same_well_formed_segments(
    detector: LanguageDetector, reply: dict
) -> None:
    whole = await segments_of([reply["text"]], reply["voice"])
    rng = random.Random(5)

    for _ in range(60):
        assert await segments_of(random_chunking(reply["text"], rng, 50), reply["voice"]) == whole

    expected = reply.get("languages") or [reply["language"]] * len(whole)
    assert [segment.language for segment in whole] == expected
    for segment in whole:
        shortest, _ = segment_limits(segment.language)
        assert len(segment.text) <= XTTS_CHAR_LIMITS[segment.language]
        assert len(segment.text) >= shortest or len(whole) == 1
    cleaner = SpeechTextCleaner()
    spoken_text = speakable(cleaner.push(reply["text"]) + cleaner.finish(), expected[0])
    assert letters("".join(segment.text for segment in whole)) == letters(spoken_text)


# -- through the server -------------------------------------------------------------------


async def speak(server: LiveServer, text: str, voice: str) -> list[Event]:
    async with server.client() as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice)).event())
        return await read_until(client, "audio-stop", "error")


async def test_a_bilingual_voice_speaks_each_reply_in_its_language(live_server: LiveServer) -> None:
    write_profile(live_server.voices_dir, "oma", 'languages = ["de", "en"]\n')

    await speak(live_server, "The washing machine has finished its cycle.", "oma")
    await speak(live_server, "Die Waschmaschine ist fertig, bitte ausräumen.", "oma")

    assert live_server.engine.spoken_in == ["en", "de"]


async def test_voice_name_with_a_language_suffix_forces_that_language(
    live_server: LiveServer,
) -> None:
    write_profile(live_server.voices_dir, "oma", 'languages = ["de", "en"]\n')

    events = await speak(live_server, "The washing machine has finished its cycle.", "oma@de")

    assert events[-1].type == "audio-stop"
    assert live_server.engine.spoken_in == ["de"]


async def test_unknown_language_suffix_is_an_error_and_the_server_stays_usable(
    live_server: LiveServer,
) -> None:
    async with live_server.client() as client:
        await client.write_event(
            Synthesize(text="Hello there.", voice=SynthesizeVoice(name="alice@xx")).event()
        )
        error = (await read_until(client, "audio-stop", "error"))[-1]
    async with live_server.client() as client:
        await client.write_event(
            Synthesize(text="Hello again, everyone.", voice=SynthesizeVoice(name="alice")).event()
        )
        after = await read_until(client, "audio-stop", "error")

    assert error.type == "error" and error.data["code"] == "language-unsupported"
    assert "'xx'" in error.data["text"]
    assert after[-1].type == "audio-stop"


async def test_profile_can_turn_detection_off(live_server: LiveServer) -> None:
    write_profile(
        live_server.voices_dir, "oma", 'languages = ["de", "en"]\ndetect_language = false\n'
    )

    await speak(live_server, "The washing machine has finished its cycle.", "oma")

    assert live_server.engine.spoken_in == ["de"]


@pytest.mark.slow
async def test_builtin_speaker_speaks_the_language_of_the_text(live_server: LiveServer) -> None:
    replies = [
        await speak(live_server, text, BUILTIN_SPEAKERS[0])
        for text in (
            "Die Waschmaschine ist fertig, bitte ausräumen.",
            "洗衣机已经洗好了，请把衣服拿出来。",
            "洗濯が終わりました。早めに干してください。",
            "세탁기가 끝났습니다. 빨래를 꺼내 주세요.",
        )
    ]

    assert [events[-1].type for events in replies] == ["audio-stop"] * 4
    assert live_server.engine.spoken_in == ["de", "zh-cn", "ja", "ko"]
