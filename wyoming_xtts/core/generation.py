"""XTTS-v2's generation settings and every number range a setting may take, declared once.

The voice profile reader (`voice.toml`'s `[synthesis]`), the voice studio's JSON and query
strings, the OpenAI speech body's `speed` and the server's numeric options all check their
values with `NumberRange`, so a value is refused by the same rule with the same sentence
wherever it is given.
"""

import math
from dataclasses import dataclass


class OutOfRangeError(ValueError):
    """A value of the wrong type or outside its range; the message is one sentence naming
    the setting as the caller labelled it."""


@dataclass(frozen=True)
class NumberRange:
    """The type and inclusive range of one numeric setting."""

    kind: type[int] | type[float]
    """`int` for a whole number, `float` for any number."""

    low: float
    """The smallest value accepted."""

    high: float
    """The largest value accepted."""

    unit: str = ""
    """What the number counts, as said in a refusal ("seconds"); empty when nothing."""

    @property
    def shape(self) -> str:
        """What a value must look like, for a refusal: "a whole number", "a number of seconds"."""
        noun = "a whole number" if self.kind is int else "a number"
        return f"{noun} of {self.unit}" if self.unit else noun

    def check(self, label: str, value: object) -> int | float:
        """`value` as the setting's type, or `OutOfRangeError`. Booleans are not numbers
        here (TOML and JSON tell them apart; Python's `True == 1` would let them through)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OutOfRangeError(f"{label} must be {self.shape}.")
        if not math.isfinite(value) or (self.kind is int and value != int(value)):
            raise OutOfRangeError(f"{label} must be {self.shape}, not {value!r}.")
        if not self.low <= value <= self.high:
            raise OutOfRangeError(
                f"{label} must be between {self.low:g} and {self.high:g}, not {value:g}."
            )
        return self.kind(value)

    def parse(self, label: str, text: str) -> int | float:
        """A value written as text (an option, a query string), checked as `check` does."""
        try:
            value = self.kind(text.strip())
        except ValueError:
            raise OutOfRangeError(f"{label} must be {self.shape}, not {text[:20]!r}.") from None
        return self.check(label, value)


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings for XTTS-v2, pinned to the values of the released model's config.

    coqui-tts' `inference()` defaults differ from the release (repetition_penalty 10 vs 5);
    the server always passes these explicitly so output never depends on library defaults.
    """

    temperature: float = 0.75
    """Randomness of the GPT sampling; lower is steadier and flatter."""

    top_k: int = 50
    """Sample only among the k most likely audio tokens."""

    top_p: float = 0.85
    """Nucleus sampling: sample among the tokens covering this probability mass."""

    repetition_penalty: float = 5.0
    """Discourages repeated audio tokens (long silences, stuttering)."""

    length_penalty: float = 1.0
    """Passed to generation; only matters for beam search."""

    speed: float = 1.0
    """Speaking rate: 1.0 is the voice's own pace, 1.2 is 20 % faster."""

    seed: int | None = None
    """Seed the sampling before each segment: the same text then always sounds the same
    (local engine only; the cloud providers take no seed)."""


GENERATION_LIMITS: dict[str, NumberRange] = {
    "temperature": NumberRange(float, 0.01, 2.0),
    "top_k": NumberRange(int, 1, 1026),
    "top_p": NumberRange(float, 0.01, 1.0),
    "repetition_penalty": NumberRange(float, 1.0, 50.0),
    "length_penalty": NumberRange(float, -10.0, 10.0),
    "speed": NumberRange(float, 0.5, 2.0),
    "seed": NumberRange(int, 0, 2**31 - 1),
}
"""The range of each field of `GenerationSettings`, by its name."""
