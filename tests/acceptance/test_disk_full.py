"""A SQLite store on a disk that fills up: a real ``jobhandler serve`` on a 16 MiB tmpfs the test
mounts, filled by a file of the test's. Submits are refused (503, Retry-After, "disk full");
cancel, delete, bulk delete, prune and the ends of running jobs still work, in the room of the
reserve the store frees; once the file is gone the server takes work again by itself."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import MiB, Process, Server, fill, test_env, wait_until

RESERVE = 4 * MiB


def finished(http: httpx.Client, status: str) -> float:
    """This server's count of runs of ``gated`` that ended ``status``."""
    text = http.get("/metrics").text
    pattern = rf'jobhandler_jobs_finished_total\{{[^}}]*status="{status}"[^}}]*\}} (\S+)'
    return sum(float(n) for n in re.findall(pattern, text))


def test_a_full_disk_refuses_new_work_lets_cancel_delete_prune_run_and_recovers(
    small_disk: Path, spawn: Callable[..., Process], tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    env = test_env(
        f"sqlite:///{small_disk / 'jobs.db'}",
        JOBHANDLER_APP="gateapp:app",
        GATEAPP_DIR=str(gates),
        JOBHANDLER_SQLITE_RESERVE_BYTES=str(RESERVE),
        JOBHANDLER_CONCURRENCY="2",
        JOBHANDLER_PRUNE_INTERVAL="0.5",
        JOBHANDLER_KEEP_COMPLETED="2",
    )
    server = spawn(["serve"], env, server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    reserve = small_disk / "jobs.db-reserve"
    wait_until(lambda: reserve.exists() and reserve.stat().st_size == RESERVE, timeout=10)

    with httpx.Client(base_url=server.url, timeout=10) as http:

        def submit(gate: str) -> httpx.Response:
            return http.post("/jobs", json={"task": "gated", "payload": gate})

        def status(job_id: str) -> str | None:
            answer = http.get(f"/jobs/{job_id}")
            return answer.json()["status"] if answer.status_code == 200 else None

        running = [submit("hold").json()["id"] for _ in range(2)]
        wait_until(lambda: all(status(j) == "processing" for j in running), timeout=10)
        queued = [submit("later").json()["id"] for _ in range(6)]

        filler = small_disk / "filler"
        fill(filler)
        refused = None
        for _ in range(2000):  # the WAL may still have room for a few
            answer = submit("later")
            if answer.status_code != 201:
                refused = answer
                break
            queued.append(answer.json()["id"])
        assert refused is not None and refused.status_code == 503, refused
        assert refused.json()["detail"].startswith("disk full"), refused.text
        assert refused.headers["Retry-After"] == "5"
        assert not reserve.exists()  # its room went to what follows
        assert http.get("/readyz").json() == {"status": "ready", "disk_full": True}
        assert "jobhandler_store_disk_full 1.0" in http.get("/metrics").text
        assert submit("later").status_code == 503  # refused before it reaches the file

        # What frees room, or ends work already started, still runs.
        for job_id in queued[:3]:
            cancelled = http.post(f"/jobs/{job_id}/cancel")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert http.delete(f"/jobs/{queued[0]}").status_code == 204
        assert status(queued[0]) is None
        bulk = http.post("/jobs/bulk/delete", json={"status": ["cancelled"]})
        assert bulk.status_code == 200 and bulk.json()["count"] == 2, bulk.text
        assert all(status(j) is None for j in queued[:3])

        (gates / "hold").touch()
        for job_id in running:  # their outcomes are written on the full disk
            ended = http.get(f"/jobs/{job_id}", params={"wait": 10}).json()
            assert ended["status"] == "completed", ended
        # ... and pruned there, once past JOBHANDLER_KEEP_COMPLETED
        wait_until(lambda: all(status(j) is None for j in running), timeout=10)
        # The freed slots took no new work: claims wait for room too.
        assert all(status(j) == "queued" for j in queued[3:])
        assert submit("later").status_code == 503

        filler.unlink()
        wait_until(lambda: submit("later").status_code == 201, timeout=10, interval=0.2)
        assert http.get("/readyz").json() == {"status": "ready", "disk_full": False}
        assert "jobhandler_store_disk_full 0.0" in http.get("/metrics").text
        assert reserve.stat().st_size == RESERVE

        (gates / "later").touch()  # the queued jobs run now, the one taken at last too
        wait_until(lambda: finished(http, "completed") >= 2 + len(queued) - 3 + 1, timeout=10)

    log = server.output()
    assert "the disk is full; freed the 4.0 MiB reserve" in log, log
    assert "disk space is back" in log, log
