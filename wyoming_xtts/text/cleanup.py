"""LLM replies → text worth reading aloud, incrementally as the reply streams in.

Markdown is reduced to what a person would say: headings, list items and table rows become
sentences, emphasis and code markers disappear, a link becomes its text, a bare URL its host
name, a code block nothing. Emoji are dropped (`emoji` knows every sequence), and so are
runs of punctuation ("!!!" → "!") and symbols with no spoken form. Numbers, currencies,
`%`, `&`, `°` and abbreviations are left alone: XTTS-v2's tokenizer expands those itself, in
each language.

Cleaning streams: text is emitted as soon as nothing later can change it. What is held back
is only an unfinished construct (`[link](`, an open backtick, a URL still arriving, a line
whose first characters may still turn out to be a list marker), so the first sentence is not
delayed by more than a few characters. Cleaning any chunking of a reply yields exactly the
text of cleaning it whole (tested on random chunkings).
"""

import re

import emoji

MAX_HELD_CHARS = 400
"""An unfinished construct longer than this is given up on and read as plain text."""

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s+|$)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_TABLE_ROW = re.compile(r"^\s*\|")
# A line start is undecided while it could still become one of the block markers above.
_UNDECIDED_START = re.compile(r"^\s*(?:[-*+•#>|`~_]*|\d{1,3}[.)]?)$")

_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_URL = re.compile(r"\bhttps?://[^\s<>()\[\]]+|\bwww\.[^\s<>()\[\]]+")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_PUNCTUATION = frozenset(".,!?;:…")
_INLINE_CODE = re.compile(r"`+")
_EMPHASIS = re.compile(r"\*+|~~|(?<!\w)_+|_+(?!\w)")
_REPEATED = re.compile(r"([!?])[!?]+|([,;:])\2+|\.{4,}|…{2,}")
_DASH_RUN = re.compile(r"\s-{2,}\s|\s—\s")
_SYMBOLS = re.compile(r"[|\\^=<>{}\[\]#*~`_]")
_EMOJI_LEFTOVERS = re.compile("[\u200d\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +(?=[.,!?;:…])")
_SENTENCE_END = re.compile(r"[.!?。！？…:;]\s*$")

# A construct that may still be unfinished at the end of what has arrived.
_OPEN_TAIL = re.compile(
    r"!?\[[^\]\n]*$"  # [link text…
    r"|!?\[[^\]\n]*\]$"  # [link text]
    r"|!?\[[^\]\n]*\]\([^)\n]*$"  # [link text](url…
    r"|<[^>\n]*$"  # <tag or <https://…
    r"|`[^`\n]*$"  # `code…
    r"|(?:https?://|www\.)[^\s<>()\[\]]*$"  # a URL still arriving
    r"|\bh(?:t(?:t(?:p(?:s?:?/{0,2})?)?)?)?$"  # "http" itself arriving
    r"|\bw(?:ww?)?$"  # "www" arriving
    r"|[*_~!?.,;:…\-\s]+$"  # markers or punctuation that a run may extend
)


