"""Hostile and careless requests against a real `jobhandler serve`, on SQLite and PostgreSQL.

Each case asserts its status and problem JSON, that nothing was stored, and that `GET /jobs`
still answers 200. The cases of a store share one server (starting one per case would cost
minutes); they cannot disturb each other, since each one checks that it stored nothing.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import BaseModel

from jobhandler import App
from jobhandler.model.errors import InvalidOptions, InvalidPayload
from jobhandler.model.jobs import NewJob, new_job_id
from jobhandler.model.records import encode_cursor
from jobhandler.settings import Settings
from tests.conftest import (
    PG_ADMIN_URL,
    STORE_KINDS,
    Process,
    Server,
    _require_postgres,
    free_port,
    test_env,
)

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module", params=STORE_KINDS)
def module_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """As conftest's ``database_url``, but one store per module and kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'jobs.db'}"
        return
    _require_postgres()
    name = f"jh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def hostile_server(module_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("hostile-log") / "serve.log"
    server = Server(["serve"], test_env(module_url), log, free_port())
    try:
        yield server.wait_ready()
    finally:
        server.stop(timeout=10)


@pytest.fixture
def http(hostile_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostile_server.url, timeout=60) as client:
        yield client


def stored(http: httpx.Client) -> int:
    """How many jobs the store holds; also proves `GET /jobs` still answers 200."""
    response = http.get("/jobs", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return len(response.json())


def assert_problem(response: httpx.Response, status: int, contains: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["error"] == body["detail"]
    assert contains in body["error"], body["error"]
    assert "Traceback" not in response.text
    return body


def raw(text: str | bytes) -> dict[str, Any]:
    """A body sent byte for byte, so escapes such as \\ud800 and tokens such as NaN arrive."""
    return {"content": text.encode() if isinstance(text, str) else text, "headers": JSON}


def deep(levels: int) -> bytes:
    return b'{"payload":' + b"[" * levels + b"]" * levels + b"}"


# (request body, status, words in the error, the field the error names or None)
SUBMITS: dict[str, tuple[dict[str, Any], int, str, list[Any] | None]] = {
    "payload NaN": (raw('{"payload":NaN,"task":"flaky"}'), 400, "NaN", None),
    "payload -Infinity": (raw('{"payload":-Infinity,"task":"flaky"}'), 400, "Infinity", None),
    "timeout Infinity": (raw('{"payload":"x","timeout":Infinity}'), 400, "Infinity", None),
    "delay NaN": (raw('{"payload":"x","delay":NaN}'), 400, "NaN", None),
    "run_at NaN": (raw('{"payload":"x","run_at":NaN}'), 400, "NaN", None),
    "timeout 1e400": (raw('{"payload":"x","timeout":1e400}'), 422, "timeout", ["timeout"]),
    "run_at 1e12": (raw('{"payload":"x","run_at":1e12}'), 422, "2099", ["run_at"]),
    "run_at 1e308": (raw('{"payload":"x","run_at":1e308}'), 422, "2099", ["run_at"]),
    "run_at -1": (raw('{"payload":"x","run_at":-1}'), 422, "1970-01-01", ["run_at"]),
    "run_at year 0": (
        {"json": {"payload": "x", "run_at": "0000-01-01T00:00:00Z"}},
        422,
        "run_at",
        ["run_at"],
    ),
    "run_at year 10000": (
        {"json": {"payload": "x", "run_at": "10000-01-01T00:00:00Z"}},
        422,
        "run_at",
        ["run_at"],
    ),
    # Bounds hold for the instant, its offset applied: these are 2100-01-01T23:58:59Z and
    # 1969-12-31T10:00:00Z, though their dates are in range.
    "run_at -23:59 on 2099-12-31": (
        {"json": {"payload": "x", "run_at": "2099-12-31T23:59:59-23:59"}},
        422,
        "2100-01-01",
        ["run_at"],
    ),
    "run_at +14:00 on 1970-01-01": (
        {"json": {"payload": "x", "run_at": "1970-01-01T00:00:00+14:00"}},
        422,
        "1970-01-01",
        ["run_at"],
    ),
    "run_at true": ({"json": {"payload": "x", "run_at": True}}, 422, "boolean", ["run_at"]),
    "priority true": ({"json": {"payload": "x", "priority": True}}, 422, "boolean", ["priority"]),
    "max_attempts true": (
        {"json": {"payload": "x", "max_attempts": True}},
        422,
        "boolean",
        ["max_attempts"],
    ),
    "lone surrogate": (raw('{"payload":"\\ud800"}'), 422, "surrogate", ["payload"]),
    "NUL in payload": (raw('{"payload":"a\\u0000b"}'), 422, "NUL", ["payload"]),
    "NUL in queue": (raw('{"payload":"x","queue":"q\\u0000"}'), 422, "queue", ["queue"]),
    "NUL in task": (raw('{"payload":"x","task":"reverse\\u0000"}'), 422, "task", ["task"]),
    "long queue": ({"json": {"payload": "x", "queue": "q" * 101}}, 422, "queue", ["queue"]),
    "queue with a slash": ({"json": {"payload": "x", "queue": "a/b"}}, 422, "queue", ["queue"]),
    "nested 65 deep": (
        {"json": {"payload": json.loads("[" * 65 + "]" * 65)}},
        422,
        "64 levels",
        ["payload", *[0] * 64],
    ),
    "nested 1,000 deep": (raw(deep(1000)), 422, "nests deeper", []),
    "nested 100,000 deep": (raw(deep(100_000)), 422, "nests deeper", []),
    "not UTF-8": (raw(b'{"payload":"\xff\xfe"}'), 400, "not valid JSON", None),
    # A concurrency key (docs/tenants.md) is checked as unique_key is, before anything is stored.
    "NUL in concurrency_key": (
        raw('{"payload":"x","concurrency_key":"a\\u0000b"}'),
        422,
        "NUL",
        ["concurrency_key"],
    ),
    "lone surrogate in concurrency_key": (
        raw('{"payload":"x","concurrency_key":"\\ud800"}'),
        422,
        "concurrency_key",
        ["concurrency_key"],
    ),
    "long concurrency_key": (
        {"json": {"payload": "x", "concurrency_key": "k" * 256}},
        422,
        "255",
        ["concurrency_key"],
    ),
    "empty concurrency_key": (
        {"json": {"payload": "x", "concurrency_key": ""}},
        422,
        "concurrency_key",
        ["concurrency_key"],
    ),
    "concurrency_key a number": (
        {"json": {"payload": "x", "concurrency_key": 7}},
        422,
        "string",
        ["concurrency_key"],
    ),
    "concurrency_key a list": (
        {"json": {"payload": "x", "concurrency_key": ["a"]}},
        422,
        "string",
        ["concurrency_key"],
    ),
}


@pytest.mark.parametrize("case", list(SUBMITS))
def test_hostile_submit_is_refused_and_stores_nothing(http: httpx.Client, case: str) -> None:
    send, status, words, loc = SUBMITS[case]
    before = stored(http)
    body = assert_problem(http.post("/jobs", **send), status, words)
    if loc is not None:
        assert body["errors"][0]["loc"][: len(loc)] == loc
    assert stored(http) == before


def test_the_same_case_in_a_batch_refuses_the_whole_batch(http: httpx.Client) -> None:
    before = stored(http)
    good = [f'{{"payload":"job {i}","delay":3600}}' for i in range(999)]
    bad_ones = (
        '{"payload":"x","run_at":1e12}',
        '{"payload":"\\ud800"}',
        '{"payload":"\\u0000"}',
        '{"payload":"x","concurrency_key":"\\ud800"}',
        '{"payload":"x","concurrency_key":"\\u0000"}',
    )
    for bad in bad_ones:
        body = raw('{"jobs":[' + ",".join([*good, bad]) + "]}")
        problem = assert_problem(http.post("/jobs/batch", **body), 422, "nothing was stored")
        assert [e["loc"][:2] for e in problem["errors"]] == [["jobs", 999]]
        assert stored(http) == before
    assert_problem(http.post("/jobs/batch", **raw('{"jobs":[{"payload":NaN}]}')), 400, "NaN")
    assert stored(http) == before


def test_offsets_move_run_at_within_its_bounds_and_the_edges_are_taken(
    http: httpx.Client,
) -> None:
    before = stored(http)
    for edge, utc in (
        ("1970-01-01T14:00:00+14:00", "1970-01-01T00:00:00"),
        ("2099-12-31T22:59:59-01:00", "2099-12-31T23:59:59"),
    ):
        created = http.post("/jobs", json={"payload": "x", "run_at": edge})
        assert created.status_code == 201, created.text
        assert created.json()["run_at"].startswith(utc)
    before += 2
    late = {"payload": "x", "run_at": "2099-12-31T23:59:59-23:59"}
    body = raw(json.dumps({"jobs": [{"payload": "x", "delay": 3600}, late]}))
    problem = assert_problem(http.post("/jobs/batch", **body), 422, "nothing was stored")
    assert [e["loc"] for e in problem["errors"]] == [["jobs", 1, "run_at"]]
    early = {"created_before": "1970-01-01T00:00:00+14:00"}
    assert_problem(http.post("/jobs/bulk/cancel", json=early), 422, "created_before")
    assert stored(http) == before


def test_a_batch_with_an_unknown_member_is_refused_naming_it(http: httpx.Client) -> None:
    before = stored(http)
    extras: list[dict[str, Any]] = [{"jobz": []}, {"priority": 5}]
    for extra in extras:
        body = {"jobs": [{"payload": "x", "delay": 3600}], **extra}
        problem = assert_problem(http.post("/jobs/batch", json=body), 422, next(iter(extra)))
        assert problem["errors"][0]["loc"] == [next(iter(extra))]
    assert stored(http) == before


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/jobs?cursor=12345678901234567890", 400, "invalid cursor"),
        (f"/jobs?cursor={encode_cursor(10**19)}", 400, "invalid cursor"),
        (f"/jobs?cursor={encode_cursor(2**63)}", 400, "invalid cursor"),
        ("/jobs?queue=a%00", 422, "NUL"),
        ("/jobs?queue=" + "q" * 201, 422, "200"),
        ("/jobs/%00", 404, "job not found"),
        ("/jobs/%ED%A0%80", 404, "job not found"),
        ("/jobs/" + "a" * 5000, 404, "job not found"),
        ("/jobs/%00/cancel", 404, "job not found"),
    ],
)
def test_hostile_reads_are_4xx(http: httpx.Client, path: str, status: int, words: str) -> None:
    before = stored(http)
    method = "POST" if path.endswith("/cancel") else "GET"
    assert_problem(http.request(method, path), status, words)
    assert stored(http) == before


