"""A retry blocked by a held unique key, against a real ``jobhandler serve`` on both stores:
the 409 problem naming the holder, the bulk answer with the skipped jobs and every other one
retried, what the CLI prints and what the dashboard's Retry button shows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobhandler.client.clients import Client
from jobhandler.model.errors import Conflict
from tests.conftest import Process, Server, run_cli, test_env


def submit(http: httpx.Client, **body: Any) -> str:
    answer = http.post("/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def failed(http: httpx.Client, **body: Any) -> str:
    """A job of the demo's ``fail`` task, once its worker has failed it."""
    job_id = submit(http, task="fail", payload="boom", **body)
    job = http.get(f"/jobs/{job_id}", params={"wait": 20}).json()
    assert job["status"] == "failed", job
    return job_id


def test_a_held_key_refuses_a_retry_and_a_bulk_retry_skips_it(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = spawn(["serve"], test_env(database_url), server=True)
    assert isinstance(server, Server)
    url = ["--url", server.wait_ready().url]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        old, free, plain = failed(http, unique_key="k"), failed(http, unique_key="f"), failed(http)
        holder = submit(http, payload="b", unique_key="k", delay=3600)

        refused = http.post(f"/jobs/{old}/retry")
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        body = refused.json()
        assert body["holder"] == holder and body["job_status"] == "failed"
        assert holder in body["error"] and "'k'" in body["error"]
        assert "constraint" not in refused.text.lower()
        assert http.get(f"/jobs/{old}").json()["status"] == "failed"  # nothing was written

        with Client(server.url) as client, pytest.raises(Conflict) as raised:
            client.retry(old)
        assert raised.value.holder == holder and raised.value.job_status == "failed"

        cli = run_cli("jobs", "retry", old, *url)
        assert cli.returncode == 2 and holder in cli.stderr and "'k'" in cli.stderr, cli.stderr

        # The dashboard (open: a session cookie for its CSRF token alone).
        page = http.get(f"/ui/jobs/{old}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        shown = http.post(f"/ui/jobs/{old}/retry", data={"csrf_token": csrf.group(1)})
        assert shown.status_code == 409 and holder in shown.text, shown.text
        assert "constraint" not in shown.text.lower()

        bulk = http.post("/jobs/bulk/retry", json={"status": ["failed"]})
        assert bulk.status_code == 200, bulk.text
        assert bulk.json() == {
            "action": "retry",
            "count": 2,
            "skipped": [{"id": old, "holder": holder}],
            "skipped_count": 1,
        }
        for job_id in (free, plain):  # retried: run again (and failed again)
            assert http.get(f"/jobs/{job_id}").json()["attempt"] >= 1
            attempts = http.get(f"/jobs/{job_id}/attempts").json()
            assert len(attempts) == 2 or attempts[-1]["outcome"] is None, attempts
        assert http.get(f"/jobs/{old}").json()["status"] == "failed"

        text = run_cli("jobs", "retry", "--status", "failed", "--yes", *url, "--task", "fail")
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert lines[0].startswith("retry: ") and "1 skipped" in lines[0], lines
        assert f"{old} held by {holder}" in lines[1:], lines
        as_json = run_cli("jobs", "retry", "--status", "failed", "--yes", "-o", "json", *url)
        answer = json.loads(as_json.stdout)
        assert answer["skipped"] == [{"id": old, "holder": holder}], answer
