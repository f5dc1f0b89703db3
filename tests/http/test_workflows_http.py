"""Workflows over HTTP against a real `jobhandler serve`, on SQLite and PostgreSQL: the graph's
answer, every refusal storing nothing, 409 for a held key, lists and pages, cancel, the jobs'
own fields, hostile bodies, tokens; and a real worker process running a diamond to its end.

The cases of a store share one server with no worker (jobs stay waiting, queued or scheduled),
as tests/http/test_hostile.py does; each case uses its own names and queues.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Process, Server, free_port, test_env, wait_until
from tests.http.test_auth import bearer, make_token, serve
from tests.http.test_hostile import assert_problem, deep, module_url, raw
from tests.http.test_openapi import answer_conforms

__all__ = ["module_url"]  # the shared store fixture, one per module and kind


@pytest.fixture(scope="module")
def wf_server(module_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("workflows-log") / "serve.log"
    server = Server(["serve", "--no-worker"], test_env(module_url), log, free_port())
    try:
        yield server.wait_ready()
    finally:
        server.stop(timeout=10)


@pytest.fixture
def http(wf_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wf_server.url, timeout=60) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def diamond(queue: str, **root: Any) -> list[dict[str, Any]]:
    """a, then b and c, then d: the jobs of the graph every store test draws."""
    return [
        {"key": "a", "task": "reverse", "payload": "abc", "queue": queue, **root},
        {"key": "b", "payload": "b", "queue": queue, "after": ["a"]},
        {"key": "c", "payload": "c", "queue": queue, "after": ["a"]},
        {"key": "d", "payload": "d", "queue": queue, "after": ["b", "c"]},
    ]


def workflows_named(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    response = http.get("/workflows", params={"name": name})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def jobs_of_queue(http: httpx.Client, queue: str) -> list[dict[str, Any]]:
    response = http.get("/jobs", params={"queue": queue})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def test_a_diamond_answers_its_graph_and_its_jobs_carry_it(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    name, queue = unique("diamond"), unique("q")
    created = http.post("/workflows", json={"name": name, "jobs": diamond(queue)})
    assert created.status_code == 201, created.text
    answer_conforms(spec, created, "post", "/workflows")
    flow = created.json()
    assert created.headers["location"] == f"/workflows/{flow['id']}"
    assert (flow["name"], flow["status"]) == (name, "running")
    assert flow["created_at"].endswith("Z") and flow["cancelled_at"] is None
    shown = {job["key"]: (job["task"], job["status"], job["after"]) for job in flow["jobs"]}
    assert shown == {
        "a": ("reverse", "queued", []),
        "b": ("reverse", "waiting", ["a"]),
        "c": ("reverse", "waiting", ["a"]),
        "d": ("reverse", "waiting", ["b", "c"]),
    }
    assert flow["counts"] == {s: 0 for s in flow["counts"]} | {"queued": 1, "waiting": 3}
    got = http.get(f"/workflows/{flow['id']}")
    answer_conforms(spec, got, "get", "/workflows/{workflow_id}")
    assert got.json() == flow

    ids = {job["key"]: job["id"] for job in flow["jobs"]}
    d = http.get(f"/jobs/{ids['d']}").json()
    assert (d["workflow_id"], d["workflow_key"]) == (flow["id"], "d")
    assert sorted(d["after"]) == sorted([ids["b"], ids["c"]])
    members = http.get("/jobs", params={"workflow_id": flow["id"]}).json()
    assert sorted(j["id"] for j in members) == sorted(ids.values())
    waiting = http.get("/jobs", params={"status": "waiting", "queue": queue}).json()
    assert sorted(j["workflow_key"] for j in waiting) == ["b", "c", "d"]
    [counts] = [q["counts"] for q in http.get("/queues").json() if q["queue"] == queue]
    assert (counts["waiting"], counts["queued"]) == (3, 1)
    plain = http.post("/jobs", json={"payload": "x", "queue": queue}).json()
    assert (plain["workflow_id"], plain["workflow_key"], plain["after"]) == (None, None, None)
    assert http.get("/jobs", params={"workflow_id": unique("none")}).json() == []


# (jobs, status, the loc of the first error, words in it); each with nothing stored after.
REFUSED: dict[str, tuple[list[dict[str, Any]], list[Any], str]] = {
    "cycle": (
        [
            {"key": "a", "payload": "x", "after": ["c"]},
            {"key": "b", "payload": "x", "after": ["a"]},
            {"key": "c", "payload": "x", "after": ["b"]},
        ],
        ["jobs"],
        "cycle",
    ),
    "unknown key in after": (
        [{"key": "a", "payload": "x"}, {"key": "b", "payload": "x", "after": ["a", "zz"]}],
        ["jobs", 1, "after", 1],
        "no job has the key 'zz'",
    ),
    "after itself": (
        [{"key": "a", "payload": "x", "after": ["a"]}],
        ["jobs", 0, "after", 0],
        "itself",
    ),
    "duplicate key": (
        [{"key": "a", "payload": "x"}, {"key": "a", "payload": "y"}],
        ["jobs", 1, "key"],
        "twice",
    ),
    "unknown task": (
        [{"key": "a", "payload": "x"}, {"key": "b", "task": "nope", "payload": "x"}],
        ["jobs", 1, "task"],
        "unknown task",
    ),
    "bad payload": (
        [{"key": "a", "payload": 5}],
        ["jobs", 0, "payload"],
        "string",
    ),
    "no payload": ([{"key": "a"}], ["jobs", 0, "payload"], "required"),
    "no key": ([{"payload": "x"}], ["jobs", 0, "key"], "required"),
    "unique_for": (
        [{"key": "a", "payload": "x", "unique_key": "k", "unique_for": 60}],
        ["jobs", 0, "unique_for"],
        "unique_for",
    ),
    "bad on_parent_failure": (
        [{"key": "a", "payload": "x", "on_parent_failure": "ignore"}],
        ["jobs", 0, "on_parent_failure"],
        "cancel",
    ),
    "no jobs": ([], ["jobs"], "at least 1"),
    "unknown member": ([{"key": "a", "payload": "x", "color": 1}], ["jobs", 0, "color"], ""),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_graph_names_its_fields_and_stores_nothing(http: httpx.Client, case: str) -> None:
    jobs, loc, words = REFUSED[case]
    name, queue = unique("refused"), unique("q")
    body = {"name": name, "jobs": [{**job, "queue": queue} for job in jobs]}
    problem = assert_problem(http.post("/workflows", json=body), 422)
    assert problem["errors"][0]["loc"] == loc, problem
    assert words in problem["errors"][0]["msg"], problem
    assert workflows_named(http, name) == []
    assert jobs_of_queue(http, queue) == []


HOSTILE: dict[str, tuple[dict[str, Any], int, str]] = {
    "payload NaN": (raw('{"name":"h","jobs":[{"key":"a","payload":NaN}]}'), 400, "NaN"),
    "timeout Infinity": (
        raw('{"name":"h","jobs":[{"key":"a","payload":"x","timeout":Infinity}]}'),
        400,
        "Infinity",
    ),
    "timeout 1e400": (
        raw('{"name":"h","jobs":[{"key":"a","payload":"x","timeout":1e400}]}'),
        422,
        "timeout",
    ),
    "lone surrogate": (raw('{"name":"h","jobs":[{"key":"a","payload":"\\ud800"}]}'), 422, ""),
    "NUL in key": (raw('{"name":"h","jobs":[{"key":"a\\u0000","payload":"x"}]}'), 422, ""),
    "NUL in name": (raw('{"name":"h\\u0000","jobs":[{"key":"a","payload":"x"}]}'), 422, ""),
    "nested 100,000 deep": (raw(deep(100_000)), 422, "nests deeper"),
    "not JSON": (raw(b'{"name":'), 400, "not valid JSON"),
    "an array": (raw(b"[]"), 400, "JSON object"),
    "not JSON content": (
        {"content": b'{"name":"h","jobs":[]}', "headers": {"content-type": "text/plain"}},
        415,
        "",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_body_is_refused_and_stores_nothing(http: httpx.Client, case: str) -> None:
    before = len(http.get("/workflows", params={"limit": 1000}).json())
    send, status, words = HOSTILE[case]
    assert_problem(http.post("/workflows", **send), status, words)
    assert len(http.get("/workflows", params={"limit": 1000}).json()) == before


def test_a_held_unique_key_is_a_409_naming_its_holder(http: httpx.Client) -> None:
    key, name, queue = unique("key"), unique("held"), unique("q")
    holder = http.post("/jobs", json={"payload": "x", "unique_key": key, "delay": 3600}).json()
    jobs = [{"key": "a", "payload": "y", "queue": queue}, {**diamond(queue)[1], "unique_key": key}]
    problem = assert_problem(http.post("/workflows", json={"name": name, "jobs": jobs}), 409)
    assert problem["holders"] == {key: holder["id"]}
    assert workflows_named(http, name) == [] and jobs_of_queue(http, queue) == []


def test_unknown_workflows_are_404(http: httpx.Client) -> None:
    for missing in (str(uuid.uuid4()), "not a workflow id", "x" * 300):
        assert_problem(http.get(f"/workflows/{missing}"), 404)
        assert_problem(http.post(f"/workflows/{missing}/cancel"), 404)


def test_lists_filter_and_page_and_cancel_answers_the_workflow(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    name, queue = unique("paged"), unique("q")
    made = [
        http.post("/workflows", json={"name": name, "jobs": diamond(queue, delay=3600)}).json()
        for _ in range(3)
    ]
    first = http.get("/workflows", params={"name": name, "limit": 2})
    answer_conforms(spec, first, "get", "/workflows")
    assert [w["id"] for w in first.json()] == [made[2]["id"], made[1]["id"]]
    assert "jobs" not in first.json()[0] and first.json()[0]["counts"]["waiting"] == 3
    second = http.get(first.links["next"]["url"])
    assert [w["id"] for w in second.json()] == [made[0]["id"]] and "next" not in second.links

    cancelled = http.post(f"/workflows/{made[1]['id']}/cancel")
    answer_conforms(spec, cancelled, "post", "/workflows/{workflow_id}/cancel")
    flow = cancelled.json()
    assert flow["status"] == "cancelled" and flow["cancelled_at"] is not None
    assert {job["status"] for job in flow["jobs"]} == {"cancelled"}
    assert http.post(f"/workflows/{made[1]['id']}/cancel").json()["status"] == "cancelled"

    def ids(**params: Any) -> list[str]:
        return [w["id"] for w in http.get("/workflows", params={"name": name, **params}).json()]

    assert ids(status="cancelled") == [made[1]["id"]]
    assert ids(status="running") == [made[2]["id"], made[0]["id"]]
    assert ids(status=["running", "cancelled"]) == [w["id"] for w in reversed(made)]
    assert ids(status="completed") == []
    assert_problem(http.get("/workflows", params={"status": "waiting"}), 422)
    assert_problem(http.get("/workflows", params={"cursor": "nope"}), 400)
    assert_problem(http.get("/workflows", params={"name": "a\x00"}), 422)
    assert_problem(http.get("/workflows", params={"names": "x"}), 422)  # not a parameter
    assert_problem(http.get("/workflows", params={"limit": 0}), 422)


def test_a_real_worker_runs_a_diamond_to_its_end(
    http: httpx.Client, spawn: Callable[..., Process], module_url: str
) -> None:
    name, queue = unique("runs"), unique("q")
    flow = http.post("/workflows", json={"name": name, "jobs": diamond(queue)}).json()
    spawn(["worker", "--queues", queue], test_env(module_url))

    def finished() -> bool:
        return bool(http.get(f"/workflows/{flow['id']}").json()["status"] != "running")

    wait_until(finished, timeout=60)
    done = http.get(f"/workflows/{flow['id']}").json()
    assert done["status"] == "completed", done
    jobs = {j["workflow_key"]: j for j in http.get("/jobs", params={"queue": queue}).json()}
    assert jobs["a"]["result"] == "cba"
    assert jobs["d"]["started_at"] >= max(jobs["b"]["finished_at"], jobs["c"]["finished_at"])
    completed = http.get("/workflows", params={"status": "completed", "name": name}).json()
    assert [w["id"] for w in completed] == [flow["id"]]


def test_tokens_guard_workflows_as_they_guard_jobs(
    spawn: Callable[..., Process], database_url: str
) -> None:
    tokens = {scope: make_token(database_url, scope) for scope in ("read", "submit", "admin")}
    server = serve(spawn, database_url, "--no-worker")
    body = {"name": "guarded", "jobs": diamond("guarded", delay=3600)}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        routes = [
            ("POST", "/workflows", {"json": body}),
            ("GET", "/workflows", {}),
            ("GET", "/workflows/ID", {}),
            ("POST", "/workflows/ID/cancel", {}),
        ]
        for method, path, send in routes:
            assert_problem(http.request(method, path.replace("ID", "x"), **send), 401)
            wrong = bearer("jh_not-a-token")
            assert_problem(http.request(method, path.replace("ID", "x"), headers=wrong), 401)
        created = http.post("/workflows", json=body, headers=bearer(tokens["submit"]))
        assert created.status_code == 201, created.text
        path = f"/workflows/{created.json()['id']}"
        allowed = {
            "submit": {("POST", "/workflows"), ("GET", "/workflows/ID")},
            "read": {("GET", "/workflows"), ("GET", "/workflows/ID")},
            "admin": {(m, p) for m, p, _ in routes},
        }
        for scope, may in allowed.items():
            for method, route, send in routes:
                url = route.replace("/workflows/ID", path)
                response = http.request(method, url, headers=bearer(tokens[scope]), **send)
                if (method, route) in may:
                    assert response.status_code in (200, 201), (scope, method, route)
                else:
                    assert_problem(response, 403)
        assert http.get(path, headers=bearer(tokens["read"])).json()["status"] == "cancelled"
