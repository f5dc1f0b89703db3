"""The client stands apart from the server: importing it, or reading an answer with it, loads
no web framework, server, template engine, database driver or metrics library, and none of the
package's server side. Each check runs in a fresh interpreter, where nothing was imported yet."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import jobhandler

SERVER_SIDE = ("fastapi", "starlette", "uvicorn", "jinja2", "psycopg", "prometheus_client")
SERVER_PACKAGES = ("jobhandler.http", "jobhandler.app", "jobhandler.store", "jobhandler.worker")


def modules_loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def server_side(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if name.split(".")[0] in SERVER_SIDE
        or any(name == p or name.startswith(p + ".") for p in SERVER_PACKAGES)
    )


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    loaded = modules_loaded_by("import jobhandler.client\nfrom jobhandler import Client")
    assert "jobhandler.client.clients" in loaded  # the check sees what it should
    assert server_side(loaded) == []
    assert "jobhandler.service" not in loaded
    assert "pydantic" not in loaded  # the wire models wait for the first answer


def test_reading_answers_loads_nothing_of_the_server() -> None:
    # An answer the model refuses is read as far as a good one: the wire models are loaded.
    loaded = modules_loaded_by(
        "import pydantic\nfrom jobhandler.client import calls\n"
        "try:\n    calls.job({'id': 'j1', 'created_at': '2030-01-01T09:00:00Z'})\n"
        "except pydantic.ValidationError as exc:\n    assert 'payload' in str(exc)"
    )
    assert "jobhandler.client.wire" in loaded
    assert server_side(loaded) == []


def test_the_package_loads_each_export_on_first_use() -> None:
    loaded = modules_loaded_by("import jobhandler")
    assert sorted(name for name in loaded if name.startswith("jobhandler.")) == []
    # Each export comes from its own module, and the type checker's imports name the same ones.
    for name in jobhandler.__all__:
        home = jobhandler._HOMES[name]
        assert getattr(jobhandler, name) is getattr(importlib.import_module(home), name)
    assert sorted(jobhandler._HOMES) == sorted(jobhandler.__all__)
    assert type_checking_imports() == jobhandler._HOMES
    assert set(dir(jobhandler)) >= set(jobhandler.__all__)


def type_checking_imports() -> dict[str, str]:
    tree = ast.parse(Path(jobhandler.__file__).read_text())
    [block] = [n for n in tree.body if isinstance(n, ast.If)]  # if TYPE_CHECKING:
    found = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module
        found.update({alias.name: node.module for alias in node.names})
    return found
