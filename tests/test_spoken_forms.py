"""Times, dates and units rewritten for XTTS-v2's tokenizer, per language."""

import pytest

from wyoming_xtts.text.spoken_forms import speakable


@pytest.mark.parametrize(
    ("language", "written", "spoken"),
    [
        ("en", "It is 14:30.", "It is 14 30."),
        ("en", "Meet at 7:05 pm or 9:00.", "Meet at 7 oh 5 p.m. or 9 o'clock."),
        ("en", "Due 2026-11-21.", "Due November 21st, twenty twenty-six."),
        (
            "en",
            "On 11/21/2026 and 03/04/2026.",
            "On November 21st, twenty twenty-six and March 4th, twenty twenty-six.",
        ),
        (
            "en",
            "It is 21.5°C with 15 km/h winds.",
            "It is 21.5 degrees Celsius with 15 kilometres per hour winds.",
        ),
        (
            "en",
            "Used 1 kWh, 3 kW, 2 h, 10 m.",
            "Used 1 kilowatt hour, 3 kilowatts, 2 hours, 10 metres.",
        ),
        ("de", "Um 14:30 Uhr am 21.11.2026.", "Um 14 Uhr 30 am 21. November 2026."),
        ("de", "Ab 7.30 Uhr, bis 18:00.", "Ab 7 Uhr 30, bis 18 Uhr."),
        ("de", "Wir sehen uns am 3.4.", "Wir sehen uns am 3. April."),
        ("de", "Draußen sind es 21,5 °C.", "Draußen sind es 21,5 Grad Celsius."),
        (
            "fr",
            "Rendez-vous à 14h30 le 21/11/2026, ou à 9h.",
            "Rendez-vous à 14 heures 30 le 21 novembre 2026, ou à 9 heures.",
        ),
        ("fr", "Le 1/5/2026 il fait 1 °C.", "Le 1er mai 2026 il fait 1 degré Celsius."),
        ("es", "A las 14:30 del 03/04/2026.", "A las 14 y 30 del 3 de abril de 2026."),
        ("it", "Alle 8:15 del 2026-01-06, 5 km.", "Alle 8 e 15 del 6 gennaio 2026, 5 chilometri."),
        ("pt", "Às 9:00 de 25/12/2026.", "Às 9 horas de 25 de dezembro de 2026."),
        ("nl", "Om 14:30 op 2026-11-21.", "Om 14 uur 30 op 21 november 2026."),
        (
            "pl",
            "O 14:30, 21.11.2026, 5 km/h.",
            "O 14 30, 21 listopada 2026, 5 kilometrów na godzinę.",
        ),
        ("ru", "В 9:00, 5 км/ч.", "В 9 часов, 5 километров в час."),
        ("hu", "2026-11-21 14:30", "2026. november 21. 14 óra 30 perc"),
        ("zh-cn", "2026-11-21 14:30", "2026年11月21日 14点30分"),
        ("ko", "21°C", "21 도"),
        ("ar", "14:30 21.11.2026", "14 30 21 11 2026"),
    ],
)
def test_times_dates_and_units_are_written_as_they_are_read(
    language: str, written: str, spoken: str
) -> None:
    assert speakable(written, language) == spoken


@pytest.mark.parametrize(
    "text",
    [
        "It costs 3.5 euros, 20 % off.",
        "Give me 5 minutes and 2 more.",
        "Version 3.12 is out, score 3:2.",
        "24° is warm.",
        "Room 101 is free.",
    ],
)
def test_text_without_times_dates_or_units_is_left_to_the_tokenizer(text: str) -> None:
    assert speakable(text, "en") == text
