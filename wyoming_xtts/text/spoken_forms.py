"""Times, dates and units written the way they are read, before XTTS-v2's tokenizer.

XTTS-v2's tokenizer already reads numbers, decimals, ordinals, currencies, `%`, `&`, `@` and
`°` in each of its languages (num2words). It does not read clock times ("14:30" becomes
"fourteen:thirty"), dates ("21.11.2026" becomes a decimal, "2026-11-21" a subtraction), or
unit symbols ("km/h", "kWh", "°C" read letter by letter). This module rewrites those into
words and digits the tokenizer then reads correctly: "14:30" → "14 Uhr 30" in German,
"2026-11-21" → "November 21st, twenty twenty-six" in English, "15 km/h" → "15 kilometres per
hour". Fifteen languages have word tables; Arabic and Hindi get times and dates with their
separators turned into pauses, so that at least each number is read as a number. The words live in spoken_forms.toml, beside this file.
"""

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from num2words import num2words

_TIME = re.compile(
    r"\b(?P<hour>[01]?\d|2[0-3])(?::|h(?=\d)|\.(?=\d\d\s*(?:Uhr|uur)))(?P<minute>[0-5]\d)\b"
    r"(?:\s*(?P<suffix>[ap]\.?\s?m\.?|Uhr|uur|h)(?![\w]))?",
    re.IGNORECASE,
)
_FRENCH_HOUR = re.compile(r"\b(?P<hour>[01]?\d|2[0-3])\s?h(?![\w])")
_ISO_DATE = re.compile(
    r"\b(?P<year>\d{4})-(?P<month>0?[1-9]|1[0-2])-(?P<day>0?[1-9]|[12]\d|3[01])\b"
)
_DOTTED_DATE = re.compile(
    r"\b(?P<day>0?[1-9]|[12]\d|3[01])\.(?P<month>0?[1-9]|1[0-2])\.(?P<year>\d{4}|\d{2})?(?!\d)"
)
_SLASHED_DATE = re.compile(r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<year>\d{4}|\d{2})\b")


_WORDS_FILE = "spoken_forms.toml"


@dataclass(frozen=True)
class _LanguageRules:
    """How one language reads times, dates and units (from spoken_forms.toml)."""

    language: str
    """XTTS language code."""

    months: tuple[str, ...]
    """January … December as they follow a day."""

    day_first: bool
    """Whether 03/04 is the 3rd of April (True) or March 4th (False)."""

    units: Mapping[str, tuple[str, str]]
    """Unit symbol → (singular, plural) words."""

    formats: Mapping[str, Any]
    """`time`, `full_hour`, `date`, `date_without_year`, optional `first_day`, `hour_word`."""

    def time(self, hour: int, minute: int, period: str) -> str:
        """A clock time; `period` is "am", "pm" or ""."""
        if self.language == "en":
            suffix = f" {'a.m.' if period == 'am' else 'p.m.'}" if period else ""
            if minute == 0:
                return f"{hour}{suffix}" if suffix else f"{hour} o'clock"
            return f"{hour} {'oh ' if minute < 10 else ''}{minute}{suffix}"
        singular, plural = self.formats.get("hour_word", ("", ""))
        template: str = self.formats["full_hour" if minute == 0 else "time"]
        return template.format(
            hour=hour, minute=minute, hour_word=singular if hour == 1 else plural
        )

    def date(self, day: int, month: int, year: int | None) -> str:
        """A calendar date (the year may be missing)."""
        name = self.months[month - 1]
        if self.language == "en":
            ordinal = num2words(day, to="ordinal_num", lang="en")
            return f"{name} {ordinal}" + (
                f", {num2words(year, to='year', lang='en')}" if year else ""
            )
        shown_day = self.formats.get("first_day", day) if day == 1 else day
        template: str = self.formats["date" if year else "date_without_year"]
        return template.format(day=shown_day, month=name, year=year)


def _load_rules() -> dict[str, _LanguageRules]:
    table = tomllib.loads(resources.files(__package__).joinpath(_WORDS_FILE).read_text("utf-8"))
    return {
        language: _LanguageRules(
            language=language,
            months=tuple(entry["months"]),
            day_first=entry["day_first"],
            units=MappingProxyType(
                {unit: (one, many) for unit, (one, many) in entry["units"].items()}
            ),
            formats=MappingProxyType(
                {
                    key: value
                    for key, value in entry.items()
                    if key not in ("months", "day_first", "units")
                }
            ),
        )
        for language, entry in table.items()
    }


