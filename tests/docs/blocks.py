"""The code blocks of README.md and docs/: where they are, what they are, how they are marked.

Conventions (docs/testing.md, "Code blocks in these docs"):

- Every fence names its language. ``python`` blocks are executed by ``test_blocks.py`` (against
  the emulator through ``msal_async.testing.emulate``) and type-checked with mypy strict.
- ``<!-- not-runnable: REASON -->`` on the line before a fence: the block is not executed (a
  reason is required); a Python block is still type-checked.
- ``text`` blocks show output or diagrams and are not code; ``json`` blocks are parsed; any
  other language (``bash``...) must be marked not runnable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^```(?P<language>[^\s`]*)\s*$")
_MARK = re.compile(r"^<!--\s*not-runnable:(?P<reason>.*?)-->\s*$")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block."""

    path: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    heading: str  # the slug of the heading it sits under
    ordinal: int  # 1 for the first block under that heading, 2 for the next...
    language: str
    code: str
    not_runnable: str | None  # the reason, when marked

    @property
    def id(self) -> str:
        """``path#heading-slug[-n]``: stable while the page's headings stay."""
        suffix = f"-{self.ordinal}" if self.ordinal > 1 else ""
        return f"{self.path}#{self.heading}{suffix}"


def slug(title: str) -> str:
    """A heading's anchor, as Markdown's toc extension makes it."""
    text = re.sub(r"[`*]", "", title).lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s-]+", "-", text).strip("-")


def blocks_of(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file.

    Raises:
        ValueError: an indented fence (it would escape these checks), an unclosed fence or a
            marker with no reason.
    """
    relative = str(path.relative_to(ROOT))
    lines = path.read_text().splitlines()
    found: list[Block] = []
    heading = "top"
    counts: dict[str, int] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        if re.match(r"^\s+```", line):
            msg = f"{relative}:{index + 1}: indented fences are not checked; start it at column 0"
            raise ValueError(msg)
        title = _HEADING.match(line)
        if title:
            heading = slug(title.group("title"))
        fence = _FENCE.match(line)
        if not fence:
            index += 1
            continue
        start = index
        end = next((i for i in range(index + 1, len(lines)) if lines[i] == "```"), None)
        if end is None:
            msg = f"{relative}:{start + 1}: unclosed fence"
            raise ValueError(msg)
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        mark = _MARK.match(previous.strip())
        reason = mark.group("reason").strip() if mark else None
        if mark and not reason:
            msg = f"{relative}:{start + 1}: say why the block is not runnable"
            raise ValueError(msg)
        counts[heading] = counts.get(heading, 0) + 1
        found.append(
            Block(
                path=relative,
                line=start + 1,
                heading=heading,
                ordinal=counts[heading],
                language=fence.group("language"),
                code="\n".join(lines[start + 1 : end]) + "\n",
                not_runnable=reason,
            )
        )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    """The blocks of README.md and every page under docs/."""
    return [block for path in DOC_FILES for block in blocks_of(path)]
