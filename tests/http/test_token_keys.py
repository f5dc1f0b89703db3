"""Tokens bound to a concurrency key against real `jobhandler serve` processes, both stores
(docs/tenants.md, "Tokens bound to a tenant"): the key is the tenant. A bound token's jobs get
its key, another key is refused with nothing stored (one job, a batch, a workflow), and it sees
and steers only its key's jobs; other routes and the dashboard are closed to it.

`jobhandler token create --concurrency-key` and `token list` are run as the real command."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobhandler.service.tokens import Tokens
from jobhandler.settings import Settings
from jobhandler.store import open_store
from tests.conftest import Process, run_cli, test_env
from tests.http.test_auth import assert_problem, bearer, serve


def jobs_of(http: httpx.Client, token: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/jobs", params={"limit": 1000, **params}, headers=bearer(token))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def made_tokens(database_url: str, *specs: tuple[str, str, str | None]) -> list[str]:
    """Tokens made in this process (``token create`` itself is tested below): name, scope, key."""

    async def make() -> list[str]:
        store = open_store(Settings(database_url=database_url))
        await store.migrate()
        try:
            tokens = Tokens(store, time.time)
            return [(await tokens.create(scope, name, key))[1] for name, scope, key in specs]
        finally:
            await store.close()

    return asyncio.run(make())


@pytest.fixture
def served(spawn: Callable[..., Process], database_url: str) -> tuple[httpx.Client, dict[str, str]]:
    specs = [
        ("acme", "submit", "acme"),
        ("acme-admin", "admin", "acme"),
        ("globex", "submit", "globex"),
        ("admin", "admin", None),
    ]
    tokens = dict(zip([n for n, _, _ in specs], made_tokens(database_url, *specs), strict=True))
    server = serve(spawn, database_url, "--no-worker")
    return httpx.Client(base_url=server.url, timeout=30), tokens


def test_a_bound_tokens_jobs_get_its_key_and_another_key_is_refused(
    served: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, tokens = served
    acme = bearer(tokens["acme"])
    one = http.post("/jobs", json={"payload": "a", "delay": 3600}, headers=acme)
    assert one.status_code == 201 and one.json()["concurrency_key"] == "acme", one.text
    same = http.post("/jobs", json={"payload": "b", "concurrency_key": "acme"}, headers=acme)
    assert same.status_code == 201 and same.json()["concurrency_key"] == "acme", same.text
    other = {"payload": "c", "concurrency_key": "globex"}
    problem = assert_problem(http.post("/jobs", json=other, headers=acme), 403)
    assert "acme" in problem["detail"]
    batch = {"jobs": [{"payload": "d"}, {"payload": "e", "concurrency_key": "globex"}]}
    assert_problem(http.post("/jobs/batch", json=batch, headers=acme), 403)
    flow = [{"key": "x", "payload": "f"}, {"key": "y", "payload": "g", "concurrency_key": "zz"}]
    body = {"name": "refused", "jobs": flow}
    assert_problem(http.post("/workflows", json=body, headers=acme), 403)
    # Nothing of the refused submits was stored: the admin, of no tenant, sees every job.
    everything = jobs_of(http, tokens["admin"])
    assert sorted(j["payload"] for j in everything) == ["a", "b"]
    assert http.get("/workflows", headers=bearer(tokens["admin"])).json() == []

    batch = {"jobs": [{"payload": "h"}, {"payload": "i", "concurrency_key": "acme"}]}
    done = http.post("/jobs/batch", json=batch, headers=acme)
    assert done.status_code == 201, done.text
    assert [j["concurrency_key"] for j in done.json()["jobs"]] == ["acme", "acme"]
    flow = [{"key": "x", "payload": "j"}, {"key": "y", "payload": "k", "after": ["x"]}]
    made = http.post("/workflows", json={"name": "ok", "jobs": flow}, headers=acme)
    assert made.status_code == 201, made.text
    members = jobs_of(http, tokens["admin"], workflow_id=made.json()["id"])
    assert [j["concurrency_key"] for j in members] == ["acme", "acme"]
    # A token of no tenant names any key, or none.
    free = {"payload": "l", "concurrency_key": "globex"}
    assert http.post("/jobs", json=free, headers=bearer(tokens["admin"])).status_code == 201
    plain = http.post("/jobs", json={"payload": "m"}, headers=bearer(tokens["admin"]))
    assert plain.status_code == 201 and plain.json()["concurrency_key"] is None


def test_a_bound_token_sees_and_steers_only_its_keys_jobs(
    served: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, tokens = served
    later = {"payload": "x", "delay": 3600}
    mine = http.post("/jobs", json=later, headers=bearer(tokens["acme"])).json()
    theirs = http.post("/jobs", json=later, headers=bearer(tokens["globex"])).json()
    unkeyed = http.post("/jobs", json=later, headers=bearer(tokens["admin"])).json()
    ops = bearer(tokens["acme-admin"])
    assert [j["id"] for j in jobs_of(http, tokens["acme-admin"])] == [mine["id"]]
    assert jobs_of(http, tokens["acme-admin"], status="scheduled", queue="default") != []
    for other in (theirs["id"], unkeyed["id"]):
        for method, path in (
            ("GET", f"/jobs/{other}"),
            ("GET", f"/jobs/{other}?wait=1"),
            ("GET", f"/jobs/{other}/attempts"),
            ("GET", f"/jobs/{other}/events"),
            ("POST", f"/jobs/{other}/cancel"),
            ("POST", f"/jobs/{other}/retry"),
            ("DELETE", f"/jobs/{other}"),
        ):
            assert_problem(http.request(method, path, headers=ops), 404)
    # A submit token sees its own job, as every submit token does, and not another's.
    assert http.get(f"/jobs/{mine['id']}", headers=bearer(tokens["acme"])).status_code == 200
    assert_problem(http.get(f"/jobs/{theirs['id']}", headers=bearer(tokens["acme"])), 404)
    # Routes that show or steer every tenant are closed to a bound token, whatever its scope.
    for method, path, send in (
        ("GET", "/queues", {}),
        ("GET", "/workers", {}),
        ("GET", "/workflows", {}),
        ("GET", "/metrics", {}),
        ("GET", "/events", {}),
        ("POST", "/jobs/bulk/cancel", {"json": {}}),
        ("PATCH", "/queues/default", {"json": {"concurrency": 1}}),
    ):
        problem = assert_problem(http.request(method, path, headers=ops, **send), 403)
        assert "bound to a concurrency key" in problem["detail"]
    # Its own job it steers as any admin does; the others' jobs were left as they were.
    cancelled = http.post(f"/jobs/{mine['id']}/cancel", headers=ops)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert http.get(f"/jobs/{mine['id']}/attempts", headers=ops).status_code == 200
    assert http.delete(f"/jobs/{mine['id']}", headers=ops).status_code == 204
    left = {j["id"]: j["status"] for j in jobs_of(http, tokens["admin"])}
    assert left == {theirs["id"]: "scheduled", unkeyed["id"]: "scheduled"}
    # The dashboard shows every tenant: a bound token cannot sign in to it.
    login = http.post("/ui/login", data={"token": tokens["acme-admin"], "next": "/"})
    assert login.status_code == 401 and "concurrency key" in login.text
    assert "set-cookie" not in login.headers


def test_token_create_refuses_a_bad_key_and_stores_nothing(database_url: str) -> None:
    env = test_env(database_url)
    for key in ("", "a\udc80b"):  # every other bad key: tests/store/test_tokens_keys.py
        done = run_cli("token", "create", "--scope", "submit", "--concurrency-key", key, env=env)
        assert done.returncode != 0 and "error:" in done.stderr, done.stdout
    listed = run_cli("token", "list", "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_token_create_binds_a_key_and_token_list_shows_it(database_url: str) -> None:
    env = test_env(database_url)
    made = run_cli(
        "token",
        "create",
        "--scope",
        "submit",
        "--name",
        "t1",
        "--concurrency-key",
        "acme",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    assert "bound to key 'acme'" in made.stdout
    run_cli("token", "create", "--scope", "read", "--name", "t2", env=env)
    rows = json.loads(run_cli("token", "list", "-o", "json", env=env).stdout)
    assert {r["name"]: r["concurrency_key"] for r in rows} == {"t1": "acme", "t2": None}
    table = run_cli("token", "list", env=env).stdout.splitlines()
    assert "CONCURRENCY_KEY" in table[0]
    assert any(line.startswith("t1") and "acme" in line for line in table[1:])


def test_tenants_unique_keys_never_meet(served: tuple[httpx.Client, dict[str, str]]) -> None:
    """Unique keys are the store's: a tenant naming another's key neither gets that tenant's job
    back (a duplicate answers with its holder) nor debounces it (replacing its payload)."""
    http, tokens = served
    acme, globex = bearer(tokens["acme"]), bearer(tokens["globex"])
    daily = {"payload": "acme's", "unique_key": "daily", "delay": 3600}
    first = http.post("/jobs", json=daily, headers=acme)
    assert first.status_code == 201, first.text
    again = http.post("/jobs", json=daily, headers=acme)  # the tenant's own duplicate
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = http.post("/jobs", json={**daily, "payload": "globex's"}, headers=globex)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    typing = {"payload": "acme typed", "unique_key": "search", "debounce": 3600}
    typed = http.post("/jobs", json=typing, headers=acme).json()
    pushed = http.post("/jobs", json={**typing, "payload": "evil"}, headers=globex)
    assert pushed.status_code == 201 and pushed.json()["id"] != typed["id"]
    mine = http.get(f"/jobs/{typed['id']}", headers=acme).json()
    assert mine["payload"] == "acme typed" and mine["unique_key"] == "4:acme:search"


def test_a_bound_token_sees_and_cancels_only_its_keys_workflows(
    served: tuple[httpx.Client, dict[str, str]],
) -> None:
    http, tokens = served
    graph = [
        {"key": "a", "payload": "x", "delay": 3600},
        {"key": "b", "payload": "y", "after": ["a"]},
    ]

    def workflow(token: str, **job: Any) -> str:
        jobs = [{**graph[0], **job}, graph[1]]
        made = http.post("/workflows", json={"name": "w", "jobs": jobs}, headers=bearer(token))
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    mine, theirs = workflow(tokens["acme"]), workflow(tokens["globex"])
    mixed = workflow(tokens["admin"], concurrency_key="acme")  # one job of acme's, one of none
    ops = bearer(tokens["acme-admin"])
    assert http.get(f"/workflows/{mine}", headers=bearer(tokens["acme"])).status_code == 200
    for other in (theirs, mixed):
        assert_problem(http.get(f"/workflows/{other}", headers=ops), 404)
        assert_problem(http.post(f"/workflows/{other}/cancel", headers=ops), 404)
    cancelled = http.post(f"/workflows/{mine}/cancel", headers=ops)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    admin = bearer(tokens["admin"])
    statuses = {
        w: http.get(f"/workflows/{w}", headers=admin).json()["status"] for w in (theirs, mixed)
    }
    assert statuses == {theirs: "running", mixed: "running"}
