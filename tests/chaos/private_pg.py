"""A PostgreSQL server of the test's own, which the test may restart.

The shared server at 127.0.0.1:5432 serves every test of the suite at once (``-n 3``):
restarting it would cut the others' connections mid-test. So a test that restarts PostgreSQL
makes a cluster of its own with ``initdb`` in a temporary folder (owned by the ``postgres``
user, since the server refuses to run as root), on a free port of 127.0.0.1, with trust auth
for local connections only, and restarts that one. It is stopped and removed when the test
ends, whatever failed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port

OWNER = "postgres"


def _binary(name: str) -> str | None:
    """``initdb``/``pg_ctl`` on the PATH, or in Debian's versioned folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((str(v / name) for v in versions if (v / name).exists()), None)


def _as_owner(*argv: str, timeout: float = 60) -> None:
    subprocess.run(
        ["runuser", "-u", OWNER, "--", *argv], check=True, capture_output=True, timeout=timeout
    )


@dataclass
class PrivatePostgres:
    pg_ctl: str
    data: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        _as_owner(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, *args)

    def start(self) -> None:
        self._ctl("-w", "-t", "30", "start")

    def restart(self, mode: str = "fast") -> float:
        """``pg_ctl restart``: every session cut, the server down, then up again. Returns how
        long it was down, as the test saw it (from the command to the first new connection)."""
        began = time.monotonic()
        self._ctl("-w", "-t", "30", "-m", mode, "restart")
        self.wait_ready()
        return time.monotonic() - began

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-t", "20", "-m", mode, "stop")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def require_private_postgres() -> tuple[str, str]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl for a server of the test's own")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root (and runuser) to run a PostgreSQL server as its own user")
    return initdb, pg_ctl


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    initdb, pg_ctl = require_private_postgres()
    # Not under pytest's tmp_path: that is root's alone (0700), the server's user cannot enter.
    home = Path(tempfile.mkdtemp(prefix="jh-chaos-pg-"))
    shutil.chown(home, OWNER)
    server = PrivatePostgres(pg_ctl, home / "data", free_port(), home / "server.log")
    try:
        # No fsync: the test restarts the server process, it never cuts the machine's power.
        _as_owner(initdb, "-D", str(server.data), "-U", OWNER, "-A", "trust", "--no-sync")
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write("fsync = off\nmax_connections = 200\n")
        server.start()
        server.wait_ready()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop("immediate")
        shutil.rmtree(home, ignore_errors=True)