class SpeechTextCleaner:
    """Streaming Markdown/emoji/URL clean-up for one reply: `push` pieces, then `finish`."""

    def __init__(self) -> None:
        self._pending = ""
        self._line_kind: str | None = None
        self._in_code_block = False
        self._line_spoken = ""
        self._raw_last = ""
        self._space_owed = False
        self._spoken_in_paragraph = False

    def push(self, text: str) -> str:
        """Add a piece of the reply; return the cleaned text that is now final."""
        # Emoji go first, so the space before one does not end up before a full stop.
        self._pending += _EMOJI_LEFTOVERS.sub("", emoji.replace_emoji(text, replace=""))
        return self._drain(final=False)

    def finish(self) -> str:
        """The reply is complete: return the rest of the cleaned text."""
        return self._drain(final=True)

    def _drain(self, final: bool) -> str:
        out: list[str] = []
        while True:
            newline = self._pending.find("\n")
            if newline < 0:
                break
            line, self._pending = self._pending[:newline], self._pending[newline + 1 :]
            if not line.strip() and self._line_kind is None and not self._in_code_block:
                out.append(self._paragraph_break())
                continue
            out.append(self._line_part(line))
            out.append(self._end_line())
        if final:
            if self._pending:
                out.append(self._line_part(self._pending))
                self._pending = ""
            out.append(self._end_line())
        elif self._pending:
            out.append(self._partial_line())
        return "".join(out)

    def _partial_line(self) -> str:
        """Clean what can be cleaned of the line still arriving."""
        if self._line_kind is None:
            if _UNDECIDED_START.match(self._pending) and len(self._pending) < MAX_HELD_CHARS:
                return ""
            self._line_kind = self._classify(self._pending)
            self._pending = self._strip_marker(self._pending)
        if self._line_kind in ("fence", "code", "table", "rule"):
            return ""  # decided at the end of the line
        open_tail = _OPEN_TAIL.search(self._pending)
        cut = open_tail.start() if open_tail else len(self._pending)
        if len(self._pending) - cut > MAX_HELD_CHARS:
            cut = len(self._pending)
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._speak(ready)

    def _line_part(self, line: str) -> str:
        """The rest of a line that has ended."""
        line = line.rstrip()
        if line.endswith(":"):
            line = line[:-1] + "."  # "Ingredients:" before a list: a full stop, then the items
        if self._line_kind is None:
            self._line_kind = self._classify(line)
            line = self._strip_marker(line)
        if self._line_kind == "fence":
            self._in_code_block = not self._in_code_block
            return ""
        if self._line_kind in ("code", "rule"):
            return ""
        if self._line_kind == "table":
            if _TABLE_SEPARATOR.match(line):
                return ""
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            return self._speak(", ".join(cell for cell in cells if cell))
        return self._speak(line)

    def _classify(self, line: str) -> str:
        if _FENCE.match(line):
            return "fence"
        if self._in_code_block:
            return "code"
        if _RULE.match(line):
            return "rule"
        if _TABLE_ROW.match(line):
            return "table"
        if _HEADING.match(line) or _LIST_ITEM.match(line):
            return "block"
        return "text"

    @staticmethod
    def _strip_marker(line: str) -> str:
        for marker in (_QUOTE, _HEADING, _LIST_ITEM):
            line = marker.sub("", line, count=1)
        return line

    def _end_line(self) -> str:
        """A line ended: headings, items, rows and paragraphs end their sentence."""
        kind, spoken = self._line_kind, self._line_spoken.rstrip()
        self._line_kind, self._line_spoken, self._raw_last = None, "", ""
        self._space_owed = False
        if kind in (None, "fence", "code", "rule") or not spoken:
            return ""
        self._spoken_in_paragraph = True
        return " " if _SENTENCE_END.search(spoken) else ". "

    def _paragraph_break(self) -> str:
        """A blank line: kept (once) after spoken text, so the pause there can be longer."""
        if not self._spoken_in_paragraph:
            return ""
        self._spoken_in_paragraph = False
        return "\n\n"

    def _speak(self, raw: str) -> str:
        """Inline clean-up of text that is final."""
        if not raw:
            return ""
        # A letter or digit just before this piece decides whether `_` is emphasis or part
        # of a word (snake_case): clean with it in front, then take it off again.
        context = self._raw_last if self._raw_last.isalnum() else ""
        self._raw_last = raw[-1]
        text = context + raw
        text = _IMAGE.sub(r"\1", text)
        text = _LINK.sub(r"\1", text)
        text = _AUTOLINK.sub(lambda match: _host(match.group(1)), text)
        text = _URL.sub(lambda match: _host(match.group(0)), text)
        text = _HTML_TAG.sub(" ", text)
        text = _INLINE_CODE.sub("", text)
        text = _EMPHASIS.sub("", text)
        text = _REPEATED.sub(_one_of_a_run, text)
        text = _DASH_RUN.sub(", ", text)
        text = _SYMBOLS.sub(" ", text)
        text = _SPACE_BEFORE_PUNCTUATION.sub("", _SPACES.sub(" ", text))[len(context) :]
        if not self._line_spoken.strip():
            text = text.lstrip()
        # A space at the end is owed to whatever comes next, unless that is punctuation: a
        # construct removed before a full stop must not leave "bold ." behind.
        if self._space_owed and text and text[0] not in _PUNCTUATION and not text[0].isspace():
            text = " " + text
        if text:
            self._space_owed = text.endswith(" ")
            text = text.rstrip(" ")
        self._line_spoken += text
        return text


def _host(url: str) -> str:
    """How a URL is read: its host name without `www.` ("home-assistant.io")."""
    host = re.sub(r"^(?:https?://)?(?:www\.)?", "", url).split("/", 1)[0].split("?", 1)[0]
    return host.rstrip(".,;:!?")


def _one_of_a_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if run.startswith("."):
        return "..."
    if run.startswith("…"):
        return "…"
    if match.group(1):
        return "?" if "?" in run else "!"
    return run[0]
