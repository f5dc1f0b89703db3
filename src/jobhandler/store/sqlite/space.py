"""A full disk under a SQLite store: a reserve of free space, and the low-space state.

SQLite needs room for any write: a cancel or a delete appends its pages to the WAL, and the
checkpoint that copies them back may grow the database file. On a full disk every write fails
with SQLITE_FULL, those that would free space too. So the store keeps a reserve: a file beside
the database (``<file>-reserve``) whose blocks are allocated, ``sqlite_reserve_bytes`` long.
When a write fails for want of space, the store enters the low-space state:

- it deletes the reserve, and gives its room to the writes that free space or let work already
  started end: a unit of work whose every statement is ``:when_full`` (queries.py) runs, and
  the one that failed runs again;
- it refuses every other write (a submit, a retry, a claim: new data, new work) before it
  reaches the file, with ``DiskFull`` (503 with Retry-After on the API);
- a thread looks at the filesystem's free space (statvfs) once a second, in this state only;
  once the reserve can be made again with as much free beside it, it makes it and leaves.

While the store is healthy the write path reads one attribute (``low``) and nothing else; the
thread stats the reserve once a second: each process has its own state, and one whose writes
have not failed yet learns from the reserve's absence that another freed it, before its own
submits and claims eat the room meant for cancels. Deleting the reserve by hand does the same.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import threading
from collections.abc import Sequence

from jobhandler.model.errors import DiskFull
from jobhandler.store.dialect import Step

log = logging.getLogger("jobhandler.store")

# How often the thread looks: for the reserve when healthy, for free space when low.
LOOK_EVERY = 1.0
_NO_FALLOCATE = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
# Leaving the low-space state wants as much free beside the reserve as the reserve, and this
# much at least (all of it, for a store that keeps none).
MIN_FREE = 1024 * 1024


def free_bytes(directory: str) -> int:
    """Bytes an unprivileged writer may still use on the filesystem of ``directory`` (statvfs's
    f_bavail on POSIX: not the blocks a filesystem keeps for root)."""
    return shutil.disk_usage(directory).free


def allocate(path: str, size: int) -> None:
    """Make ``path`` a private file of ``size`` allocated bytes, all at once or not at all
    (a partial one is removed): written beside it, then renamed into place."""
    part = f"{path}.{os.getpid()}.{threading.get_ident()}.part"  # two stores on one file
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, size)  # blocks, not a sparse length
        except (AttributeError, OSError) as exc:  # macOS has none; some filesystems refuse it
            if isinstance(exc, OSError) and exc.errno not in _NO_FALLOCATE:
                raise
            chunk = bytes(min(size, 1024 * 1024))  # zeros, a MiB at a time
            while size > 0:
                size -= os.write(fd, chunk[:size])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
    os.close(fd)
    os.replace(part, path)


class DiskSpace:
    """The reserve and the low-space state of one store file in this process."""

    def __init__(self, path: str, reserve_bytes: int) -> None:
        self.path = path
        self.reserve = f"{path}-reserve"
        self.reserve_bytes = reserve_bytes
        self.directory = os.path.dirname(os.path.abspath(path))
        self.low = False
        # False once the reserve could not be made for a reason other than space (a read-only
        # directory...): its absence then says nothing about the disk.
        self._keeping = reserve_bytes > 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the write path ----------------------------------------------------------------------

    def refuse_growth(self, steps: Sequence[Step]) -> None:
        """In the low-space state, raise DiskFull unless every step may run on a full disk."""
        if self.low and not all(step.query.when_full for step in steps):
            raise DiskFull(DiskFull.explained)

    def ran_out(self) -> None:
        """A write failed with SQLITE_FULL: enter the low-space state, freeing the reserve."""
        with self._lock:
            if self.low:
                return
            self.low = True
        freed = self._free_reserve()
        log.warning(
            "store %s: the disk is full; freed the %.1f MiB reserve for cancel, delete and"
            " prune; refusing new work until %.1f MiB are free",
            self.path,
            freed / 2**20,
            (self.reserve_bytes + self._margin()) / 2**20,
        )
        self.start()  # someone must look for space coming back

    # -- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        """Look after the reserve from now on (the store opened its file): make it if it is
        missing, and look once a second. Nothing to do without a reserve, unless low."""
        with self._lock:
            if self._thread or self._stop.is_set() or not (self._keeping or self.low):
                return
            self._thread = threading.Thread(
                target=self._watch, name="jobhandler-sqlite-space", daemon=True
            )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _watch(self) -> None:
        if not self.low and not os.path.exists(self.reserve) and not self._make_reserve():
            self.ran_out()  # the store's first opening, on a disk already full
        while not self._stop.wait(LOOK_EVERY):
            try:
                self._look()
            except Exception:  # a look that failed is tried again next second
                log.exception("store %s: looking at free disk space failed", self.path)

    def _look(self) -> None:
        if not self.low:
            if self._keeping and not os.path.exists(self.reserve):
                self.ran_out()  # another process freed it, or an operator did
            return
        missing = self.reserve_bytes if self._keeping and not os.path.exists(self.reserve) else 0
        free = free_bytes(self.directory)
        if free < missing + self._margin():
            return
        if missing and not self._make_reserve():
            return  # taken meanwhile by someone else's writes
        with self._lock:
            self.low = False
        log.warning(
            "store %s: disk space is back (%.1f MiB free); the reserve is in place again and"
            " new work is taken",
            self.path,
            (free - missing) / 2**20,
        )

    def _margin(self) -> int:
        """Free space wanted beside the reserve before new work is taken again."""
        return max(self.reserve_bytes, MIN_FREE)

    def _make_reserve(self) -> bool:
        """False if there was no room for it; any other failure leaves the store without one."""
        if not self._keeping:
            return True
        try:
            allocate(self.reserve, self.reserve_bytes)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return False
            log.warning("store %s: keeps no disk reserve: %s", self.path, exc)
            self._keeping = False
        return True

    def _free_reserve(self) -> int:
        try:
            size = os.stat(self.reserve).st_size
            os.unlink(self.reserve)
        except FileNotFoundError:
            return 0  # another process freed it first
        return size