def test_bad_ids_are_not_found_for_every_action(http: httpx.Client) -> None:
    for method, path in (
        ("POST", "/jobs/%00/retry"),
        ("DELETE", "/jobs/%00"),
        ("GET", "/jobs/a%00b?wait=1"),
    ):
        assert_problem(http.request(method, path), 404, "job not found")


def test_largest_cursor_still_reads(http: httpx.Client) -> None:
    assert http.get("/jobs", params={"cursor": encode_cursor(2**63 - 1)}).status_code == 200


def test_405_names_every_allowed_method(http: httpx.Client) -> None:
    response = http.put("/jobs")
    assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


def test_good_and_bad_submits_in_flight_together(http: httpx.Client) -> None:
    """The issue's poison test over HTTP: 40 good submits with bad ones in between."""

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(http.base_url), timeout=60) as client:
            sends = [
                client.post("/jobs", json={"payload": f"good {i}", "delay": 3600})
                for i in range(40)
            ]
            for body in (
                '{"payload":"\\ud800"}',
                '{"payload":"x","run_at":NaN}',
                '{"payload":"\\u0000"}',
            ):
                sends.insert(len(sends) // 2, client.post("/jobs", **raw(body)))
            return await asyncio.gather(*sends)

    before = stored(http)
    responses = asyncio.run(run())
    assert sorted(r.status_code for r in responses) == [201] * 40 + [400, 422, 422]
    assert stored(http) == before + 40


class Shape(BaseModel):
    side: float


async def test_python_api_refuses_nan_in_a_model_as_http_does(database_url: str) -> None:
    app = App()

    @app.task
    async def area(shape: Shape) -> float:
        return shape.side**2

    @app.task
    async def record(payload: dict[str, Any]) -> None:
        return None

    async with app.connected(Settings(database_url=database_url)):
        with pytest.raises(InvalidPayload) as caught:
            await area.enqueue(Shape(side=math.nan))
        assert caught.value.errors[0]["loc"] == ["payload", "side"]
        assert caught.value.errors[0]["type"] == "finite_number"
        with pytest.raises(InvalidPayload):
            await area.enqueue_many([Shape(side=1), {"side": math.inf}])
        for bad_key in ("k\x00", "\ud800"):  # keys are text too, kept as sent under dict
            with pytest.raises(InvalidPayload) as caught:
                await record.enqueue({"a": {bad_key: 1}})
            assert caught.value.errors[0]["loc"] == ["payload", "a"]
        assert (await app.service.jobs.page()).jobs == []
        assert (await area.enqueue(Shape(side=2))).payload == {"side": 2.0}


async def test_python_enqueue_checks_run_at_after_its_offset(database_url: str) -> None:
    app = App()

    @app.task
    async def noop(payload: int) -> None:
        return None

    late = datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=23, minutes=59)))
    early = datetime(1970, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    async with app.connected(Settings(database_url=database_url)):
        for when in (late, early, late.isoformat()):
            with pytest.raises(InvalidOptions) as caught:
                await noop.enqueue(1, run_at=when)  # type: ignore[arg-type]  # text too
            assert caught.value.errors[0]["loc"] == ["run_at"]
        assert (await app.service.jobs.page()).jobs == []
        edge = datetime(1970, 1, 1, 14, tzinfo=timezone(timedelta(hours=14)))
        assert (await noop.enqueue(1, run_at=edge)).run_at == 0.0


async def test_group_commit_isolates_rows_that_fail_at_write_time(database_url: str) -> None:
    """Past validation (NewJob built by hand), a row the store refuses fails only itself."""
    app = App()

    @app.task
    async def echo(payload: str) -> str:
        return payload

    def job(payload: str, job_id: str | None = None) -> NewJob:
        return NewJob(job_id or new_job_id(), "echo", "default", payload, 0, 3, None, 0.0)

    async with app.connected(Settings(database_url=database_url)):
        taken = (await app.service.submits.insert([job("first")]))[0].id
        # Bad rows: a lone surrogate (neither store can encode it) and an id already taken.
        bad = [job("\ud800"), job("dup", taken), job("\ud800"), job("dup", taken)]
        good = [job(f"good {i}") for i in range(40)]
        mixed = [*good[:10], bad[0], *good[10:20], bad[1], *good[20:30], bad[2], *good[30:], bad[3]]
        results = await asyncio.gather(
            *(app.service.submits.insert([j]) for j in mixed), return_exceptions=True
        )
        failed = [
            j.payload for j, r in zip(mixed, results, strict=True) if isinstance(r, Exception)
        ]
        assert sorted(failed) == sorted(j.payload for j in bad)
        page = await app.service.jobs.page(limit=1000)
        assert sorted(j.payload for j in page.jobs) == sorted(["first", *(j.payload for j in good)])


async def test_an_unexpected_error_is_a_bare_problem_500(database_url: str) -> None:
    """A bug's details (here a path and SQL in its message) go to the log, not the client."""
    from jobhandler.http.api import create_app

    async def broken() -> Any:
        raise RuntimeError("SELECT * FROM jobs in /srv/secret/jobs.db")

    app = App(default_task="echo")

    @app.task
    async def echo(payload: str) -> str:
        return payload

    async with app.connected(Settings(database_url=database_url)):
        vars(app.service.flow)["queue_stats"] = broken  # a bug behind GET /queues
        transport = httpx.ASGITransport(create_app(app), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.get("/queues")
            body = assert_problem(response, 500, "internal error")
            assert body["error"] == "internal error"
            assert "secret" not in response.text and "SELECT" not in response.text
            assert (await client.get("/jobs")).status_code == 200


def test_the_description_declares_every_error_as_problem_json(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            codes = {int(code) for code in operation["responses"]}
            assert {400, 500} <= codes, (method, path)
            if path not in ("/healthz", "/readyz"):
                assert {401, 403} <= codes, (method, path)
            for code in codes - {200, 201, 202, 204}:
                content = operation["responses"][str(code)]["content"]
                assert list(content) == ["application/problem+json"], (method, path, code)
            assert operation.get("operationId"), (method, path)
    links = spec["paths"]["/jobs"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "getJob",
        "cancelJob",
        "retryJob",
        "deleteJob",
        "pauseQueue",
        "resumeQueue",
        "updateQueue",
    }


def test_a_result_or_progress_that_is_not_json_fails_the_run_clearly(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = spawn(["serve", "--app", "fuzzapp:app"], test_env(database_url), server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        # 1e308 * 2 is infinite: the task returns a value JSON cannot hold.
        for body, where in (
            ({"task": "double", "payload": 1e308}, "result"),
            ({"task": "bad_progress", "payload": None}, "progress.done"),
        ):
            job = client.post("/jobs", json=body).json()
            done = client.get(f"/jobs/{job['id']}", params={"wait": 30}).json()
            assert done["status"] == "failed", done
            assert "not storable JSON" in done["error"] and where in done["error"]
            assert done["result"] is None
            assert stored(client) >= 1  # every job still reads back
