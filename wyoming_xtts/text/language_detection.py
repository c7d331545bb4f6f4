"""Which of a voice's languages a segment of text is written in.

Home Assistant never says which language to speak, so a voice with several languages speaks
each segment in the language it is written in, chosen among the voice's own languages only:

1. The script decides where it can: kana → Japanese, Hangul → Korean, Han without kana →
   Chinese, Cyrillic → Russian, Arabic, Devanagari → Hindi.
2. Among languages sharing the Latin script, py3langid (a naive Bayes model over byte
   n-grams, numpy only) scores the segment, restricted to the voice's languages.
3. A segment too short to judge (under 12 letters), or judged with less than 95 %
   confidence, keeps the language of the segment before it: the reply's language does not
   flip on "OK." or a borrowed word. The first segment falls back to the voice's first
   language.

Measured on the short sentences in tests/data/short_sentences.toml: see docs/text.md, "How the language is chosen".
"""

import math
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MIN_LETTERS = 12
"""Segments with fewer letters than this keep the previous segment's language."""

MIN_CONFIDENCE = 0.95
"""Statistical decisions below this confidence keep the previous segment's language."""

_SCRIPT_OF_LANGUAGE = {
    "zh-cn": "han",
    "ja": "kana",
    "ko": "hangul",
    "ru": "cyrillic",
    "ar": "arabic",
    "hi": "devanagari",
}
_MODEL_CODE = {"zh-cn": "zh"}


def script_of(character: str) -> str | None:
    """The writing system of a letter, in the granularity language choice needs."""
    if not character.isalpha():
        return None
    name = unicodedata.name(character, "")
    if name.startswith(("HIRAGANA", "KATAKANA")):
        return "kana"
    if name.startswith("CJK"):
        return "han"
    if name.startswith("HANGUL"):
        return "hangul"
    for script in ("LATIN", "CYRILLIC", "ARABIC", "DEVANAGARI"):
        if name.startswith(script):
            return script.lower()
    return "other"


@dataclass(frozen=True)
class Detection:
    """A language chosen for a piece of text."""

    language: str
    """XTTS language code, one of the candidates."""

    confidence: float
    """1.0 when the script decided; else the model's probability among the candidates."""


class LanguageDetector:
    """Chooses among candidate languages; the model loads on first use (about 0.5 s)."""

    def __init__(self) -> None:
        self._model: Any = None  # py3langid's LanguageIdentifier (untyped)
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (detection then needs no thread hop)."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now (it is loaded on first need otherwise); idempotent."""
        with self._lock:
            if self._model is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                self._model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)

    def detect(self, text: str, candidates: Sequence[str]) -> Detection | None:
        """The candidate `text` is written in, or None when it cannot be told reliably."""
        if len(candidates) == 1:
            return Detection(candidates[0], 1.0)
        scripts = Counter(script for script in map(script_of, text) if script is not None)
        if not scripts:
            return None
        in_script = [code for code in candidates if self._matches(code, scripts)]
        if len(in_script) == 1:
            return Detection(in_script[0], 1.0)
        if not in_script or sum(scripts.values()) < MIN_LETTERS:
            return None
        best, confidence = self._score(text, in_script)
        return Detection(best, confidence) if confidence >= MIN_CONFIDENCE else None

    @staticmethod
    def _matches(code: str, scripts: Counter[str]) -> bool:
        dominant = scripts.most_common(1)[0][0]
        script = _SCRIPT_OF_LANGUAGE.get(code, "latin")
        if script == "kana":  # Japanese mixes kana with Han
            return scripts["kana"] > 0
        if script == "han":
            return dominant == "han" and scripts["kana"] == 0
        return dominant == script

    def _score(self, text: str, candidates: Sequence[str]) -> tuple[str, float]:
        self.load()
        ranked = dict(self._model.rank(text))
        scores = {code: ranked[_MODEL_CODE.get(code, code)] for code in candidates}
        top = max(scores.values())
        total = sum(math.exp(score - top) for score in scores.values())
        best = max(scores, key=lambda code: scores[code])
        return best, 1.0 / total


class ReplyLanguage:
    """The language of each segment of one reply, sticky across uncertain segments."""

    def __init__(self, detector: LanguageDetector, languages: Sequence[str], detect: bool) -> None:
        self._detector = detector
        self._languages = tuple(languages)
        self._detect = detect and len(self._languages) > 1
        self._current = self._languages[0]

    @property
    def detects(self) -> bool:
        """Whether segments are judged at all (several languages, detection wanted)."""
        return self._detect

    @property
    def primary(self) -> str:
        """The voice's first language: used until a segment says otherwise."""
        return self._languages[0]

    def of(self, segment: str) -> str:
        """The language to speak `segment` in."""
        if self._detect:
            detection = self._detector.detect(segment, self._languages)
            if detection is not None:
                self._current = detection.language
        return self._current
