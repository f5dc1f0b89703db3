"""Workflows under kill -9, proven on real worker processes (both stores).

The workers run ``wfcrashapp`` (tests/apps/wfcrashapp.py): crashapp's ledger counts every run
of every job, and ``step`` also writes when each run started. A fan-in is killed into again
and again while its parents run, and once more while its child runs; then the child must have
run after every parent completed, at least once, and more than once only where a run's worker
was killed. A diamond with a failing node ends with the statuses its failure semantics say.

The guarantee is written in docs/reliability.md ("Workflows: the fan-in under crashes").
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobhandler import JobStatus
from jobhandler.model.workflows import WorkflowJobRequest, WorkflowRequest, WorkflowView
from tests.acceptance.test_crash import Db, pause, start_worker
from tests.conftest import Process, wait_until
from tests.conftest import test_env as make_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
import crashapp
import wfcrashapp

Spawn = Callable[..., Process]
PARENTS = 300


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    opened = Db(database_url)  # crashapp's App, which wfcrashapp adds its tasks to
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    path = str(tmp_path / "ledger.db")
    crashapp.init_ledger(path)
    return path


@pytest.fixture
def env(database_url: str, ledger: str) -> dict[str, str]:
    return make_env(database_url, JOBHANDLER_APP="wfcrashapp:app", CRASHAPP_LEDGER=ledger)


def submit(db: Db, name: str, jobs: list[dict[str, Any]]) -> WorkflowView:
    request = WorkflowRequest(name=name, jobs=[WorkflowJobRequest(**job) for job in jobs])
    view: WorkflowView = db.run(db.app.service.workflows.submit(request))
    return view


def workflow(db: Db, workflow_id: str) -> WorkflowView:
    view: WorkflowView = db.run(db.app.service.workflows.get(workflow_id))
    return view


class Crew:
    """Three worker processes; a killed one is replaced at once, as a supervisor would."""

    def __init__(self, spawn: Spawn, env: dict[str, str], db: Db, size: int = 3) -> None:
        self.spawn, self.env, self.db = spawn, env, db
        self.ids: dict[str, Process] = {}  # worker id: its process
        self.workers = [self.start() for _ in range(size)]
        self.killed: set[int] = set()  # pids

    def start(self) -> Process:
        worker = start_worker(self.spawn, self.env, concurrency=4)
        self.ids[self.db.worker_id(worker)] = worker
        return worker

    def running(self, job_id: str) -> Process:
        worker_id = self.db.job(job_id).worker_id
        assert worker_id is not None
        return self.ids[worker_id]

    def kill(self, victim: Process, job_id: str) -> None:
        pause(victim, self.db, job_id)  # never while it holds the store's write lock
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.popen.wait(10) == -signal.SIGKILL
        self.killed.add(victim.pid)
        self.workers[self.workers.index(victim)] = self.start()

    def busiest(self) -> Process:
        held = [j.worker_id for j in self.db.all_jobs(JobStatus.PROCESSING)]
        live = [i for i, w in self.ids.items() if w in self.workers]
        return self.ids[max(live, key=held.count)]


def reruns_only_after_kills(ledger: str, killed: set[int]) -> dict[str, list[int]]:
    """Jobs that ran more than once though no earlier run's worker was killed."""
    suspicious = {}
    for job_id, run in crashapp.read_runs(ledger).items():
        if any(pid not in killed for pid in run.pids[:-1]):
            suspicious[job_id] = run.pids
    return suspicious


def child_waits(db: Db, child_id: str, parent_ids: list[str]) -> bool:
    """Whether the child still waits; if it does not, every parent has finished (read after
    the child: a parent that finished stays finished)."""
    if db.job(child_id).status is JobStatus.WAITING:
        return True
    unfinished = [i for i, j in db.jobs(parent_ids).items() if not j.status.terminal]
    assert not unfinished, f"the child is due with {len(unfinished)} parents unfinished"
    return False


