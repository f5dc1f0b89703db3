"""The HTTP API against a real `jobhandler serve` process on a SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Process, Server, test_env


@pytest.fixture
def http(server: Server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client  # type: ignore[misc]


def job_count(http: httpx.Client) -> int:
    return len(http.get("/jobs", params={"limit": 1000}).json())


def assert_problem(response: httpx.Response, status: int, contains: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and contains in body["error"]
    assert body["detail"] == body["error"]
    return body


def test_create_returns_201_location_and_the_job(http: httpx.Client) -> None:
    response = http.post("/jobs", json={"payload": "hello"})
    assert response.status_code == 201
    job = response.json()
    assert job["status"] == "queued" and job["task"] == "reverse" and job["payload"] == "hello"
    assert response.headers["location"] == f"/jobs/{job['id']}"
    done = http.get(f"/jobs/{job['id']}", params={"wait": 10}).json()
    assert done["status"] == "completed" and done["result"] == "olleh"
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]


def test_options_delay_priority_queue_attempts(http: httpx.Client) -> None:
    body = {
        "payload": "x",
        "task": "reverse",
        "queue": "default",
        "priority": 7,
        "delay": 3600,
        "max_attempts": 9,
        "timeout": 5,
    }
    job = http.post("/jobs", json=body).json()
    assert job["status"] == "scheduled" and job["priority"] == 7
    assert job["max_attempts"] == 9 and job["timeout"] == 5
    at = http.post("/jobs", json={"payload": "x", "run_at": "2099-01-01T00:00:00Z"}).json()
    assert at["status"] == "scheduled" and at["run_at"].startswith("2099-01-01T00:00:00")


@pytest.mark.parametrize(
    ("send", "status", "message"),
    [
        (
            dict(content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "not valid JSON",
        ),
        (dict(content=b"", headers={"content-type": "application/json"}), 400, "not valid JSON"),
        (dict(json={"task": "reverse"}), 400, "payload"),
        (dict(json=["payload"]), 400, "payload"),
        (dict(json={"payload": 5}), 422, "payload"),
        (dict(json={"payload": "x", "task": "nope"}), 422, "unknown task 'nope'"),
        (dict(json={"payload": "x", "max_attempts": 0}), 422, "max_attempts"),
        (dict(json={"payload": "x", "delay": -1}), 422, "delay"),
        (dict(json={"payload": "x", "delay": 1, "run_at": "2030-01-01T00:00:00Z"}), 422, "either"),
        (dict(json={"payload": "x", "run_at": "tomorrow"}), 422, "run_at"),
        (dict(json={"payload": "x", "colour": "red"}), 422, "colour"),
        (
            dict(
                content=b'{"payload":"' + b"x" * 1_100_000 + b'"}',
                headers={"content-type": "application/json"},
            ),
            413,
            "over",
        ),
    ],
)
def test_bad_submissions_get_a_clear_4xx_and_store_nothing(
    http: httpx.Client, send: dict[str, Any], status: int, message: str
) -> None:
    before = job_count(http)
    assert_problem(http.post("/jobs", **send), status, message)
    assert job_count(http) == before


def test_invalid_payload_names_the_field(http: httpx.Client) -> None:
    body = assert_problem(http.post("/jobs", json={"payload": {"a": 1}}), 422, "payload")
    assert body["errors"][0]["loc"] == ["payload"]


def test_unknown_job_is_404_with_the_go_message(http: httpx.Client) -> None:
    for response in (
        http.get("/jobs/does-not-exist"),
        http.post("/jobs/does-not-exist/cancel"),
        http.post("/jobs/does-not-exist/retry"),
        http.delete("/jobs/does-not-exist"),
    ):
        assert_problem(response, 404, "job not found")


def test_list_filters_limit_and_cursor(http: httpx.Client) -> None:
    ids = [
        http.post("/jobs", json={"payload": f"p{i}", "delay": 3600}).json()["id"] for i in range(5)
    ]
    page = http.get("/jobs", params={"limit": 2, "status": "scheduled"})
    assert [j["id"] for j in page.json()] == ids[::-1][:2]
    seen = [j["id"] for j in page.json()]
    while "link" in page.headers:
        next_url = page.headers["link"].split(";")[0].strip("<>")
        page = http.get(next_url)
        seen += [j["id"] for j in page.json()]
    assert seen == ids[::-1]
    assert http.get("/jobs", params={"status": "failed"}).json() == []
    assert (
        len(http.get("/jobs", params=[("status", "failed"), ("status", "scheduled")]).json()) == 5
    )
    assert http.get("/jobs", params={"task": "nope"}).json() == []
    assert len(http.get("/jobs", params={"queue": "default"}).json()) == 5


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 0}, 422),
        ({"limit": 1001}, 422),
        ({"status": "done"}, 422),
        ({"cursor": "garbage"}, 400),
        ({"limit": "ten"}, 422),
    ],
)
def test_bad_list_parameters(http: httpx.Client, params: dict[str, Any], status: int) -> None:
    assert http.get("/jobs", params=params).status_code == status


def test_wait_is_bounded(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"payload": "x", "delay": 3600}).json()
    assert http.get(f"/jobs/{job['id']}", params={"wait": 61}).status_code == 422
    held = http.get(f"/jobs/{job['id']}", params={"wait": 0.2}).json()
    assert held["status"] == "scheduled"


def test_cancel_retry_delete(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"payload": "x", "delay": 3600}).json()
    assert_problem(http.delete(f"/jobs/{job['id']}"), 409, "finished")
    assert_problem(http.post(f"/jobs/{job['id']}/retry"), 409, "retried")
    cancelled = http.post(f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    body = assert_problem(http.post(f"/jobs/{job['id']}/cancel"), 409, "cannot be cancelled")
    assert body["job_status"] == "cancelled"
    retried = http.post(f"/jobs/{job['id']}/retry").json()
    assert retried["status"] == "queued"
    done = http.get(f"/jobs/{job['id']}", params={"wait": 10}).json()
    assert done["status"] == "completed" and done["result"] == "x"
    assert http.delete(f"/jobs/{job['id']}").status_code == 204
    assert http.get(f"/jobs/{job['id']}").status_code == 404


def test_failed_job_shows_error_and_traceback(http: httpx.Client) -> None:
    job = http.post("/jobs", json={"task": "flaky", "payload": 5}).json()
    failed = http.get(f"/jobs/{job['id']}", params={"wait": 30}).json()
    assert failed["status"] == "failed" and failed["attempt"] == 3
    assert "failed on purpose" in failed["error"] and "RuntimeError" in failed["traceback"]


def test_batch_is_all_or_nothing(http: httpx.Client) -> None:
    ok = http.post(
        "/jobs/batch", json={"jobs": [{"payload": "a"}, {"task": "reverse", "payload": "b"}]}
    )
    assert ok.status_code == 201 and [j["payload"] for j in ok.json()["jobs"]] == ["a", "b"]
    before = job_count(http)
    bad = http.post(
        "/jobs/batch",
        json={"jobs": [{"payload": "a"}, {"payload": 1}, {"x": 1}, {"task": "nope", "payload": 1}]},
    )
    body = assert_problem(bad, 422, "nothing was stored")
    assert {tuple(e["loc"][:2]) for e in body["errors"]} == {("jobs", 1), ("jobs", 2), ("jobs", 3)}
    assert_problem(http.post("/jobs/batch", json={"jobs": []}), 422, "1 to 1000")
    assert_problem(
        http.post("/jobs/batch", json={"jobs": [{"payload": "a"}] * 1001}), 422, "1 to 1000"
    )
    assert_problem(http.post("/jobs/batch", json={"payload": 1}), 400, "jobs array")
    assert job_count(http) == before


def test_tasks_queues_workers_health_and_docs(http: httpx.Client) -> None:
    tasks = {t["name"]: t for t in http.get("/tasks").json()}
    assert tasks["reverse"]["payload_schema"] == {"type": "string"}
    assert tasks["reverse"]["result_schema"] == {"type": "string"}
    assert tasks["crunch"]["isolation"] == "process"
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready", "disk_full": False}
    workers = http.get("/workers").json()
    assert len(workers) == 1 and workers[0]["queues"] == ["default"]
    http.post("/jobs", json={"payload": "x", "delay": 3600})
    (default,) = http.get("/queues").json()
    assert default["queue"] == "default" and default["counts"]["scheduled"] == 1
    spec = http.get("/openapi.json").json()
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/tasks"} <= set(spec["paths"])
    assert http.get("/docs").status_code == 200
    assert_problem(http.get("/no-such-route"), 404, "Not Found")


def test_cancel_running_job_stops_it(spawn: Callable[..., Process], sqlite_url: str) -> None:
    slow = spawn(["serve"], test_env(sqlite_url, JOBHANDLER_DEMO_DELAY="60"), server=True)
    assert isinstance(slow, Server)
    slow.wait_ready()
    with httpx.Client(base_url=slow.url, timeout=30) as http:
        job = http.post("/jobs", json={"payload": "hello"}).json()
        wait_processing = lambda: http.get(f"/jobs/{job['id']}").json()["status"] == "processing"  # noqa: E731
        from tests.conftest import wait_until

        wait_until(wait_processing)
        cancelled = http.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert http.get(f"/jobs/{job['id']}").json()["result"] is None
