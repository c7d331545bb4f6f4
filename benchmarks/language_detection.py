"""How often the language chosen for a short sentence is right.

Uses the short assistant replies in tests/data/short_sentences.toml (17 languages) and the
server's own `LanguageDetector`, in the situations a voice profile creates:

- every pair of languages (a bilingual profile), both directions;
- the five hard pairs of close languages;
- all 17 languages at once (a built-in speaker, which may speak any of them);

and prints, for each, how often the choice is right, wrong, or left undecided (the segment
then keeps the previous segment's language), plus the time per decision.

    .venv/bin/python -m benchmarks.language_detection
"""

import itertools
import platform
import time
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from wyoming_xtts.text.language_detection import MIN_CONFIDENCE, MIN_LETTERS, LanguageDetector

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "short_sentences.toml"
HARD_PAIRS = [("es", "pt"), ("es", "it"), ("de", "nl"), ("cs", "pl"), ("fr", "it")]


def tally(
    detector: LanguageDetector, corpus: dict[str, list[str]], sets: Iterable[Sequence[str]]
) -> tuple[int, int, int, float]:
    right = wrong = undecided = 0
    started = time.perf_counter()
    for candidates in sets:
        for language in candidates:
            for sentence in corpus[language]:
                detection = detector.detect(sentence, candidates)
                if detection is None:
                    undecided += 1
                elif detection.language == language:
                    right += 1
                else:
                    wrong += 1
    decisions = right + wrong + undecided
    return right, wrong, undecided, (time.perf_counter() - started) / decisions * 1000


def main() -> None:
    corpus: dict[str, list[str]] = tomllib.loads(CORPUS.read_text())
    detector = LanguageDetector()
    started = time.perf_counter()
    detector.load()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"model load: {time.perf_counter() - started:.2f} s")
    print("rules: script first; else py3langid among the candidates, decided only with")
    print(f"       >= {MIN_LETTERS} letters and >= {MIN_CONFIDENCE:.0%} confidence\n")
    print(
        f"{'candidates':42} {'sentences':>9} {'right':>7} {'wrong':>7} {'undecided':>9} {'ms':>6}"
    )
    situations: dict[str, Sequence[Sequence[str]]] = {
        "every pair of the 17 languages": list(itertools.combinations(corpus, 2)),
        "pairs with English": [(code, "en") for code in corpus if code != "en"],
        "close pairs: " + " ".join("/".join(pair) for pair in HARD_PAIRS): HARD_PAIRS,
        "all 17 at once (built-in speakers)": [tuple(corpus)],
    }
    for label, sets in situations.items():
        right, wrong, undecided, ms = tally(detector, corpus, sets)
        total = right + wrong + undecided
        print(
            f"{label:42} {total:9d} {right / total:7.2%} {wrong / total:7.2%} "
            f"{undecided / total:9.2%} {ms:6.2f}"
        )


if __name__ == "__main__":
    main()
