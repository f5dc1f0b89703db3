"""The README's Python example works as written: a task module, a server, a submit from Python."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Process, Server, test_env

README = Path(__file__).parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_example(spawn: Callable[..., Process], tmp_path: Path) -> None:
    task_module, submitter = python_blocks()[:2]
    (tmp_path / "myapp.py").write_text(task_module)
    (tmp_path / "submit.py").write_text(submitter)
    # As a user runs it: the README's command in the folder with myapp.py, no PYTHONPATH.
    env = test_env("sqlite:///jobhandler.db", PYTHONPATH="")
    # The README uses ./jobhandler.db, relative to where things run.
    server = spawn(["serve", "--app", "myapp:app"], env, server=True, cwd=tmp_path)
    assert isinstance(server, Server)
    server.wait_ready()
    done = subprocess.run(
        [sys.executable, "submit.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "completed {'width': 64}"
