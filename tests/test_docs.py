"""The front page and the manual link only to files that exist and to headings they have.

Every relative link in README.md and docs/*.md (images included) must name a file of this
repository, and a `#anchor` must be one that a heading of the target file produces under
GitHub's rule: the heading's text, lower case, spaces as hyphens, every punctuation mark but
hyphens and underscores dropped (a repeated heading gets `-1`, `-2`, ...).
"""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's Markdown text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link stands for its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor the headings of a Markdown file produce."""
    found: set[str] = set()
    for line in _prose(path):
        heading = _HEADING.match(line)
        if heading:
            base = slug(heading.group(1))
            name, repeat = base, 0
            while name in found:
                repeat += 1
                name = f"{base}-{repeat}"
            found.add(name)
    return found


def links(path: Path) -> list[str]:
    """The target of every relative link and image, paragraph by paragraph (a link's text may
    wrap), code spans left out."""
    paragraphs = re.split(r"\n\s*\n", "\n".join(_prose(path)))
    targets = []
    for paragraph in paragraphs:
        for link in _LINK.finditer(_CODE_SPAN.sub("", paragraph)):
            if not _EXTERNAL.match(link.group(1)):
                targets.append(link.group(1))
    return targets


def test_the_slug_rule_is_githubs() -> None:
    assert slug("Quick start: the two commands") == "quick-start-the-two-commands"
    assert slug("Replicate (`lucataco/xtts-v2`)") == "replicate-lucatacoxtts-v2"
    assert slug("Expressive speech: styles, SSML, pauses") == "expressive-speech-styles-ssml-pauses"
    assert slug("What `script/run` does_now") == "what-scriptrun-does_now"


def test_links_are_found_in_prose_only(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "[a](x.md) `[b](y.md)` [wrapped\ntext](z.md#top) ![i](p.png) [web](https://e.org)\n"
        "\n```\n[c](w.md)\n```\n",
        encoding="utf-8",
    )

    assert links(page) == ["x.md", "z.md#top", "p.png"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_reaches_a_file_and_a_heading(page: Path) -> None:
    broken = []
    for target in links(page):
        file_part, _, anchor = target.partition("#")
        path = (page.parent / unquote(file_part)).resolve() if file_part else page
        if not path.is_relative_to(REPO) or not path.exists():
            broken.append(f"{target}: there is no such file")
        elif anchor and path.suffix == ".md" and unquote(anchor) not in anchors(path):
            broken.append(f"{target}: no heading of {path.relative_to(REPO)} gives #{anchor}")

    assert not broken, f"{page.relative_to(REPO)} links nowhere:\n  " + "\n  ".join(broken)


def test_the_manual_has_pages() -> None:
    assert len(PAGES) > 1, "docs/*.md holds the manual"
