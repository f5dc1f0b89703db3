"""Migrations added since the previous release only expand the schema, on both stores.

During a rolling upgrade the previous release keeps running on the migrated store
(docs/how-to/upgrading.md), so a new migration may add (tables, nullable or defaulted columns,
indexes) but not take away or change what the previous release reads and writes: no dropped or
renamed table or column, no column changed in type or made NOT NULL. That is the contract half
of "expand, then contract", which waits for a later release. A migration that must do one of
these anyway (a contract step, or SQLite's table rebuild when a CHECK widens) says why the
previous release keeps working in a ``-- rolling-upgrade-safe: <why>`` line, for review.

The rolling upgrade test (tests/acceptance/test_rolling_upgrade.py) shows the previous release
working on the migrated PostgreSQL store; this check is cheap, reads both stores' files and runs
everywhere.
"""

from __future__ import annotations

import re

import pytest

from tests.previous_release import MIGRATIONS, REPO_ROOT, previous_release

DIALECTS = ["sqlite", "postgres"]
CONTRACTING = {
    "drops a column": re.compile(r"\bDROP\s+COLUMN\b", re.I),
    "drops a table": re.compile(r"\bDROP\s+TABLE\b", re.I),
    "renames": re.compile(r"\bRENAME\b", re.I),
    "changes a column's type": re.compile(
        r"\bALTER\s+(?:COLUMN\s+)?\w+\s+(?:SET\s+DATA\s+)?TYPE\b", re.I
    ),
    "makes a column NOT NULL": re.compile(r"\bSET\s+NOT\s+NULL\b", re.I),
}
VOUCHED = re.compile(r"^\s*--\s*rolling-upgrade-safe:\s*\S", re.M)
CREATED_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
COMMENT = re.compile(r"--[^\n]*")
FUNCTION_BODY = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)  # PostgreSQL's dollar quoting


def tree_migrations(dialect: str) -> dict[str, str]:
    folder = REPO_ROOT / MIGRATIONS / dialect
    return {p.name: p.read_text(encoding="utf-8") for p in folder.glob("[0-9]*_*.sql")}


def contracting(released: dict[str, str], added: dict[str, str]) -> list[str]:
    """What the ``added`` migrations do to tables the ``released`` ones made that the released
    code could trip on: one line per statement, unless its migration vouches for itself."""
    tables = {t.lower() for sql in released.values() for t in CREATED_TABLE.findall(sql)}
    found = []
    for name, sql in sorted(added.items()):
        if VOUCHED.search(sql):
            continue
        # Cut at each ';' once comments and function bodies are out: a trigger's body falls in
        # pieces, which is fine for finding the statements below.
        for code in FUNCTION_BODY.sub("", COMMENT.sub("", sql)).split(";"):
            words = {w.lower() for w in re.findall(r"\w+", code)}
            if not words & tables:
                continue  # only what the new migrations made themselves
            found += [
                f"{name}: {what}: {' '.join(code.split())[:120]}"
                for what, pattern in CONTRACTING.items()
                if pattern.search(code)
            ]
    return found


@pytest.mark.parametrize("dialect", DIALECTS)
def test_migrations_since_the_previous_release_only_expand(dialect: str) -> None:
    release = previous_release()
    released, tree = release.migrations(dialect), tree_migrations(dialect)
    # Append-only: the release's migrations are here unchanged, the new ones come after them
    # (a store at the release's version would never run one numbered below it).
    assert {name: tree.get(name) for name in released} == released
    added = {name: sql for name, sql in tree.items() if name not in released}
    newest = max(int(name.split("_", 1)[0]) for name in released)
    assert [name for name in added if int(name.split("_", 1)[0]) <= newest] == []
    assert contracting(released, added) == []


def test_the_check_objects_to_the_contracting_steps_in_the_history() -> None:
    """Not vacuous: from 001 on, it finds the steps that would have broken a rolling upgrade
    (SQLite's table rebuilds in 004 and 013, PostgreSQL's type change in 010)."""
    found = {}
    for dialect in DIALECTS:
        tree = tree_migrations(dialect)
        first = {name: sql for name, sql in tree.items() if name.startswith("001_")}
        later = {name: sql for name, sql in tree.items() if name not in first}
        found[dialect] = {line.split(":", 1)[0] for line in contracting(first, later)}
    assert {"004_checks.sql", "013_workflows.sql"} <= found["sqlite"]
    assert "010_json_order.sql" in found["postgres"]
    vouched = {
        "016_x.sql": "-- rolling-upgrade-safe: v9 reads no x\nALTER TABLE jobs DROP COLUMN x;"
    }
    assert contracting(tree_migrations("sqlite"), vouched) == []
    unvouched = {"016_x.sql": "ALTER TABLE jobs DROP COLUMN x; -- rolling-upgrade-safe: no"}
    assert contracting(tree_migrations("sqlite"), unvouched) != []
