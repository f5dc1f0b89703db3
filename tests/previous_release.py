"""The previous release, read from this repository's git history, for the upgrade tests.

The release is found by its tag when the clone has tags, otherwise by the commit pinned here
next to the tag's name (a clone made by CI may carry no tags). When a release is tagged, the
next development cycle moves ``PREVIOUS_RELEASE`` to it (docs/how-to/upgrading.md, "Releases").
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PREVIOUS_RELEASE = ("v0.1.0", "67eed2f9ad20dade8438a0dcf65996ff6e065de1")
REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = "src/jobhandler/store/sql"  # {sqlite,postgres}/NNN_name.sql under it


@dataclass(frozen=True)
class Release:
    tag: str
    commit: str

    def migrations(self, dialect: str) -> dict[str, str]:
        """The release's migration files of one store: file name -> SQL."""
        folder = f"{MIGRATIONS}/{dialect}"
        listed = _git("ls-tree", "--name-only", f"{self.commit}:{folder}").split()
        return {
            name: _git("show", f"{self.commit}:{folder}/{name}")
            for name in listed
            if name.endswith(".sql") and name[:1].isdigit()
        }


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise LookupError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout


def previous_release() -> Release:
    """The previous release's commit, by tag or by the pinned hash; a skip where git or the
    history is absent, a failure instead in CI (where the test must run)."""
    tag, pinned = PREVIOUS_RELEASE
    try:
        _git("rev-parse", "--git-dir")
    except (OSError, LookupError) as exc:
        _unavailable(f"no git repository here ({exc})")
    try:
        tagged = _git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}").strip()
    except LookupError:
        tagged = ""
    if tagged and tagged != pinned:  # a moved tag would test against another release
        pytest.fail(f"tag {tag} is {tagged}, but the tests pin {pinned}")
    try:
        _git("cat-file", "-e", f"{pinned}^{{commit}}")
    except LookupError:
        _unavailable(f"{tag} ({pinned}) is not in this clone's history (shallow?)")
    return Release(tag, pinned)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the previous release is needed in CI: {reason}")
    pytest.skip(reason)


def install(release: Release, into: Path) -> Path:
    """Install the release beside the current code: its tree (``git archive``) in ``into/src``,
    a venv in ``into/venv`` that imports the release's package from that tree. Returns the
    venv's Python.

    Its dependencies are this venv's: a ``.pth`` puts this venv's site-packages after the
    release's code, so nothing is downloaded or built (a ``pip install`` of the tree would
    build a wheel, which needs the build backend from a package index: seconds at best, and not
    offline). That site-packages' own ``.pth`` files are not read from there, so the current
    code, installed editable by one of them, is not importable in the release's venv at all.
    """
    tree = into / "src"
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", release.commit],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    venv = into / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "jobhandler_release.pth").write_text(f"{tree / 'src'}\n{ours}\n")
    return python
