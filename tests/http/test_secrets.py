"""Secrets stay secret: task code never sees the store URL or tokens, and nothing the API shows
or a process logs carries a password; task text no store can hold fails only its own job; the
SQLite files are private to their owner."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from jobhandler.model.redact import clean, redact
from tests.conftest import PG_ADMIN_URL, Process, Server, run_cli, test_env, wait_until

PASSWORD = "s3cret"
TOKEN = "jh-test-token-not-for-task-code"
SECRET_VARIABLES = ("JOBHANDLER_DATABASE_URL", "JOBHANDLER_TOKEN", "JOBHANDLER_SETTINGS_JSON")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://postgres:s3cret@127.0.0.1:5432/db", "postgresql://postgres:***@127.0.0.1:5432/db"),
        ("at postgres://u:p@ss@h/db, or redis://:pw@h", "at postgres://u:***@h/db, or redis://:***@h"),
        ("host=h password=s3cret user=u", "host=h password=*** user=u"),
        ("host=h PASSWORD = 'a b\\'c' user=u", "host=h PASSWORD = '***' user=u"),
        ("postgresql://h/db?password=s3cret&sslmode=require", "postgresql://h/db?password=***&sslmode=require"),
        ("postgresql://postgres@127.0.0.1/db", "postgresql://postgres@127.0.0.1/db"),
        ("http://127.0.0.1:8080/jobs/abc", "http://127.0.0.1:8080/jobs/abc"),
    ],
)  # fmt: skip
def test_redact_hides_passwords_in_urls_and_libpq_strings(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_clean_makes_text_storable() -> None:
    assert clean("a\x00b\ud800c\udfffd") == "a\ufffdb\ufffdc\ufffdd"
    assert clean("naïve ✓ 😀") == "naïve ✓ 😀"


# -- a real server on a PostgreSQL URL with a password ------------------------------------------


@pytest.fixture
def secret_url(pg_database_url: str) -> str:
    """The test database's URL with a password in it (trust auth ignores it)."""
    assert "postgres@" in pg_database_url
    return pg_database_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def secret_env(url: str, **extra: str) -> dict[str, str]:
    return test_env(
        url,
        JOBHANDLER_APP="secretsapp:app",
        JOBHANDLER_TOKEN=TOKEN,
        SECRETSAPP_MARKER="visible",
        **extra,
    )


def start(spawn: Callable[..., Process], args: list[str], env: dict[str, str]) -> Server:
    proc = spawn(args, env, server=True)
    assert isinstance(proc, Server)
    return proc.wait_ready()


