"""Access control against real `jobhandler serve` processes: tokens and scopes, CSRF, Host, CORS.

Tokens are made with the real `jobhandler token create` command; the token is its last line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jobhandler.client.clients import Client, ClientError
from tests.conftest import Process, Server, free_port, run_cli, test_env, wait_until

AUTH_CACHE_DEADLINE = 10.0  # a new or revoked token takes effect within ~1 s; poll up to this


jobhandler = run_cli


def make_token(database_url: str, scope: str, name: str | None = None) -> str:
    named = ["--name", name] if name else []
    done = jobhandler("token", "create", "--scope", scope, *named, env=test_env(database_url))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def serve(spawn: Callable[..., Process], database_url: str, *args: str, **env: str) -> Server:
    proc = spawn(["serve", *args], test_env(database_url, **env), server=True)
    assert isinstance(proc, Server)
    return proc.wait_ready()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["error"]
    return body


def submit(http: httpx.Client, token: str | None = None, **body: Any) -> httpx.Response:
    headers = bearer(token) if token else {}
    return http.post("/jobs", json={"payload": "abc", **body}, headers=headers)


# -- open until the first token ------------------------------------------------------------


def test_no_token_in_the_store_keeps_the_api_open(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = serve(spawn, database_url)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = submit(http, delay=3600).json()
        assert http.get("/jobs").status_code == 200
        assert http.get("/openapi.json").status_code == 200
        # The Go seed's body-less `curl -X POST .../cancel` still works.
        cancelled = http.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert http.delete(f"/jobs/{job['id']}").status_code == 204


# -- scopes --------------------------------------------------------------------------------


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/jobs", {}),
    ("GET", "/jobs/JOB", {}),
    ("POST", "/jobs", {"json": {"payload": "x"}}),
    ("POST", "/jobs/batch", {"json": {"jobs": [{"payload": "x"}]}}),
    ("POST", "/jobs/JOB/cancel", {}),
    ("POST", "/jobs/JOB/retry", {}),
    ("DELETE", "/jobs/JOB", {}),
    ("GET", "/tasks", {}),
    ("GET", "/queues", {}),
    ("GET", "/workers", {}),
    ("GET", "/openapi.json", {}),
    ("GET", "/docs", {}),
]


def test_every_route_but_health_needs_a_token_once_one_exists(
    spawn: Callable[..., Process], database_url: str
) -> None:
    make_token(database_url, "admin", "ops")
    server = serve(spawn, database_url, "--no-worker")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200
        for method, path, send in ROUTES:
            path = path.replace("JOB", "some-job")
            missing = http.request(method, path, **send)
            assert_problem(missing, 401)
            assert missing.headers["www-authenticate"].startswith("Bearer")
            for wrong in ("Bearer jh_not-a-token", "Basic b3BzOm9wcw==", "Bearer"):
                response = http.request(method, path, headers={"Authorization": wrong}, **send)
                assert_problem(response, 401)
        assert http.get("/openapi.json", headers=bearer("jh_nope")).status_code == 401


def test_each_scope_allows_what_it_says(spawn: Callable[..., Process], database_url: str) -> None:
    tokens = {scope: make_token(database_url, scope) for scope in ("read", "submit", "admin")}
    server = serve(spawn, database_url, "--no-worker")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = submit(http, tokens["submit"], delay=3600)
        assert created.status_code == 201
        job_id = created.json()["id"]

        def call(scope: str, method: str, path: str, send: dict[str, Any]) -> httpx.Response:
            path = path.replace("JOB", job_id)
            return http.request(method, path, headers=bearer(tokens[scope]), **send)

        allowed = {
            "submit": {("POST", "/jobs"), ("POST", "/jobs/batch"), ("GET", "/jobs/JOB")}
            | {("GET", "/tasks")},
            "read": {(m, p) for m, p, _ in ROUTES if m == "GET"},
        }
        for scope, may in allowed.items():
            for method, path, send in ROUTES:
                response = call(scope, method, path, send)
                if (method, path) in may:
                    assert response.status_code in (200, 201), (scope, method, path)
                else:
                    assert_problem(response, 403)
        assert call("read", "GET", "/jobs/JOB", {}).json()["status"] == "scheduled"
        # admin: everything, down to cancelling, retrying and deleting the job.
        for method, path, send in ROUTES:
            if (method, path) != ("DELETE", "/jobs/JOB"):
                assert call("admin", method, path, send).status_code in (200, 201), (method, path)
        assert call("admin", "POST", "/jobs/JOB/cancel", {}).status_code == 200
        assert call("admin", "DELETE", "/jobs/JOB", {}).status_code == 204


def test_tracebacks_only_for_read_scope_and_up(
    spawn: Callable[..., Process], database_url: str
) -> None:
    tokens = {scope: make_token(database_url, scope) for scope in ("read", "submit", "admin")}
    server = serve(spawn, database_url)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = submit(http, tokens["submit"], task="fail", payload="broken on purpose").json()
        path = f"/jobs/{job['id']}"
        seen = http.get(path, params={"wait": 20}, headers=bearer(tokens["submit"])).json()
        assert seen["status"] == "failed" and seen["error"] == "broken on purpose"
        assert seen["traceback"] is None
        for scope in ("read", "admin"):
            shown = http.get(path, headers=bearer(tokens[scope])).json()
            assert "PermanentFailure" in shown["traceback"]
            listed = http.get("/jobs", headers=bearer(tokens[scope])).json()
            assert "PermanentFailure" in listed[0]["traceback"]


# -- the token commands --------------------------------------------------------------------


def test_token_create_list_revoke_take_effect_on_a_running_server(
    spawn: Callable[..., Process], database_url: str
) -> None:
    env = test_env(database_url)
    server = serve(spawn, database_url, "--no-worker")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/jobs").status_code == 200  # open: no token yet
        token = make_token(database_url, "read", "dashboard")
        assert token.startswith("jh_") and len(token) > 40
        wait_until(lambda: http.get("/jobs").status_code == 401, AUTH_CACHE_DEADLINE)
        assert http.get("/jobs", headers=bearer(token)).status_code == 200

        listed = jobhandler("token", "list", "-o", "json", env=env)
        assert listed.returncode == 0, listed.stderr
        assert token not in listed.stdout
        (row,) = json.loads(listed.stdout)
        assert row["name"] == "dashboard" and row["scope"] == "read" and row["created_at"]

        def used() -> bool:
            rows = json.loads(jobhandler("token", "list", "-o", "json", env=env).stdout)
            return rows[0]["last_used_at"] is not None

        wait_until(used, AUTH_CACHE_DEADLINE)
        table = jobhandler("token", "list", env=env).stdout
        assert table.startswith("NAME") and "dashboard" in table and token not in table

        taken = jobhandler("token", "create", "--scope", "admin", "--name", "dashboard", env=env)
        assert taken.returncode == 2 and taken.stderr.count("\n") == 1
        assert "exists" in taken.stderr

        make_token(database_url, "admin", "keeps-it-closed")
        revoked = jobhandler("token", "revoke", "dashboard", env=env)
        assert revoked.returncode == 0, revoked.stderr
        wait_until(
            lambda: http.get("/jobs", headers=bearer(token)).status_code == 401,
            AUTH_CACHE_DEADLINE,
        )
        again = jobhandler("token", "revoke", "dashboard", env=env)
        assert again.returncode == 2
        assert again.stderr == "error: no token named 'dashboard'\n"


def test_cli_commands_and_client_send_the_token(
    spawn: Callable[..., Process], database_url: str
) -> None:
    token = make_token(database_url, "admin")
    server = serve(spawn, database_url)
    plain = {k: v for k, v in os.environ.items() if not k.startswith("JOBHANDLER_")}
    url = ["--url", server.url]

    refused = jobhandler("jobs", "list", *url, env=plain)
    assert refused.returncode == 2 and refused.stderr.startswith("error: an API token is required")
    assert refused.stderr.count("\n") == 1

    done = jobhandler("submit", "reverse", '"abc"', "--wait", *url, "--token", token, env=plain)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cba\n"
    with_env = {**plain, "JOBHANDLER_TOKEN": token}
    listed = jobhandler("jobs", "list", *url, "-o", "json", env=with_env)
    assert listed.returncode == 0, listed.stderr
    assert [j["result"] for j in json.loads(listed.stdout)] == ["cba"]
    assert jobhandler("tasks", *url, env=with_env).returncode == 0

    with Client(server.url, token=token) as client:
        job = client.submit("reverse", "xyz")
        assert client.wait(job.id, 20).result == "zyx"
    with Client(server.url) as anonymous, pytest.raises(ClientError) as refused_call:
        anonymous.submit("reverse", "xyz")
    assert refused_call.value.status == 401
    with Client(server.url, token="jh_wrong") as wrong, pytest.raises(ClientError) as bad:
        wrong.submit("reverse", "xyz")
    assert bad.value.status == 401


# -- browsers: content types, CSRF, DNS rebinding, CORS ------------------------------------


def test_bodies_that_change_state_must_be_json(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = len(http.get("/jobs").json())
        body = b'{"payload": "abc"}'
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            response = http.post("/jobs", content=body, headers={"Content-Type": content_type})
            assert_problem(response, 415)
        assert_problem(http.post("/jobs", content=body), 415)  # no Content-Type at all
        assert_problem(http.post("/jobs", data={"payload": "abc"}), 415)
        assert len(http.get("/jobs").json()) == before
        json_kinds = ("application/json; charset=utf-8", "application/problem+json")
        for content_type in json_kinds:
            ok = http.post("/jobs", content=body, headers={"Content-Type": content_type})
            assert ok.status_code == 201, ok.text


def test_cross_site_requests_cannot_change_state(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = http.post("/jobs", json={"payload": "abc", "delay": 3600}).json()
        cancel = f"/jobs/{job['id']}/cancel"
        for origin in ("http://evil.example", "null", "http://localhost.evil.example"):
            assert_problem(http.post(cancel, headers={"Origin": origin}), 403)
            refused = http.post("/jobs", json={"payload": "x"}, headers={"Origin": origin})
            assert_problem(refused, 403)
        assert http.get(f"/jobs/{job['id']}").json()["status"] == "scheduled"
        same = http.post(cancel, headers={"Origin": server.url})
        assert same.status_code == 200 and same.json()["status"] == "cancelled"
        # Reading is not a state change; CORS (off by default) keeps the answer from the page.
        read = http.get("/jobs", headers={"Origin": "http://evil.example"})
        assert read.status_code == 200
        assert "access-control-allow-origin" not in read.headers


def test_only_loopback_host_names_on_a_loopback_server(server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for host in ("evil.example", f"evil.example:{port}", "192.168.1.10", ""):
            assert_problem(http.get("/jobs", headers={"Host": host}), 400)
            posted = http.post("/jobs", json={"payload": "x"}, headers={"Host": host})
            assert_problem(posted, 400)
        for host in (f"localhost:{port}", "127.0.0.1", f"[::1]:{port}", "LOCALHOST"):
            assert http.get("/jobs", headers={"Host": host}).status_code == 200, host
        # Probes that address the server by IP or service name still get their answer.
        assert http.get("/healthz", headers={"Host": "evil.example"}).status_code == 200


def test_allowed_hosts_and_cors_origins_when_set(
    spawn: Callable[..., Process], sqlite_url: str
) -> None:
    app_origin = "https://app.example"
    server = serve(
        spawn,
        sqlite_url,
        "--allowed-hosts",
        "jobs.example,127.0.0.1",
        "--cors-origins",
        app_origin,
    )
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/jobs", headers={"Host": "jobs.example"}).status_code == 200
        assert_problem(http.get("/jobs", headers={"Host": "localhost"}), 400)

        preflight = http.options(
            "/jobs",
            headers={
                "Origin": app_origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == app_origin
        posted = http.post("/jobs", json={"payload": "x"}, headers={"Origin": app_origin})
        assert posted.status_code == 201
        assert posted.headers["access-control-allow-origin"] == app_origin
        other = http.get("/jobs", headers={"Origin": "https://other.example"})
        assert "access-control-allow-origin" not in other.headers
        assert_problem(
            http.post("/jobs", json={"payload": "x"}, headers={"Origin": "https://other.example"}),
            403,
        )


def test_no_cors_by_default(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        preflight = http.options(
            "/jobs",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers
        assert preflight.status_code >= 400


# -- binding beyond loopback ---------------------------------------------------------------


def test_network_bind_without_a_token_refuses_to_start(database_url: str) -> None:
    args = ("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    refused = jobhandler(*args, env=test_env(database_url))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: refusing to serve on 0.0.0.0")
    assert "--insecure-no-auth" in refused.stderr


def test_network_bind_starts_with_a_token_or_insecure_no_auth(
    spawn: Callable[..., Process], database_url: str
) -> None:
    insecure = serve(spawn, database_url, "--host", "0.0.0.0", "--insecure-no-auth")
    assert "no API token" in insecure.output()
    with httpx.Client(base_url=insecure.url, timeout=30) as http:
        assert http.get("/jobs").status_code == 200  # open, as asked, and any Host is answered
        assert http.get("/jobs", headers={"Host": "jobs.example"}).status_code == 200
    insecure.stop()

    token = make_token(database_url, "admin")
    guarded = serve(spawn, database_url, "--host", "0.0.0.0")
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        assert_problem(http.get("/jobs"), 401)
        assert http.get("/jobs", headers=bearer(token)).status_code == 200
