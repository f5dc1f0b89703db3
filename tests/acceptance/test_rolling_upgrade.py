"""A rolling upgrade on one PostgreSQL store: the previous release serves and works while the
current code migrates the store and joins it, then the previous release stops; nothing is lost.

The previous release is installed beside the current code (tests/previous_release.py). Its
processes run the release's own test app (tests/apps at the tag), the current ones today's:
both record every run in one ledger (tests/apps/crashapp.py), which tells how often each job
ran and in which process.

Every acknowledged job must run exactly once, not merely at least once: no process is killed
and no lease expires (default lease), and the previous release stops gracefully, so its worker
finishes its short runs before the process exits (docs/reliability.md, "Graceful shutdown").
A second run would mean the two releases disagreed about a claim, which is what this test is
for.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.apps import crashapp
from tests.conftest import Process, Server, migrate, test_env, wait_until
from tests.previous_release import REPO_ROOT, Release, install, previous_release

pytestmark = pytest.mark.postgres

APP = {"JOBHANDLER_APP": "crashapp:app", "JOBHANDLER_CONCURRENCY": "20"}
JOB = {"task": "ledger", "payload": {"hold": 0.05}}
SOME = 10  # jobs each side must have taken in a phase before the next begins
POSTGRES_MIGRATIONS = "src/jobhandler/store/sql/postgres"


class Submitter(threading.Thread):
    """Submits jobs one at a time, round robin over the servers it is aimed at, and keeps every
    acknowledged id with the server that acknowledged it."""

    def __init__(self, *urls: str) -> None:
        super().__init__(name="submitter", daemon=True)
        self.acked: dict[str, str] = {}  # job id -> the server's URL
        self.failures: list[str] = []
        self._targets = list(urls)
        self._aimed = 0  # bumped by each aim()
        self._finished_aim = -1  # the aim of the last request that has ended
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def aim(self, *urls: str) -> None:
        """Submit to ``urls`` from now on; returns once no request to another is in flight."""
        with self._lock:
            self._targets, self._aimed = list(urls), self._aimed + 1
            aimed = self._aimed
        wait_until(lambda: self._finished_aim >= aimed or not self.is_alive(), timeout=30)

    def count(self, url: str) -> int:
        with self._lock:
            return sum(1 for server in self.acked.values() if server == url)

    def jobs(self) -> set[str]:
        with self._lock:
            return set(self.acked)

    def run(self) -> None:
        clients: dict[str, httpx.Client] = {}
        sent = 0
        while not self._halt.is_set():
            with self._lock:
                url, aimed = self._targets[sent % len(self._targets)], self._aimed
            http = clients.setdefault(url, httpx.Client(base_url=url, timeout=30))
            try:
                response = http.post("/jobs", json=JOB)
                if response.status_code == 201:
                    with self._lock:
                        self.acked[response.json()["id"]] = url
                else:
                    self.failures.append(f"{url}: {response.status_code} {response.text}")
            except httpx.HTTPError as exc:
                self.failures.append(f"{url}: {exc!r}")
            sent += 1
            self._finished_aim = aimed
            self._halt.wait(0.01)  # a steady stream, not a flood of the machine's two cores
        for http in clients.values():
            http.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


def schema_version(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        assert row is not None
        return int(row[0])


def newest_migration(folder: Path) -> int:
    return max(int(p.name.split("_", 1)[0]) for p in folder.glob("[0-9]*_*.sql"))


def runs_by(ledger: Path, pid: int, among: set[str]) -> int:
    return sum(
        1
        for job, run in crashapp.read_runs(str(ledger)).items()
        if job in among and pid in run.pids
    )


def problems(log: str) -> list[str]:
    """The lines of a process's log that say something went wrong: errors, and the job events
    logged as warnings (a failure, a timeout, a rescue, an interrupted run). Other warnings are
    left out: on a loaded machine the watchdog rightly says the event loop was starved."""
    bad = (" ERROR ", " CRITICAL ", " WARNING jobhandler.jobs[", "Traceback")
    return [line for line in log.splitlines() if any(word in line for word in bad)]


def release_env(url: str, tree: Path, ledger: Path) -> dict[str, str]:
    """The previous release's processes: its own test app, nothing of the current tree."""
    env = test_env(url, CRASHAPP_LEDGER=str(ledger), **APP)
    env["PYTHONPATH"] = str(tree / "tests" / "apps")
    return env


def progress(
    condition: Callable[[], bool], submitter: Submitter, procs: list[Process], timeout: float
) -> None:
    """Wait for ``condition``; fail at the first failed submit, and say what the processes
    logged as wrong when it does not come."""

    def met() -> bool:
        assert submitter.failures == [], f"submits failed: {submitter.failures[:3]}"
        return condition()

    try:
        wait_until(met, timeout)
    except AssertionError as exc:
        logged = [line for proc in procs for line in problems(proc.output())]
        raise AssertionError(f"{exc}\nlogged: {logged[:5]}") from None


