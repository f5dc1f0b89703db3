"""Numbered migrations, ``NNN_name.sql`` files in each dialect's folder, and a safe splitter."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    folder = resources.files("jobhandler.store").joinpath("sql", dialect)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql") and entry.name[:1].isdigit():  # not queries.sql
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append(Migration(int(number), name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def statements(script: str) -> list[str]:
    """A script's statements, each whole, for a driver that runs one at a time.

    Cut only at a ``;`` where SQLite itself says a statement is complete, so a ``;`` inside a
    string, a comment or a trigger's ``BEGIN ... END`` body does not cut it in two.
    """
    found, start = [], 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            if _has_code(script[start:end]):
                found.append(script[start : end + 1].strip())
            start = end + 1
    if _has_code(script[start:]):
        raise ValueError(f"script ends inside a statement: {script[start:].strip()[:80]!r}")
    return found


def _has_code(text: str) -> bool:
    """Whether ``text`` holds more than blank lines and ``--`` comments."""
    return any(ln.strip() and not ln.strip().startswith("--") for ln in text.splitlines())
