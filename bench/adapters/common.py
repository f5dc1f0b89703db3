"""What every adapter shares: the job body's start record. Standard library only, since it is
imported inside each peer's own virtualenv (and inside that peer's worker processes).

Every job body calls ``record(marker)``: one ``os.write`` of ``"<marker> <time.time()>\\n"`` to
the file named by ``BENCH_RECORD``, opened once per process with O_APPEND (re-opened after a
fork). That is the only work a benchmark job does, and it is the same for every system.
"""

from __future__ import annotations

import os
import time

_fd: int | None = None
_pid: int | None = None


def record(marker: object) -> None:
    global _fd, _pid
    pid = os.getpid()
    if _fd is None or _pid != pid:
        _fd = os.open(os.environ["BENCH_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _pid = pid
    os.write(_fd, f"{marker} {time.time()!r}\n".encode())


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"adapter: the environment variable {name} is not set")
    return value


def bin_path(name: str) -> str:
    """A console script of the virtualenv this adapter runs in."""
    import sys

    return os.path.join(os.path.dirname(os.path.abspath(sys.executable)), name)
