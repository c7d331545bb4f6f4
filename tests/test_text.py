"""Segmentation of text that arrives in arbitrary pieces."""

import random

import pytest

from wyoming_xtts.text.segmentation import SentenceStream, segment_limits, split_long

from .support.chunking import random_chunking

REPLY = (
    "Good morning! The washing machine finished at 7.45 am. Dr. Smith called about the "
    'appointment, e.g. the one on Friday... He said: "Bring the forms." The forecast '
    "says 3.5 degrees, light rain and wind from the north-west, so take an umbrella, a "
    "warm coat, gloves, and maybe a scarf; the bus may be late too. Ok."
)


def segments_of(pieces: list[str], language: str = "en") -> list[str]:
    stream = SentenceStream(language)
    out = [segment for piece in pieces for segment in stream.push(piece)]
    return [sentence.text for sentence in out + stream.finish()]


def test_every_chunking_of_a_reply_yields_the_same_segments() -> None:
    whole = segments_of([REPLY])
    rng = random.Random(7)

    for _ in range(200):
        assert segments_of(random_chunking(REPLY, rng, 40)) == whole


def test_sentences_are_not_cut_at_abbreviations_decimals_or_ellipses() -> None:
    segments = segments_of([REPLY])

    assert "Good morning! The washing machine finished at 7.45 am." in segments
    assert any(segment.startswith("Dr. Smith called") for segment in segments)
    assert not any(segment.endswith(("Dr.", "7.", "e.g.")) for segment in segments)


def test_nothing_is_lost_or_duplicated() -> None:
    joined = " ".join(segments_of([REPLY]))

    assert joined.split() == REPLY.split()


def test_a_complete_sentence_is_released_once_the_next_one_starts() -> None:
    stream = SentenceStream("en")

    assert stream.push("The first sentence is here.") == []
    assert [sentence.text for sentence in stream.push(" The")] == ["The first sentence is here."]


def test_short_fragments_are_merged_with_the_next_sentence() -> None:
    assert segments_of(["Hi! Ok. The kettle has boiled and the tea is ready."]) == [
        "Hi! Ok. The kettle has boiled and the tea is ready."
    ]


def test_no_segment_exceeds_the_language_limit() -> None:
    long_sentence = "and then " * 100 + "the end."
    for language in ("en", "de", "zh-cn", "ja"):
        _, longest = segment_limits(language)
        segments = segments_of([long_sentence], language)
        assert segments and all(len(segment) <= longest for segment in segments)


def test_long_sentences_split_at_clause_punctuation_before_words() -> None:
    sentence = ", ".join(["the quick brown fox jumps over the lazy dog"] * 8) + "."

    pieces = split_long(sentence, 120)

    assert all(piece.endswith((",", ".")) for piece in pieces)
    assert " ".join(pieces) == sentence


def test_text_without_spaces_is_cut_hard_at_the_limit() -> None:
    assert [len(piece) for piece in split_long("x" * 250, 100)] == [100, 100, 50]


def test_chinese_sentences_are_joined_without_spaces() -> None:
    assert segments_of(["你好。今天天气很好，我们去公园吧！"], "zh-cn") == [
        "你好。今天天气很好，我们去公园吧！"
    ]


@pytest.mark.parametrize("text", ["", "   ", "***", "--- \n ---"])
def test_text_without_letters_or_digits_yields_nothing(text: str) -> None:
    assert segments_of([text]) == []
