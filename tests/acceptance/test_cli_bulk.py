"""``submit --unique-key`` and the bulk form of ``jobs cancel|retry|delete``, as users run them."""

from __future__ import annotations

import json

import httpx

from tests.conftest import Server, run_cli


def test_unique_submits_and_bulk_actions_from_the_cli(server: Server) -> None:
    url = ["--url", server.url]
    first = run_cli("submit", "reverse", '"a"', "--unique-key", "k", "--delay", "3600", *url)
    again = run_cli("submit", "reverse", '"b"', "--unique-key", "k", *url)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout == again.stdout  # the same job's id
    jobs = [{"payload": str(n), "queue": "slow", "delay": 3600} for n in range(3)]
    httpx.post(f"{server.url}/jobs/batch", json={"jobs": jobs}).raise_for_status()

    declined = run_cli("jobs", "cancel", "--queue", "slow", *url, stdin="n\n")
    assert declined.returncode == 1 and "cancel queue=slow?" in declined.stderr
    args = ["--queue", "slow", "--status", "scheduled", "--yes", "-o", "json"]
    cancelled = run_cli("jobs", "cancel", *args, *url)
    assert json.loads(cancelled.stdout) == {"action": "cancel", "count": 3}, cancelled.stderr
    mixed = run_cli("jobs", "delete", "some-id", "--queue", "slow", *url)
    assert mixed.returncode == 2 and "not both" in mixed.stderr
