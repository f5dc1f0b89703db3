"""`jobhandler store backup` and `store restore`: a live SQLite store is copied while it serves
and works, and restored only where no process has the file open."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.acceptance.test_cli import cli
from tests.acceptance.test_store_copy import all_jobs
from tests.conftest import Process, Server, test_env, wait_until


def submit_until(http: httpx.Client, stop: threading.Event, acked: list[str]) -> None:
    while not stop.is_set():
        answer = http.post("/jobs", json={"payload": f"p{len(acked)}"})
        assert answer.status_code == 201, answer.text
        acked.append(answer.json()["id"])


def test_a_backup_under_load_restores_every_job_acknowledged_before_it(
    spawn: Callable[..., Process], sqlite_url: str, tmp_path: Path
) -> None:
    server = spawn(["serve"], test_env(sqlite_url, JOBHANDLER_DEMO_DELAY="0"), server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    backup, restored = tmp_path / "jobs.backup", f"sqlite:///{tmp_path / 'restored.db'}"
    acked: list[str] = []
    stop = threading.Event()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        submitter = threading.Thread(target=submit_until, args=(http, stop, acked))
        submitter.start()
        try:
            # the worker is draining and clients submitting meanwhile
            wait_until(lambda: len(acked) >= 200, timeout=30)
            before = len(acked)
            made = cli("store", "backup", str(backup), "--database", sqlite_url)
        finally:
            stop.set()
            submitter.join()
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("backed up ")
        assert len(acked) > before  # the store kept taking jobs while the copy ran

        again = cli("store", "backup", str(backup), "--database", sqlite_url)
        assert again.returncode == 2 and "exists already" in again.stderr

        # The file the server has open is not overwritten.
        busy = cli("store", "restore", str(backup), "--database", sqlite_url, "--replace")
        assert busy.returncode == 2 and "in use" in busy.stderr

    done = cli("store", "restore", str(backup), "--database", restored)
    assert done.returncode == 0, done.stderr
    jobs = {j["id"]: j for j in all_jobs(restored)}
    assert set(acked[:before]) <= set(jobs)  # every job acknowledged before the backup began
    assert {j["status"] for j in jobs.values()} <= {"queued", "processing", "completed"}
    assert oct(backup.stat().st_mode & 0o777) == "0o600"

    # A restored store serves: a server on it reads a job back and runs new ones.
    again_server = spawn(["serve"], test_env(restored, JOBHANDLER_DEMO_DELAY="0"), server=True)
    assert isinstance(again_server, Server)
    again_server.wait_ready()
    with httpx.Client(base_url=again_server.url, timeout=30) as http:
        assert http.get(f"/jobs/{acked[0]}").status_code == 200
        new = http.post("/jobs", json={"payload": "abc"}).json()
        finished = http.get(f"/jobs/{new['id']}", params={"wait": 20}).json()
        assert finished["result"] == "cba"

    assert server.stop() == 0
    holds = cli("store", "restore", str(backup), "--database", sqlite_url)
    assert holds.returncode == 2 and "holds jobs" in holds.stderr


def test_backup_and_restore_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    refused = cli("store", "restore", str(not_a_store), "--database", target)
    assert refused.returncode == 2 and "not a SQLite database" in refused.stderr
    missing = cli("store", "backup", str(tmp_path / "b"), "--database", target)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    postgres = cli("store", "backup", str(tmp_path / "b"), "--database", "postgresql://h/db")
    assert postgres.returncode == 2 and "pg_dump" in postgres.stderr
