"""The code blocks of the README and docs/, read as a user reads them (the conventions are in the
README's "Writing docs"):

- a block whose first line is ``# path`` (``# myapp.py``, ``# pyproject.toml``) is a file the user
  creates; ``# path, continued`` adds to it;
- any other Python block is a script the user runs, in the page's folder, after what comes before;
- ``<!-- not run: why -->`` on the line before a Python block: it is only type-checked, joined with
  the page's other such blocks in one module, in order;
- ``# mypy: CODE`` at the end of a line: mypy must report that error there (a mistake shown on
  purpose), and nothing else in the block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[2]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
FILE_LINE = re.compile(r"^#\s+([\w./-]+\.(?:py|toml|cfg|ini|txt))(,\s*continued)?\s*$")
NOT_RUN = re.compile(r"<!--\s*not run:(.*?)-->\s*$")
EXPECTED = re.compile(r"#\s*mypy:\s*([\w-]+)")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    not_run: str | None = None  # the reason given

    @property
    def file(self) -> str | None:
        first = self.text.split("\n", 1)[0]
        return m[1] if (m := FILE_LINE.match(first)) else None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def slug(self) -> str:
        rel = self.path.relative_to(ROOT).with_suffix("")
        return re.sub(r"\W", "_", str(rel)).lower()

    @property
    def python(self) -> list[Block]:
        return [b for b in self.blocks if b.lang == "python"]

    def files(self) -> dict[str, str]:
        """Every file the page has the user create, with all its parts."""
        out: dict[str, str] = {}
        for block in self.blocks:
            if (name := block.file) is not None and block.not_run is None:
                out[name] = out.get(name, "") + block.text
        return out

    def scripts(self) -> list[Block]:
        return [b for b in self.python if b.file is None and b.not_run is None]

    def fragments(self) -> str:
        """The blocks not meant to run, joined in one module, each headed by where it is."""
        parts = [f"# {b.where}\n{b.text}" for b in self.python if b.not_run is not None]
        return "\n".join(parts)


def read_page(path: Path) -> Page:
    text = path.read_text()
    page = Page(path)
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        note = n[1].strip() if (n := NOT_RUN.search(before)) else None
        page.blocks.append(Block(path, line, m[1], m[2], note))
    return page


def pages() -> list[Page]:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in map(read_page, paths) if p.python]


def script_name(page: Page, block: Block) -> str:
    return f"{page.slug}_{block.line}.py"


def expected_errors(source: str) -> set[tuple[int, str]]:
    lines = source.splitlines()
    return {(n, m[1]) for n, line in enumerate(lines, 1) if (m := EXPECTED.search(line))}
