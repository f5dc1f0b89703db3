"""The version and the changelog agree with the releases (docs/how-to/upgrading.md, "Releases")."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.version import Version

from jobhandler import App
from jobhandler.http.api import create_app
from tests.conftest import run_cli
from tests.previous_release import PREVIOUS_RELEASE, REPO_ROOT


def test_the_version_is_the_next_development_version_after_the_previous_release() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    version, released = Version(project["version"]), Version(PREVIOUS_RELEASE[0])
    assert version > released
    # Between releases a development version; at a release, the tag's own commit says X.Y.Z
    # and PREVIOUS_RELEASE still names the release before it.
    assert version.is_devrelease or version.release > released.release


def test_the_changelog_has_unreleased_changes_then_the_previous_release() -> None:
    headings = re.findall(r"^## (.+)$", (REPO_ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    released = PREVIOUS_RELEASE[0].removeprefix("v")
    assert any(h.startswith(f"{released} - ") for h in headings[1:]), headings


def test_the_cli_and_the_api_tell_the_installed_version() -> None:
    installed = metadata.version("jobhandler")
    told = run_cli("--version")
    assert told.returncode == 0 and told.stdout.endswith(f"jobhandler, version {installed}\n")
    assert create_app(App()).openapi()["info"]["version"] == installed