_RULES: Mapping[str, _LanguageRules] = MappingProxyType(_load_rules())
_METRIC = sorted({unit for rules in _RULES.values() for unit in rules.units}, key=len, reverse=True)

_UNIT = re.compile(
    r"(?P<number>\d+(?:[.,]\d+)?)\s?(?P<unit>"
    + "|".join(re.escape(unit) for unit in _METRIC)
    + r")(?![\w/])"
)


def speakable(text: str, language: str) -> str:
    """`text` with its times, dates and units written out for `language`."""
    rules = _RULES.get(language)
    text = _ISO_DATE.sub(lambda m: _date(rules, m["day"], m["month"], m["year"]), text)
    text = _DOTTED_DATE.sub(lambda m: _dotted(rules, m), text)
    text = _SLASHED_DATE.sub(lambda m: _slashed(rules, m), text)
    text = _TIME.sub(lambda m: _time(rules, m), text)
    if language == "fr":
        text = _FRENCH_HOUR.sub(
            lambda m: rules.time(int(m["hour"]), 0, "") if rules else m[0], text
        )
    if rules is not None:
        text = _UNIT.sub(lambda m: _unit(rules, m), text)
    return text


def _date(rules: _LanguageRules | None, day: str, month: str, year: str | None) -> str:
    if rules is None:
        return " ".join(part for part in (day, month, year) if part)
    full_year = int(year) + 2000 if year and len(year) == 2 else (int(year) if year else None)
    return rules.date(int(day), int(month), full_year)


def _dotted(rules: _LanguageRules | None, match: re.Match[str]) -> str:
    spoken = _date(rules, match["day"], match["month"], match["year"])
    at_end = not match.string[match.end() :].strip()
    # "am 3.4." ends a sentence with the date's own dot: keep a full stop.
    return spoken + "." if at_end and not match["year"] else spoken


def _slashed(rules: _LanguageRules | None, match: re.Match[str]) -> str:
    first, second = int(match["a"]), int(match["b"])
    day_first = rules.day_first if rules else True
    if first > 12 or second > 12:  # the only reading that is a date wins
        day_first = first > 12
    day, month = (first, second) if day_first else (second, first)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match[0]
    return _date(rules, str(day), str(month), match["year"])


def _time(rules: _LanguageRules | None, match: re.Match[str]) -> str:
    hour, minute = int(match["hour"]), int(match["minute"])
    suffix = (match["suffix"] or "").lower().replace(".", "").replace(" ", "")
    if rules is None:
        return f"{hour} {minute:02d}" + (f" {match['suffix']}" if match["suffix"] else "")
    spoken = rules.time(hour, minute, suffix if suffix in ("am", "pm") else "")
    return spoken


def _unit(rules: _LanguageRules, match: re.Match[str]) -> str:
    singular, plural = rules.units[match["unit"]]
    number = match["number"]
    return f"{number} {singular if number == '1' else plural}"


_FORMAT_PARTS = {"y": "year", "m": "month", "d": "day"}
# num2words' names for the XTTS languages it knows (Chinese has no ordinals there).
_NUM2WORDS = {"zh-cn": None, "ko": "ko", "ja": "ja"}


def spoken_date(text: str, language: str, order: str | None = None) -> str:
    """A date as SSML's `<say-as interpret-as="date" format="dmy">` gives it: its numbers in
    `order` (`dmy`, `mdy`, `ymd`, `dm`, `md`, `ym`, …); without one, read as plain text is."""
    numbers = re.findall(r"\d+", text)
    if not order or len(order) != len(numbers) or set(order) - set(_FORMAT_PARTS):
        return speakable(text, language)
    parts = {_FORMAT_PARTS[letter]: value for letter, value in zip(order, numbers, strict=True)}
    day, month = int(parts.get("day", "1")), int(parts.get("month", "0"))
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return speakable(text, language)
    rules = _RULES.get(language)
    if "day" not in parts:  # a month and a year: the month's name and the year
        name = rules.months[month - 1] if rules else str(month)
        return f"{name} {parts.get('year', '')}".strip()
    return _date(rules, str(day), str(month), parts.get("year"))


def spoken_ordinal(number: int, language: str) -> str:
    """An ordinal number in words ("3" → "third"); digits where num2words lacks the language."""
    code = _NUM2WORDS.get(language, language)
    if code is None:
        return str(number)
    try:
        return str(num2words(number, to="ordinal", lang=code))
    except (NotImplementedError, OverflowError):
        return str(number)
