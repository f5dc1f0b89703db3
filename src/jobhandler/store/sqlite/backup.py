"""Back up a live SQLite store, and restore one where nothing has it open.

A backup reads the store in one read transaction through SQLite's online backup API: in WAL
mode that is a consistent snapshot, and the servers and workers writing meanwhile neither wait
nor are waited for. It is written to a private temporary file beside the target and renamed
into place once checked, so a backup cut short leaves no partial file under the given name.

A restore must not change a file under processes that have it open (their pages and counts
would no longer match it). SQLite tells: a database leaves WAL mode only when its connection is
the only one, so the restore switches the target out of WAL first and refuses if it cannot.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from jobhandler.model.errors import JobHandlerError
from jobhandler.store.sqlite.files import create_private


class BackupRefused(JobHandlerError):
    """The backup or restore was not done, and nothing was written: the message says why."""


@dataclass(frozen=True, slots=True)
class Copied:
    path: str
    jobs: int
    bytes: int


def backup(store_path: str, target: str, busy_timeout: float = 10.0) -> Copied:
    """Copy the live store at ``store_path`` into the new file ``target``."""
    if not Path(store_path).is_file():
        raise BackupRefused(f"the store {store_path} does not exist")
    if os.path.lexists(target):
        raise BackupRefused(f"{target} exists already: give a new file name")
    source = sqlite3.connect(store_path, timeout=busy_timeout)
    temporary = _private_temporary(target)
    try:
        copy = sqlite3.connect(temporary, isolation_level=None)
        try:
            source.backup(copy)  # every page in one step: one snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            jobs = _checked(copy, target)
        finally:
            copy.close()
        os.replace(temporary, target)
    finally:
        source.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return Copied(target, jobs, os.path.getsize(target))


def restore(backup_file: str, store_path: str, replace: bool = False) -> Copied:
    """Make the store at ``store_path`` a copy of ``backup_file``, if no process has it open
    (and, unless ``replace``, if it holds no jobs)."""
    if not Path(backup_file).is_file():
        raise BackupRefused(f"the backup {backup_file} does not exist")
    source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        jobs = _checked(source, backup_file)
        create_private(store_path)
        target = sqlite3.connect(store_path, isolation_level=None, timeout=0)
        try:
            _alone(target, store_path, replace)
            source.backup(target)
            target.execute("PRAGMA journal_mode = WAL")
        finally:
            target.close()
    finally:
        source.close()
    return Copied(store_path, jobs, os.path.getsize(store_path))


def _alone(target: sqlite3.Connection, store_path: str, replace: bool) -> None:
    """Refuse unless this connection is the only one to the target (see the module's note)."""
    try:
        (mode,) = target.execute("PRAGMA journal_mode = DELETE").fetchone()
    except sqlite3.OperationalError as exc:  # locked: some process is writing to it now
        raise BackupRefused(
            f"{store_path} is in use ({exc}): stop its servers and workers first"
        ) from None
    if mode != "delete":
        raise BackupRefused(
            f"{store_path} is in use by another process: stop its servers and workers first"
        )
    if replace:
        return
    if _is_store(target) and target.execute("SELECT 1 FROM jobs LIMIT 1").fetchone():
        target.execute("PRAGMA journal_mode = WAL")
        raise BackupRefused(f"{store_path} holds jobs: add --replace to overwrite them")


def _checked(conn: sqlite3.Connection, name: str) -> int:
    """The number of jobs in a copy that SQLite finds whole and that is a Job Handler store."""
    try:
        (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
        has_jobs = _is_store(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{name} is not a SQLite database ({exc})") from None
    if verdict != "ok":
        raise BackupRefused(f"{name} is damaged: {verdict}")
    if not has_jobs:
        raise BackupRefused(f"{name} is not a Job Handler store (it has no jobs table)")
    (jobs,) = conn.execute("SELECT count(*) FROM jobs").fetchone()
    return int(jobs)


def _is_store(conn: sqlite3.Connection) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'")
    return found.fetchone() is not None


def _private_temporary(target: str) -> str:
    """A new file beside ``target``, readable by its owner only, as the store itself is."""
    folder = os.path.dirname(os.path.abspath(target))
    path = os.path.join(folder, f".{os.path.basename(target)}.{os.getpid()}.partial")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    return path
