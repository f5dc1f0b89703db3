"""The shape of the code: small modules, small functions, and no import cycles.

Read from the source with ``ast``, so an import inside a function or under ``TYPE_CHECKING`` counts
as much as one at the top: a cycle that only works because one side defers its import is still
two modules that cannot be understood (or tested) apart.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "jobhandler"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# Offenders waiting for their own change, each with the size it may not grow past. Empty is the
# goal; an entry here that is no longer needed fails too, so the list only ever shrinks.
KNOWN_LONG_MODULES: dict[str, int] = {}
KNOWN_LONG_FUNCTIONS: dict[str, int] = {}
KNOWN_STRAY_EXCEPTIONS: set[str] = set()


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def modules() -> dict[str, Module]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        text = path.read_text()
        found[name] = Module(name, path, ast.parse(text, str(path)), len(text.splitlines()))
    return found


def functions(tree: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
    """Every function, nested ones and methods included, with its length in lines."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}.{node.name}"
            if not isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                yield name, node.end_lineno - node.lineno + 1
            yield from functions(node, name)
        else:
            yield from functions(node, prefix)


def imported(module: Module, known: dict[str, Module]) -> set[str]:
    """The package's modules that ``module`` imports, wherever the import statement is."""
    targets: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(module, node)
            # `from pkg import name`: the submodule pkg.name if there is one, pkg otherwise.
            targets.update(
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            )
    return {t for t in targets if t in known and t != module.name}


def resolve(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    base = parts if module.is_package else parts[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def over(sizes: dict[str, int], limit: int, known: dict[str, int]) -> list[str]:
    problems = [
        f"{name}: {size} lines (limit {known.get(name, limit)})"
        for name, size in sorted(sizes.items())
        if size > known.get(name, limit)
    ]
    problems += [
        f"{name} is listed as a known offender but is within {limit} lines now: drop it"
        for name in known
        if sizes.get(name, 0) <= limit
    ]
    return problems


def test_no_module_is_too_long() -> None:
    sizes = {f"{m.path.relative_to(SRC)}": m.lines for m in modules().values()}
    problems = over(sizes, MAX_MODULE_LINES, KNOWN_LONG_MODULES)
    assert not problems, "\n".join(problems)


def test_no_function_is_too_long() -> None:
    sizes = {name: size for m in modules().values() for name, size in functions(m.tree, m.name)}
    problems = over(sizes, MAX_FUNCTION_LINES, KNOWN_LONG_FUNCTIONS)
    assert not problems, "\n".join(problems)


def test_no_import_cycles() -> None:
    known = modules()
    graph = {name: imported(module, known) for name, module in known.items()}
    found = cycles(graph)
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_every_exception_derives_from_the_packages_root() -> None:
    """One ``except JobHandlerError`` catches whatever the package raises on purpose."""
    from jobhandler.model.errors import JobHandlerError

    stray = set()
    for name in modules():
        if name.endswith("__main__"):
            continue  # running it is all it does
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or not issubclass(cls, BaseException):
                continue
            if cls.__module__ == name and not issubclass(cls, JobHandlerError):
                stray.add(f"{name}.{cls.__qualname__}")
    assert sorted(stray - KNOWN_STRAY_EXCEPTIONS) == []
    assert sorted(KNOWN_STRAY_EXCEPTIONS - stray) == [], "fixed now: drop from the list"


def test_the_checks_see_what_they_should() -> None:
    """The checks above find a planted cycle, a deferred import, and a nested function."""
    known = modules()
    graph = {name: imported(module, known) for name, module in known.items()}
    assert "jobhandler.store" in graph["jobhandler.app"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    import jobhandler.cli\n    def g():\n        pass\n")
    assert dict(functions(tree, "m")) == {"m.f": 4, "m.f.g": 2}
    fake = Module("jobhandler.x", SRC / "jobhandler/x.py", tree, 4)
    assert imported(fake, {**known, "jobhandler.x": fake}) == {"jobhandler.cli"}
