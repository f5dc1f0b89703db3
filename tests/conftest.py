"""Shared fixtures: real stores (a SQLite file, a fresh PostgreSQL database) and real servers."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from jobhandler.settings import Settings
from jobhandler.store import Store, open_store

PG_ADMIN_URL = os.environ.get("JOBHANDLER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STORE_KINDS = ["sqlite", "postgres"]


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def _require_postgres() -> None:
    reason = _pg_available()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI and not reachable: {reason}")
    pytest.skip(f"PostgreSQL not reachable: {reason}")


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    _require_postgres()
    name = f"jh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        # Processes still connected would spend their shutdown retrying a dropped database.
        stop_processes(list(LIVE))
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=STORE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each store kind: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = open_store(Settings(database_url=database_url))
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


def migrate(url: str) -> None:
    """Bring the store at ``url`` to the current schema, from a test's synchronous code."""

    async def run() -> None:
        opened = open_store(Settings(database_url=url))
        try:
            await opened.migrate()
        finally:
            await opened.close()

    asyncio.run(run())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {condition}")


# `python -m` would put the working directory on the path; the console script, as users run it,
# does not, so tests run the script.
COMMAND = [str(Path(sys.executable).with_name("jobhandler"))]


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """One ``jobhandler`` command to its end; by default with no ``JOBHANDLER_*`` variable."""
    return subprocess.run(
        [sys.executable, "-m", "jobhandler", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        env=env or {k: v for k, v in os.environ.items() if not k.startswith("JOBHANDLER_")},
    )


LIVE: list[Process] = []  # started and not yet stopped, in this pytest process


def stop_processes(procs: list[Process], timeout: float = 10.0) -> None:
    """SIGTERM all at once, then wait for each: shutdowns overlap instead of adding up."""
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.stop(max(0.1, deadline - time.monotonic()))


class Process:
    """A ``jobhandler`` command in a real child process, with its output in a log file."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log: Path,
        cwd: Path | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.popen = subprocess.Popen(
            [*(command or COMMAND), *args],
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        LIVE.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        if self in LIVE:
            LIVE.remove(self)
        return self.popen.returncode


class Server(Process):
    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        log: Path,
        port: int,
        cwd: Path | None = None,
        command: list[str] | None = None,
    ) -> None:
        super().__init__([*args, "--port", str(port)], env, log, cwd, command)
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 60.0) -> Server:
        def ready() -> bool:
            if self.popen.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout)
        return self


def test_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBHANDLER_")}
    env.update(
        JOBHANDLER_DATABASE_URL=database_url,
        JOBHANDLER_DEMO_DELAY="0.05",
        JOBHANDLER_LOG_LEVEL="info",
        # Hundreds of test stores: a small disk reserve each (docs/reliability.md, section 16).
        JOBHANDLER_SQLITE_RESERVE_BYTES=str(1024 * 1024),
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parent / "apps"), env.get("PYTHONPATH", "")]
        ),
    )
    env.update(extra)
    return env


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start ``jobhandler`` commands as child processes; all are stopped after the test."""
    started: list[Process] = []

    def start(
        args: list[str],
        env: dict[str, str],
        *,
        server: bool = False,
        cwd: Path | None = None,
        command: list[str] | None = None,  # another installation's (default: this one's)
    ) -> Process:
        log = tmp_path / f"proc-{len(started)}.log"
        proc: Process = (
            Server(args, env, log, free_port(), cwd, command)
            if server
            else Process(args, env, log, cwd, command)
        )
        started.append(proc)
        return proc

    yield start
    stop_processes(started)


@pytest.fixture
def server(spawn: Callable[..., Process], sqlite_url: str) -> Server:
    """``jobhandler serve`` (API and worker) on a fresh SQLite file, demo delay 50 ms."""
    proc = spawn(["serve"], test_env(sqlite_url), server=True)
    assert isinstance(proc, Server)
    return proc.wait_ready()


# -- the chaos tests' summaries, in the terminal summary ---------------------------------------

SUMMARY_PROPERTY = "history checker summary"  # a user property of a chaos test's report
_summaries: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Under xdist this runs in the controller, with the report (and its properties) a worker sent.
    if report.when == "call":
        _summaries.extend(str(v) for k, v in report.user_properties if k == SUMMARY_PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _summaries:
        terminalreporter.write_sep("=", "chaos: the history checker's summaries")
        for line in _summaries:
            terminalreporter.write_line(line)


test_env.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of the test's own, to fill (``fill``), unmounted afterwards: ask for it
    before ``spawn``, so that it is torn down after the processes that use it stopped."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=True)  # still held: detach it


def fill(path: Path) -> int:
    """Write ``path`` until the disk refuses another byte (large blocks, then pages)."""
    written = 0
    with path.open("wb", buffering=0) as filler:
        for block in (MiB, 4096):
            try:
                while True:
                    written += filler.write(bytes(block))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return written
