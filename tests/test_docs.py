"""The README and docs/ stay true to the repository: every relative link leads to a file that
exists (and to a heading that exists, where it names one), every `mixmerge` command and `make`
target the README shows exists, every docs page is reachable from the README, and the README
stays short enough to read in five minutes. Pages move and commands get renamed; these checks
turn a stale pointer into a failing test instead of a reader's dead end."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

README_LIMIT = 15_000  # bytes, as `wc -c` counts them

FENCE = re.compile(r"^ *(`{3,}|~{3,})[^\n]*\n.*?^ *\1 *$", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# [text](target) and ![alt](target), the text possibly over several lines; an optional title
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without code, where brackets and parentheses are not links."""
    return INLINE.sub(" ", FENCE.sub("\n", text))


def code(text: str) -> list[str]:
    """Every fenced block's body and every inline code span of `text`."""
    blocks = [match.group(0) for match in FENCE.finditer(text)]
    spans = [match.group(2) for match in INLINE.finditer(FENCE.sub("\n", text))]
    return blocks + spans


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of `page`: lower case, punctuation dropped,
    spaces as hyphens, a repeated heading numbered."""
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("\n", page.read_text(encoding="utf-8"))):
        words = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", words).replace(" ", "-")
        candidate, count = slug, 0
        while candidate in found:
            count += 1
            candidate = f"{slug}-{count}"
        found.add(candidate)
    return found


def links_in(text: str) -> list[str]:
    """The targets of the Markdown links of `text`, outside code."""
    return LINK.findall(prose(text))


def links(page: Path) -> list[str]:
    return links_in(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_lead_to_files_that_exist(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http(s), mailto...
            continue
        path, _, anchor = unquote(target).partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.is_relative_to(REPO) or not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_the_link_check_sees_links() -> None:
    """A pattern that matched nothing would pass every page."""
    assert "docs/pipeline.md" in links(README)
    assert "regime.png" in links(REPO / "docs" / "mergeability.md")  # alt text over two lines
    assert "docs/pipeline.md" not in links_in("`[x](docs/pipeline.md)`")


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (README.parent / unquote(target).partition("#")[0]).resolve() for target in links(README)
    }
    missing = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not missing, f"README.md links no docs page {', '.join(missing)}"


def test_the_readme_shows_only_real_mixmerge_commands() -> None:
    from mixmerge.stages import cli

    shown = {
        command
        for snippet in code(README.read_text(encoding="utf-8"))
        for command in re.findall(r"\bmixmerge\s+([a-z][a-z0-9_-]*)", snippet)
    }
    assert shown, "the README shows no `mixmerge <command>`: the pattern is wrong"
    unknown = sorted(shown - set(cli.COMMANDS))
    assert not unknown, f"README.md shows mixmerge commands that do not exist: {unknown}"


def test_the_readme_shows_only_real_make_targets() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile, re.MULTILINE))
    shown = {
        target
        for snippet in code(README.read_text(encoding="utf-8"))
        for target in re.findall(r"(?:^|[\s`;&|(])make\s+([A-Za-z0-9_.-]+)", snippet)
    }
    assert shown, "the README shows no `make <target>`: the pattern is wrong"
    unknown = sorted(shown - targets)
    assert not unknown, f"README.md shows make targets the Makefile lacks: {unknown}"


def test_the_readme_reads_in_five_minutes() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, (
        f"README.md is {size} bytes, over {README_LIMIT}: move detail to a page of docs/"
    )
