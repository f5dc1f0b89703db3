"""The package's rooms, as docs/architecture.md draws them: what may import what, a short top
level, and an App that is only what user code touches."""

from __future__ import annotations

import ast

from jobhandler import App
from jobhandler.model import records
from tests.unit.test_structure import SRC, imported, modules

# Each room and the rooms it must not import (at any depth of its own modules). Data flows one
# way: frontends -> service -> store -> a dialect; the worker -> store, deciding with the model.
FORBIDDEN = {
    "model": ("service", "store", "worker", "http", "client", "observe", "process", "cli", "app"),
    "store": ("service", "worker", "http", "client", "process", "cli", "app", "contrib"),
    "service": ("worker", "http", "client", "process", "cli", "app", "contrib", "testing"),
    "observe": ("service", "store", "worker", "http", "client", "process", "cli", "app"),
    "client": ("http", "service", "store", "worker", "process", "app", "observe"),
    "http": ("store", "worker", "cli", "process"),
    "worker": ("http", "client", "cli", "process"),
}
MAX_TOP_MODULES = 10
MAX_APP_ATTRIBUTES = 20


def room(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_rooms_import_only_downward() -> None:
    known = modules()
    wrong = []
    for name, module in known.items():
        banned = FORBIDDEN.get(room(name), ())
        for target in imported(module, known):
            if room(target) in banned:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_the_package_top_holds_at_most_ten_modules() -> None:
    top = [p.name for p in (SRC / "jobhandler").glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_MODULES, sorted(top)


def test_no_module_outside_the_store_takes_value_types_from_it() -> None:
    """The values every layer shares live in model/records.py, not in the store."""
    shared = {name for name in vars(records) if not name.startswith("_")}
    wrong = []
    for name, module in modules().items():
        if room(name) == "store":
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "jobhandler.store"
            ):
                wrong += [f"{name}: {a.name}" for a in node.names if a.name in shared]
    assert wrong == []


def test_the_app_is_what_user_code_touches() -> None:
    public = {n for n in dir(App) if not n.startswith("_")} | {
        n for n in vars(App()) if not n.startswith("_")
    }
    assert len(public) <= MAX_APP_ATTRIBUTES, sorted(public)
    assert {"task", "periodic", "queue", "connected", "connected_sync", "service"} <= public