def check_release_imported(python: Path, env: dict[str, str], tree: Path, cwd: Path) -> None:
    """The release's interpreter imports the release's package and app, not the current ones."""
    code = (  # where each would be imported from, found without importing it: cheap
        "from importlib.util import find_spec as f;"
        "print(f('jobhandler').origin, f('crashapp').origin)"
    )
    done = subprocess.run(
        [str(python), "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert Path(path).is_relative_to(tree), path


def test_previous_release_and_current_code_share_a_store_through_an_upgrade(
    spawn: Callable[..., Process], pg_database_url: str, tmp_path: Path
) -> None:
    release: Release = previous_release()
    python = install(release, tmp_path / "previous")
    tree = tmp_path / "previous" / "src"
    ledger = tmp_path / "ledger.db"
    crashapp.init_ledger(str(ledger))
    old_env = release_env(pg_database_url, tree, ledger)
    check_release_imported(python, old_env, tree, tmp_path)

    # 1. The previous release makes the store (it migrates as it starts) and serves a stream of
    # jobs: each side is one `serve`, the API and a worker in one process (two processes less
    # to start on a loaded machine; the API and the worker still each talk to the store).
    old = spawn(
        ["serve"], old_env, server=True, cwd=tmp_path, command=[str(python), "-m", "jobhandler"]
    )
    assert isinstance(old, Server)
    old.wait_ready()
    assert schema_version(pg_database_url) == newest_migration(tree / POSTGRES_MIGRATIONS)
    released = httpx.get(f"{old.url}/openapi.json").json()["info"]["version"]
    assert released == release.tag.removeprefix("v")  # the release's own code answers
    submitter = Submitter(old.url)
    submitter.start()
    try:
        new = _upgrade_while_serving(spawn, submitter, old, pg_database_url, ledger)
    finally:
        submitter.stop()
    _everything_ran_once(submitter, new, ledger)
    assert problems(old.output()) == [] and problems(new.output()) == []


def _upgrade_while_serving(
    spawn: Callable[..., Process], submitter: Submitter, old: Server, url: str, ledger: Path
) -> Server:
    def taken_by(pid: int) -> int:
        return runs_by(ledger, pid, submitter.jobs())

    progress(lambda: taken_by(old.pid) >= SOME, submitter, [old], timeout=30)

    # 2. The current code migrates the store under the running release (what `jobhandler
    # migrate` does, here in the test's process: one interpreter start less).
    migrate(url)
    assert schema_version(url) == newest_migration(REPO_ROOT / POSTGRES_MIGRATIONS)
    # The current release's process starts now (an interpreter start takes seconds on a loaded
    # machine), while the previous release goes on working on the migrated store.
    new = spawn(["serve"], test_env(url, CRASHAPP_LEDGER=str(ledger), **APP), server=True)
    assert isinstance(new, Server)
    old_runs, old_acks = taken_by(old.pid), submitter.count(old.url)
    progress(
        lambda: (
            taken_by(old.pid) >= old_runs + SOME and submitter.count(old.url) >= old_acks + SOME
        ),
        submitter,
        [old],
        timeout=30,
    )

    # 3. The current code joins: submits go through both servers, both workers take jobs.
    new.wait_ready()
    with httpx.Client(base_url=new.url) as http:
        wait_until(lambda: len(http.get("/workers").json()) == 2, timeout=30)
    submitter.aim(old.url, new.url)
    old_runs, old_acks = taken_by(old.pid), submitter.count(old.url)
    progress(
        lambda: (
            taken_by(new.pid) >= SOME
            and taken_by(old.pid) >= old_runs + SOME
            and submitter.count(new.url) >= SOME
            and submitter.count(old.url) >= old_acks + SOME
        ),
        submitter,
        [old, new],
        timeout=60,
    )

    # 4. The release stops gracefully once no request to it is in flight; the current one serves.
    submitter.aim(new.url)
    assert old.stop() == 0
    new_acks = submitter.count(new.url)
    progress(lambda: submitter.count(new.url) >= new_acks + SOME, submitter, [new], timeout=30)
    return new


def _everything_ran_once(submitter: Submitter, api: Server, ledger: Path) -> None:
    assert submitter.failures == []
    acked = submitter.jobs()

    def counts() -> dict[str, int]:
        """Jobs by status over every queue, statuses with none left out."""
        found: dict[str, int] = {}
        for queue in httpx.get(f"{api.url}/queues").json():
            for status, n in queue["counts"].items():
                found[status] = found.get(status, 0) + n
        return {status: n for status, n in found.items() if n}

    wait_until(lambda: counts() == {"completed": len(acked)}, timeout=60, interval=0.2)
    runs = crashapp.read_runs(str(ledger))
    assert set(runs) == acked  # none lost, none made up
    assert [job for job, run in runs.items() if run.runs != 1] == []  # none twice
