"""The store's file on disk: made private to its owner."""

from __future__ import annotations

import os


def create_private(path: str) -> None:
    """Create the database file readable by its owner only (0600), whatever the umask.

    SQLite itself creates files 0644 (it even chmods them so), and gives the -wal and -shm
    files the database file's mode: so a file made 0600 here keeps all three private. An
    existing file keeps the mode its owner gave it.
    """
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # no such directory, no permission...: sqlite3.connect reports it
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits away; never added any
    finally:
        os.close(fd)
