"""Markdown, emoji and URLs in LLM replies → text worth reading aloud, while streaming."""

import random
import tomllib
from pathlib import Path

import pytest

from wyoming_xtts.text.cleanup import SpeechTextCleaner

from .support.chunking import random_chunking

REPLIES = [
    reply["text"]
    for reply in tomllib.loads((Path(__file__).parent / "data" / "llm_replies.toml").read_text())[
        "reply"
    ]
]


def cleaned(*pieces: str) -> str:
    cleaner = SpeechTextCleaner()
    return "".join(cleaner.push(piece) for piece in pieces) + cleaner.finish()


@pytest.mark.parametrize("reply", REPLIES, ids=range(len(REPLIES)))
def test_every_chunking_of_a_reply_cleans_to_the_same_text(reply: str) -> None:
    whole = cleaned(reply)
    rng = random.Random(11)

    for _ in range(150):
        assert cleaned(*random_chunking(reply, rng, 60)) == whole


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        ("## Weather today\nSunny.", "Weather today. Sunny."),
        ("It is **very** *warm* and __dry__ ~~not~~.", "It is very warm and dry not."),
        ("- Milk\n- Bread\n* Eggs\n+ Jam", "Milk. Bread. Eggs. Jam."),
        ("1. Open the app\n2) Tap Settings", "Open the app. Tap Settings."),
        ("Ingredients:\n- flour", "Ingredients. flour."),
        ("> Quoted advice.", "Quoted advice."),
        ("Before\n\n---\n\nAfter", "Before. \n\nAfter."),
        ("| Day | Temp |\n|:---|---:|\n| Mon | 20 |", "Day, Temp. Mon, 20."),
        ("Run:\n```bash\nsudo reboot\n```\nThen wait.", "Run. Then wait."),
        ("Use `snake_case` names.", "Use snake case names."),
        ("See [the docs](https://example.org/a_b) now.", "See the docs now."),
        ("![a photo of a cat](cat.png)", "a photo of a cat."),
        ("Visit https://www.home-assistant.io/blog/2025/ today.", "Visit home-assistant.io today."),
        ("Or <https://example.org/x>.", "Or example.org."),
        ("Done ✅ 👍🏽 great 👨‍👩‍👧!", "Done great!"),
        ("Really?!?! Yes!!! Well,, ok.... fine", "Really? Yes! Well, ok... fine."),
        ("Line<br>break and <b>bold</b>.", "Line break and bold."),
        (
            "It costs 5 € - about 20 % less & 3 °C colder.",
            "It costs 5 € - about 20 % less & 3 °C colder.",
        ),
    ],
)
def test_markdown_is_reduced_to_what_a_person_would_say(markdown: str, spoken: str) -> None:
    assert cleaned(markdown).strip() == spoken


def test_first_sentence_is_released_before_the_reply_ends() -> None:
    cleaner = SpeechTextCleaner()

    released = cleaner.push("The **washing machine** is done. Please empty ")

    assert released.startswith("The washing machine is done.")


def test_an_unfinished_link_is_held_back_until_it_closes() -> None:
    cleaner = SpeechTextCleaner()

    assert cleaner.push("See [the manual](https://exa") == "See"
    assert cleaner.push("mple.org/m) today") == " the manual today"


def test_an_unclosed_bracket_is_given_up_on_after_a_bound() -> None:
    cleaner = SpeechTextCleaner()

    released = cleaner.push("[" + "word " * 100)

    assert released.startswith("word word")
