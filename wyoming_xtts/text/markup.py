"""What a request's text is written in: plain text (Markdown clean-up and all) or SSML."""

from enum import StrEnum


class TextFormat(StrEnum):
    """The `text_format` of a Wyoming `synthesize` or `synthesize-start` (wyoming 1.10)."""

    TEXT = "text"
    """Plain text, as an LLM or an automation writes it: cleaned of Markdown, then spoken."""

    SSML = "ssml"
    """Speech Synthesis Markup Language, interpreted (text/ssml.py)."""

    @classmethod
    def parse(cls, value: object) -> "TextFormat":
        """The format a request names (missing or null: plain text); raises ValueError."""
        if value is None:
            return cls.TEXT
        if not isinstance(value, str) or value not in cls._value2member_map_:
            raise ValueError(
                f"text_format must be one of {', '.join(cls)}, not {str(value)[:20]!r}"
            )
        return cls(value)
