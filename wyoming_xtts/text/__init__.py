"""The text pipeline: from text arriving in pieces to segments an engine can speak.

Clean-up (Markdown, emoji, URLs), spoken forms (times, dates, units), sentence segmentation
within each language's limits, the language of each segment, and how much speech a segment's
text can justify. `reply_segments` is the entry point; the rest is here for its tests and for
`voice add` (language facts).
"""

from .language_detection import LanguageDetector, ReplyLanguage
from .segmentation import Segment, reply_segments

__all__ = ["LanguageDetector", "ReplyLanguage", "Segment", "reply_segments"]
