"""Times, dates and units written the way they are read, before XTTS-v2's tokenizer.

XTTS-v2's tokenizer already reads numbers, decimals, ordinals, currencies, `%`, `&`, `@` and
`°` in each of its languages (num2words). It does not read clock times ("14:30" becomes
"fourteen:thirty"), dates ("21.11.2026" becomes a decimal, "2026-11-21" a subtraction), or
unit symbols ("km/h", "kWh", "°C" read letter by letter). This module rewrites those into
words and digits the tokenizer then reads correctly: "14:30" → "14 Uhr 30" in German,
"2026-11-21" → "November 21st, twenty twenty-six" in English, "15 km/h" → "15 kilometres per
hour". English, German, French, Spanish, Italian, Portuguese and Dutch get full rules; other
languages get times and dates with their separators turned into pauses, so that at least
each number is read as a number.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class _LanguageRules:
    months: tuple[str, ...]
    """January … December as they follow a day."""

    day_first: bool
    """Whether 03/04 is the 3rd of April (True) or March 4th (False)."""

    date: Callable[[int, str, int | None], str]
    """(day, month name, year) → the date as it is read."""

    time: Callable[[int, int, str], str]
    """(hour, minute, am/pm or "") → the time as it is read."""

    units: dict[str, tuple[str, str]]
    """Unit symbol → (singular, plural) words."""


def _en_time(hour: int, minute: int, suffix: str) -> str:
    period = f" {'a.m.' if suffix.startswith('a') else 'p.m.'}" if suffix else ""
    if minute == 0:
        return f"{hour}{period}" if period else f"{hour} o'clock"
    return f"{hour} {'oh ' if minute < 10 else ''}{minute}{period}"


def _en_date(day: int, month: str, year: int | None) -> str:
    ordinal = num2words(day, to="ordinal_num", lang="en")
    return f"{month} {ordinal}" + (f", {num2words(year, to='year', lang='en')}" if year else "")


def _joined(word: str, zero: str = "") -> Callable[[int, int, str], str]:
    """Hour WORD minute, or the hour alone (plus `zero`) on the full hour."""

    def time(hour: int, minute: int, suffix: str) -> str:
        if minute == 0:
            return f"{hour}{zero}"
        return f"{hour} {word} {minute}"

    return time


def _day_month_year(between: str = " ") -> Callable[[int, str, int | None], str]:
    def date(day: int, month: str, year: int | None) -> str:
        return f"{day}{between}{month}" + (f"{between}{year}" if year else "")

    return date


_METRIC = ("°C", "°F", "km/h", "mph", "kWh", "kW", "km", "cm", "mm", "kg", "hPa", "W", "m", "h")

_RULES: dict[str, _LanguageRules] = {
    "en": _LanguageRules(
        months=(
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        day_first=False,
        date=_en_date,
        time=_en_time,
        units={
            "°C": ("degree Celsius", "degrees Celsius"),
            "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
            "km/h": ("kilometre per hour", "kilometres per hour"),
            "mph": ("mile per hour", "miles per hour"),
            "kWh": ("kilowatt hour", "kilowatt hours"),
            "kW": ("kilowatt", "kilowatts"),
            "km": ("kilometre", "kilometres"),
            "cm": ("centimetre", "centimetres"),
            "mm": ("millimetre", "millimetres"),
            "kg": ("kilogram", "kilograms"),
            "hPa": ("hectopascal", "hectopascals"),
            "W": ("watt", "watts"),
            "m": ("metre", "metres"),
            "h": ("hour", "hours"),
        },
    ),
    "de": _LanguageRules(
        months=(
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ),
        day_first=True,
        date=lambda day, month, year: f"{day}. {month}" + (f" {year}" if year else ""),
        time=_joined("Uhr", " Uhr"),
        units={
            "°C": ("Grad Celsius", "Grad Celsius"),
            "°F": ("Grad Fahrenheit", "Grad Fahrenheit"),
            "km/h": ("Kilometer pro Stunde", "Kilometer pro Stunde"),
            "mph": ("Meile pro Stunde", "Meilen pro Stunde"),
            "kWh": ("Kilowattstunde", "Kilowattstunden"),
            "kW": ("Kilowatt", "Kilowatt"),
            "km": ("Kilometer", "Kilometer"),
            "cm": ("Zentimeter", "Zentimeter"),
            "mm": ("Millimeter", "Millimeter"),
            "kg": ("Kilogramm", "Kilogramm"),
            "hPa": ("Hektopascal", "Hektopascal"),
            "W": ("Watt", "Watt"),
            "m": ("Meter", "Meter"),
            "h": ("Stunde", "Stunden"),
        },
    ),
    "fr": _LanguageRules(
        months=(
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ),
        day_first=True,
        date=lambda day, month, year: (
            f"{'1er' if day == 1 else day} {month}" + (f" {year}" if year else "")
        ),
        time=lambda hour, minute, _: (
            f"{hour} {'heure' if hour == 1 else 'heures'}" + (f" {minute}" if minute else "")
        ),
        units={
            "°C": ("degré Celsius", "degrés Celsius"),
            "°F": ("degré Fahrenheit", "degrés Fahrenheit"),
            "km/h": ("kilomètre par heure", "kilomètres par heure"),
            "mph": ("mile par heure", "miles par heure"),
            "kWh": ("kilowattheure", "kilowattheures"),
            "kW": ("kilowatt", "kilowatts"),
            "km": ("kilomètre", "kilomètres"),
            "cm": ("centimètre", "centimètres"),
            "mm": ("millimètre", "millimètres"),
            "kg": ("kilogramme", "kilogrammes"),
            "hPa": ("hectopascal", "hectopascals"),
            "W": ("watt", "watts"),
            "m": ("mètre", "mètres"),
            "h": ("heure", "heures"),
        },
    ),
    "es": _LanguageRules(
        months=(
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ),
        day_first=True,
        date=_day_month_year(" de "),
        time=_joined("y"),
        units={
            "°C": ("grado Celsius", "grados Celsius"),
            "°F": ("grado Fahrenheit", "grados Fahrenheit"),
            "km/h": ("kilómetro por hora", "kilómetros por hora"),
            "mph": ("milla por hora", "millas por hora"),
            "kWh": ("kilovatio hora", "kilovatios hora"),
            "kW": ("kilovatio", "kilovatios"),
            "km": ("kilómetro", "kilómetros"),
            "cm": ("centímetro", "centímetros"),
            "mm": ("milímetro", "milímetros"),
            "kg": ("kilogramo", "kilogramos"),
            "hPa": ("hectopascal", "hectopascales"),
            "W": ("vatio", "vatios"),
            "m": ("metro", "metros"),
            "h": ("hora", "horas"),
        },
    ),
    "it": _LanguageRules(
        months=(
            "gennaio",
            "febbraio",
            "marzo",
            "aprile",
            "maggio",
            "giugno",
            "luglio",
            "agosto",
            "settembre",
            "ottobre",
            "novembre",
            "dicembre",
        ),
        day_first=True,
        date=_day_month_year(),
        time=_joined("e"),
        units={
            "°C": ("grado Celsius", "gradi Celsius"),
            "°F": ("grado Fahrenheit", "gradi Fahrenheit"),
            "km/h": ("chilometro orario", "chilometri orari"),
            "mph": ("miglio orario", "miglia orarie"),
            "kWh": ("chilowattora", "chilowattora"),
            "kW": ("chilowatt", "chilowatt"),
            "km": ("chilometro", "chilometri"),
            "cm": ("centimetro", "centimetri"),
            "mm": ("millimetro", "millimetri"),
            "kg": ("chilogrammo", "chilogrammi"),
            "hPa": ("ettopascal", "ettopascal"),
            "W": ("watt", "watt"),
            "m": ("metro", "metri"),
            "h": ("ora", "ore"),
        },
    ),
    "pt": _LanguageRules(
        months=(
            "janeiro",
            "fevereiro",
            "março",
            "abril",
            "maio",
            "junho",
            "julho",
            "agosto",
            "setembro",
            "outubro",
            "novembro",
            "dezembro",
        ),
        day_first=True,
        date=_day_month_year(" de "),
        time=_joined("e", " horas"),
        units={
            "°C": ("grau Celsius", "graus Celsius"),
            "°F": ("grau Fahrenheit", "graus Fahrenheit"),
            "km/h": ("quilómetro por hora", "quilómetros por hora"),
            "mph": ("milha por hora", "milhas por hora"),
            "kWh": ("quilowatt-hora", "quilowatts-hora"),
            "kW": ("quilowatt", "quilowatts"),
            "km": ("quilómetro", "quilómetros"),
            "cm": ("centímetro", "centímetros"),
            "mm": ("milímetro", "milímetros"),
            "kg": ("quilograma", "quilogramas"),
            "hPa": ("hectopascal", "hectopascais"),
            "W": ("watt", "watts"),
            "m": ("metro", "metros"),
            "h": ("hora", "horas"),
        },
    ),
    "nl": _LanguageRules(
        months=(
            "januari",
            "februari",
            "maart",
            "april",
            "mei",
            "juni",
            "juli",
            "augustus",
            "september",
            "oktober",
            "november",
            "december",
        ),
        day_first=True,
        date=_day_month_year(),
        time=_joined("uur", " uur"),
        units={
            "°C": ("graad Celsius", "graden Celsius"),
            "°F": ("graad Fahrenheit", "graden Fahrenheit"),
            "km/h": ("kilometer per uur", "kilometer per uur"),
            "mph": ("mijl per uur", "mijl per uur"),
            "kWh": ("kilowattuur", "kilowattuur"),
            "kW": ("kilowatt", "kilowatt"),
            "km": ("kilometer", "kilometer"),
            "cm": ("centimeter", "centimeter"),
            "mm": ("millimeter", "millimeter"),
            "kg": ("kilogram", "kilogram"),
            "hPa": ("hectopascal", "hectopascal"),
            "W": ("watt", "watt"),
            "m": ("meter", "meter"),
            "h": ("uur", "uur"),
        },
    ),
}

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
    return rules.date(int(day), rules.months[int(month) - 1], full_year)


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