@pytest.fixture
def http_for() -> Iterator[Callable[[Server], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(server: Server) -> httpx.Client:
        clients.append(httpx.Client(base_url=server.url, timeout=30))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def run_jobs(http: httpx.Client, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = http.post("/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 201, response.text
    done = []
    for job in response.json()["jobs"]:
        finished = http.get(f"/jobs/{job['id']}", params={"wait": 30}).json()
        assert finished["status"] in ("completed", "failed"), finished
        done.append(finished)
    return done


def assert_no_secret_in(environ: dict[str, str], url: str) -> None:
    assert environ["SECRETSAPP_MARKER"] == "visible"  # it is the real environment
    for name in SECRET_VARIABLES:
        assert name not in environ
    for value in environ.values():
        assert PASSWORD not in value and url not in value and TOKEN not in value


def test_task_code_under_serve_sees_no_store_url_or_token(
    secret_url: str, spawn: Callable[..., Process], http_for: Callable[[Server], httpx.Client]
) -> None:
    server = start(spawn, ["serve"], secret_env(secret_url))
    jobs = [{"task": "environ", "payload": None}, {"task": "environ_in_child", "payload": None}]
    for job in run_jobs(http_for(server), jobs):
        assert job["status"] == "completed", job
        assert_no_secret_in(job["result"], secret_url)


def test_task_code_under_supervised_workers_sees_no_store_url_or_token(
    secret_url: str, spawn: Callable[..., Process], http_for: Callable[[Server], httpx.Client]
) -> None:
    env = secret_env(secret_url)
    server = start(spawn, ["serve", "--no-worker"], env)
    workers = spawn(["worker", "--processes", "2"], env)
    jobs = [{"task": "environ", "payload": None}, {"task": "environ_in_child", "payload": None}]
    done = run_jobs(http_for(server), jobs * 2)
    for job in done:
        assert job["status"] == "completed", job
        assert_no_secret_in(job["result"], secret_url)
    assert PASSWORD not in workers.output()


@pytest.mark.parametrize("task", ["fail_with", "fail_with_in_child"])
def test_errors_and_tracebacks_show_no_password(
    secret_url: str,
    spawn: Callable[..., Process],
    http_for: Callable[[Server], httpx.Client],
    task: str,
) -> None:
    server = start(spawn, ["serve"], secret_env(secret_url))
    http = http_for(server)
    messages = [f"cannot reach {secret_url}", f"host=127.0.0.1 password={PASSWORD} user=postgres"]
    done = run_jobs(http, [{"task": task, "payload": m} for m in messages])
    for job in done:
        assert job["status"] == "failed"
        assert "***" in job["error"] and "***" in job["traceback"]
        assert "RuntimeError" in job["traceback"]  # the traceback is there, only redacted
        assert PASSWORD not in job["error"] and PASSWORD not in job["traceback"]
    listed = http.get("/jobs")
    assert listed.status_code == 200
    assert PASSWORD not in "".join(str(j["error"]) + str(j["traceback"]) for j in listed.json())


@pytest.mark.parametrize("task", ["log_it", "log_it_in_child"])
def test_log_lines_show_no_password(
    secret_url: str,
    spawn: Callable[..., Process],
    http_for: Callable[[Server], httpx.Client],
    task: str,
) -> None:
    server = start(spawn, ["serve"], secret_env(secret_url, JOBHANDLER_LOG_LEVEL="debug"))
    (job,) = run_jobs(http_for(server), [{"task": task, "payload": secret_url}])
    assert job["status"] == "completed"
    shown = secret_url.replace(PASSWORD, "***")
    wait_until(lambda: "giving up" in server.output() and "ConnectionError" in server.output())
    output = server.output()
    assert f"connecting to {shown}" in output and f"could not reach {shown}" in output
    assert PASSWORD not in output


def test_store_unavailable_answers_503_without_the_password(
    secret_url: str, spawn: Callable[..., Process], http_for: Callable[[Server], httpx.Client]
) -> None:
    server = start(spawn, ["serve", "--no-worker"], secret_env(secret_url))
    http = http_for(server)
    assert http.get("/jobs").status_code == 200
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {secret_url.rsplit('/', 1)[1]} WITH (FORCE)")
    response = http.get("/jobs")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "store unavailable" in response.json()["error"]
    assert PASSWORD not in response.text
    assert PASSWORD not in server.output()


# -- every log line, on both stores ----------------------------------------------------------------

QUERY_SECRET = "jh-query-secret-4k2p"
LEAKS = {  # each form a secret can take in a message, and the secret in it
    "{'password': 'pw-repr'}": "pw-repr",
    '{"password": "pw-json"}': "pw-json",
    "PGPASSWORD=pw-env": "pw-env",
    "APP_API_TOKEN=pw-token": "pw-token",
    "postgresql://u:pw/slash@h/db": "pw/slash",
}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_access_log_shows_no_query_value(
    database_url: str,
    spawn: Callable[..., Process],
    http_for: Callable[[Server], httpx.Client],
    log_format: str,
) -> None:
    env = test_env(database_url, JOBHANDLER_LOG_FORMAT=log_format)
    created = run_cli("token", "create", "--scope", "admin", env=env)
    assert created.returncode == 0, created.stderr
    server = start(spawn, ["serve", "--no-worker"], env)
    refused = http_for(server).get("/jobs", params={"token": QUERY_SECRET, "status": "failed"})
    assert refused.status_code == 401
    wait_until(lambda: "GET /jobs?" in server.output())
    output = server.output()
    assert "/jobs?token=***&status=***" in output
    assert QUERY_SECRET not in output


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_hide_every_form_of_secret(
    database_url: str,
    spawn: Callable[..., Process],
    http_for: Callable[[Server], httpx.Client],
    log_format: str,
) -> None:
    env = test_env(database_url, JOBHANDLER_APP="secretsapp:app", JOBHANDLER_LOG_FORMAT=log_format)
    server = start(spawn, ["serve"], env)
    message = " ".join(LEAKS)
    jobs = [{"task": task, "payload": message} for task in ("log_it", "log_it_in_child")]
    for job in run_jobs(http_for(server), jobs):
        assert job["status"] == "completed", job

    def logged() -> bool:
        output = server.output()
        return output.count("giving up") == 2 and output.count("ConnectionError") >= 2

    wait_until(logged)
    output = server.output()
    assert "PGPASSWORD=***" in output
    for secret in LEAKS.values():
        assert secret not in output, secret


# -- environment blocks: what the kernel shows of a process's environment --------------------------


def with_password(url: str) -> str:
    """A PostgreSQL URL with a password in it (trust auth ignores it); a SQLite URL as it is."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1) if "postgres@" in url else url


@pytest.mark.parametrize("command", [["serve"], ["worker", "--processes", "2"]])
def test_no_environment_block_task_code_can_read_holds_the_store_url(
    database_url: str,
    spawn: Callable[..., Process],
    http_for: Callable[[Server], httpx.Client],
    command: list[str],
) -> None:
    url = with_password(database_url)
    env = secret_env(url)
    if command == ["serve"]:
        server = start(spawn, command, env)
    else:
        server = start(spawn, ["serve", "--no-worker"], env)
        spawn(command, env)
    jobs = [
        {"task": "environment_blocks", "payload": None},
        {"task": "environment_blocks_in_child", "payload": None},
    ]
    for job in run_jobs(http_for(server), jobs * 2):
        assert job["status"] == "completed", job
        blocks = job["result"]
        assert "SECRETSAPP_MARKER=visible" in blocks["self"] + blocks["env"]  # the real ones
        for where, block in blocks.items():
            for secret in (url, PASSWORD, TOKEN, *SECRET_VARIABLES):
                assert secret not in block, (job["task"], where, secret)


# -- text no store can hold ------------------------------------------------------------------------


def test_unstorable_error_text_fails_only_its_own_job(
    database_url: str, spawn: Callable[..., Process], http_for: Callable[[Server], httpx.Client]
) -> None:
    server = start(spawn, ["serve"], test_env(database_url, JOBHANDLER_APP="secretsapp:app"))
    http = http_for(server)
    bad = [
        {"task": task, "payload": kind}
        for task in ("fail_unstorable", "fail_unstorable_permanently")
        for kind in ("nul", "surrogate")
    ]
    good = [{"task": "ok", "payload": i} for i in range(20)]
    # One batch, so the bad outcomes are written in the same completion batches as good ones.
    done = run_jobs(http, bad + good)
    for job in done[: len(bad)]:
        assert job["status"] == "failed", job
        assert job["error"].endswith(("bad\ufffdbyte", "bad\ufffdhalf")), job["error"]
    assert [job["result"] for job in done[len(bad) :]] == list(range(20))
    listed = http.get("/jobs", params={"limit": 1000})
    assert listed.status_code == 200 and len(listed.json()) == len(bad) + len(good)


# -- SQLite files ----------------------------------------------------------------------------------


def file_modes(db: Path) -> dict[str, int]:
    return {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
        if p.exists()
    }


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_sqlite_files_are_created_0600_whatever_the_umask(
    spawn: Callable[..., Process],
    http_for: Callable[[Server], httpx.Client],
    tmp_path: Path,
    umask: int,
) -> None:
    db = tmp_path / "private.db"
    previous = os.umask(umask)  # the server inherits it
    try:
        server = start(spawn, ["serve"], test_env(f"sqlite:///{db}"))
    finally:
        os.umask(previous)
    http = http_for(server)
    job = http.post("/jobs", json={"payload": "abc"}).json()
    assert http.get(f"/jobs/{job['id']}", params={"wait": 10}).json()["status"] == "completed"
    modes = file_modes(db)
    assert set(modes) == {"private.db", "private.db-wal", "private.db-shm"}
    assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}


def test_an_existing_sqlite_file_keeps_its_mode(
    spawn: Callable[..., Process], http_for: Callable[[Server], httpx.Client], tmp_path: Path
) -> None:
    db = tmp_path / "shared.db"
    db.touch()
    db.chmod(0o640)  # its owner chose to share it with a group: not ours to change
    server = start(spawn, ["serve"], test_env(f"sqlite:///{db}"))
    assert http_for(server).get("/jobs").status_code == 200
    wait_until(lambda: Path(f"{db}-shm").exists(), timeout=10)
    assert set(file_modes(db).values()) == {0o640}
