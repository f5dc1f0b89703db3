"""Every Python block of the README and docs/ runs as written and type-checks with mypy --strict.

A page is followed as a user follows it, in a fresh folder, with the installed package and no
PYTHONPATH: the files it says to create are written, its scripts run in order with the venv's
python, and a command in a shell block that starts a server or worker for a module the page
created (``jobhandler serve --app myapp:app``) or runs the page's tests (``pytest``) is run too.
At the end every module the page created is imported. The conventions are in
tests/acceptance/doc_blocks.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.doc_blocks import Block, Page, expected_errors, pages, script_name
from tests.conftest import Process, Server, test_env
from tests.typing.check import mypy_errors_in

PAGES = pages()
APP_COMMAND = re.compile(r"\bjobhandler\s+(serve|worker)\b.*?--app\s+([\w.]+):\w+")
PYTEST_COMMAND = re.compile(r"^(\S*/)?pytest\b")
BIN = Path(sys.executable).parent


def user_env() -> dict[str, str]:
    env = test_env("sqlite:///jobhandler.db", PYTHONPATH="")
    # A user's shell has none of the pytest running this test's own variables.
    return {k: v for k, v in env.items() if not k.startswith(("PYTEST_", "COV_"))}


def run(args: list[str], folder: Path, where: str) -> str:
    done = subprocess.run(
        args, cwd=folder, env=user_env(), capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, f"{where}: {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def write(folder: Path, block: Block, name: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(block.text)


def shell(block: Block, folder: Path, spawn: Callable[..., Process]) -> None:
    """The commands of a shell block that act on what the page made."""
    for line in block.text.splitlines():
        if (m := APP_COMMAND.search(line)) and (folder / f"{m[2].replace('.', '/')}.py").exists():
            command, app = m[1], line[m.start(2) :].split()[0]
            proc = spawn([command, "--app", app], user_env(), server=command == "serve", cwd=folder)
            if isinstance(proc, Server):
                proc.wait_ready()
        elif PYTEST_COMMAND.match(line.strip()) and (folder / "pyproject.toml").exists():
            run([str(BIN / "pytest"), "-q", "-p", "no:cacheprovider"], folder, block.where)


def modules(folder: Path, page: Page) -> list[str]:
    names = [n for n in page.files() if n.endswith(".py") and not n.startswith("tests/")]
    return [n.removesuffix(".py").replace("/", ".") for n in names]


def runs(page: Page) -> bool:
    return bool(page.scripts() or modules(Path(), page))


@pytest.mark.parametrize("page", [p for p in PAGES if runs(p)], ids=lambda p: p.slug)
def test_page_runs_as_written(page: Page, spawn: Callable[..., Process], tmp_path: Path) -> None:
    folder = tmp_path / "user"
    folder.mkdir()
    for block in page.blocks:
        if block.not_run is not None:
            continue
        if (name := block.file) is not None:
            write(folder, block, name)
        elif block.lang == "python":
            write(folder, block, script_name(page, block))
            run([sys.executable, script_name(page, block)], folder, block.where)
        elif block.lang in ("bash", "sh", "console"):
            shell(block, folder, spawn)
    if names := modules(folder, page):
        run([sys.executable, "-c", "; ".join(f"import {n}" for n in names)], folder, page.slug)


def check_files(page: Page, root: Path) -> list[Path]:
    """The page's Python, as files under ``root``: what it has the user create, its scripts,
    and its blocks not meant to run joined in one module."""
    files = {n: t for n, t in page.files().items() if n.endswith(".py")}
    files.update({script_name(page, b): b.text for b in page.scripts()})
    if fragments := page.fragments():
        files[f"{page.slug}_fragments.py"] = fragments
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return [root / name for name in files]


def groups(roots: dict[str, list[Path]]) -> list[list[str]]:
    """Pages whose top-level module names do not collide, so that one mypy run checks them."""
    out: list[tuple[set[str], list[str]]] = []
    for slug, files in roots.items():
        tops = {f.parts[0] for f in files}
        for taken, members in out:
            if not taken & tops:
                taken |= tops
                members.append(slug)
                break
        else:
            out.append((tops, [slug]))
    return [members for _, members in out]


def test_every_block_type_checks(tmp_path: Path) -> None:
    roots: dict[str, list[Path]] = {}
    for page in PAGES:
        root = tmp_path / page.slug
        root.mkdir()
        roots[page.slug] = check_files(page, root)
    expected = {
        (str(f.resolve()), line, code)
        for files in roots.values()
        for f in files
        for line, code in expected_errors(f.read_text())
    }
    reported: set[tuple[str, int, str]] = set()
    outputs = []
    relative = {
        slug: [f.relative_to(tmp_path / slug) for f in files] for slug, files in roots.items()
    }
    for members in groups(relative):
        files = [f for slug in members for f in roots[slug]]
        found, out = mypy_errors_in(files, [tmp_path / slug for slug in members])
        reported |= found
        outputs.append(out)
    assert reported == expected, "\n".join(outputs)