def test_kill_9_during_a_fan_in_never_strands_or_runs_the_child_early(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    parents = [
        {"key": f"p{i}", "task": "step", "payload": {"hold": 0.6, "retry_hold": 0.0}}
        for i in range(PARENTS)
    ]
    child = {
        "key": "child",
        "task": "step",
        "payload": {"hold": 60.0, "retry_hold": 0.0},  # the first run lasts until killed
        "after": [p["key"] for p in parents],
    }
    view = submit(db, "fan-in", [*parents, child])
    ids = {job.key: job.id for job in view.jobs}
    parent_ids, child_id = [ids[p["key"]] for p in parents], ids["child"]
    assert db.job(child_id).status is JobStatus.WAITING
    assert db.job(child_id).waiting_on == PARENTS

    crew = Crew(spawn, env, db)
    # kill -9 the busiest worker a few times while parents run: the last kill comes once half
    # of them started, which leaves 150 of 0.6 s on 12 slots (7.5 s at least) for the kills'
    # restarts. On a loaded machine the restarts took longer and every parent had finished
    # first (the child, due, was running): then the kills stop there.
    parent_kills = 0
    for kills in range(1, 5):
        wait_until(lambda n=kills: len(crashapp.read_runs(ledger)) >= n * PARENTS // 8, 60)
        if not child_waits(db, child_id, parent_ids):
            break
        crew.kill(crew.busiest(), parent_ids[0])
        parent_kills += 1
    assert parent_kills >= 1

    # Once the child runs, kill its worker too: the child is rescued and runs again.
    wait_until(lambda: child_id in crashapp.read_runs(ledger), timeout=60)
    crew.kill(crew.running(child_id), child_id)
    wait_until(lambda: db.job(child_id).status.terminal, timeout=60)

    jobs = db.jobs([*parent_ids, child_id])
    assert {j.status for j in jobs.values()} == {JobStatus.COMPLETED}
    last_parent = max(j.finished_at or 0 for i, j in jobs.items() if i != child_id)
    first_start = wfcrashapp.read_starts(ledger)[child_id][0]
    assert first_start >= last_parent, "the child started before a parent had finished"
    runs = crashapp.read_runs(ledger)
    assert set(runs) == {*parent_ids, child_id}, "a job was lost"
    assert any(runs[i].runs > 1 for i in parent_ids), "no kill landed while parents ran"
    assert runs[child_id].attempts == [1, 2] and runs[child_id].pids[0] in crew.killed
    assert not reruns_only_after_kills(ledger, crew.killed), "a run repeated with no kill"
    assert len(crew.killed) == parent_kills + 1
    assert not db.counts().get("waiting"), "a job stayed waiting"
    assert workflow(db, view.id).status.value == "completed"


def test_kill_9_in_a_diamond_with_a_failing_node_ends_with_the_right_statuses(
    database_url: str, db: Db, env: dict[str, str], ledger: str, spawn: Spawn
) -> None:
    """a → (b, c) → d, and cleanup after (b, c) on "run": b fails, c's worker is killed."""
    quick = {"hold": 0.1}
    view = submit(
        db,
        "diamond",
        [
            {"key": "a", "task": "step", "payload": quick},
            {"key": "b", "task": "broken", "payload": {"hold": 1.0}, "after": ["a"]},
            {"key": "c", "task": "step", "payload": {"hold": 30, "retry_hold": 0}, "after": ["a"]},
            {"key": "d", "task": "step", "payload": quick, "after": ["b", "c"]},
            {
                "key": "cleanup",
                "task": "step",
                "payload": quick,
                "after": ["b", "c"],
                "on_parent_failure": "run",
            },
        ],
    )
    ids = {job.key: job.id for job in view.jobs}
    crew = Crew(spawn, env, db, size=2)
    wait_until(lambda: ids["c"] in crashapp.read_runs(ledger), timeout=30)
    crew.kill(crew.running(ids["c"]), ids["c"])
    wait_until(lambda: workflow(db, view.id).finished, timeout=60)

    jobs = {key: db.job(job_id) for key, job_id in ids.items()}
    statuses = {key: job.status.value for key, job in jobs.items()}
    assert statuses == {
        "a": "completed",
        "b": "failed",
        "c": "completed",
        "d": "cancelled",
        "cleanup": "completed",
    }
    assert jobs["d"].blocked_by == ids["b"]
    assert jobs["d"].error is not None and "parent b" in jobs["d"].error
    assert jobs["c"].attempt == 2
    runs = crashapp.read_runs(ledger)
    assert ids["d"] not in runs, "a cancelled job ran"
    assert runs[ids["c"]].pids[0] in crew.killed
    starts = wfcrashapp.read_starts(ledger)
    settled = max(jobs["b"].finished_at or 0, jobs["c"].finished_at or 0)
    assert starts[ids["cleanup"]][0] >= settled, "cleanup ran before its parents settled"
    assert not reruns_only_after_kills(ledger, crew.killed)
    assert workflow(db, view.id).status.value == "failed"
