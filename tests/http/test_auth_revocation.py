"""Revoking tokens on a running `jobhandler serve`: a closed server never reopens, and streams
end when the token that opened them goes (issue 18, items 1 and 4).

Each test runs a real server on each store. Tokens are made straight in the store (a CLI run
costs a second of start-up each) and revoked with the real `jobhandler token revoke`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx

from jobhandler.model.tokens import new_token
from jobhandler.settings import Settings
from jobhandler.store import open_store
from tests.conftest import Process, Server, run_cli, test_env, wait_until
from tests.http.test_auth import AUTH_CACHE_DEADLINE, assert_problem, bearer, serve

# The log line a closed server writes when its last token goes.
REFUSES_EVERYONE = "now refuses every request"
# A stream learns of its token's revocation from the token cache (~1 s) at its next re-check
# (every 2 s): well within this.
STREAM_END_SECONDS = 6.0


def make_tokens(database_url: str, *scopes_and_names: tuple[str, str]) -> list[str]:
    """Store a token of each (scope, name); the tokens themselves, in order."""

    async def make() -> list[str]:
        store = open_store(Settings(database_url=database_url))
        try:
            await store.migrate()
            made = []
            for scope, name in scopes_and_names:
                info, token = new_token(scope, name, time.time())
                await store.add_token(info)
                made.append(token)
            return made
        finally:
            await store.close()

    return asyncio.run(make())


def revoke(database_url: str, name: str) -> None:
    done = run_cli("token", "revoke", name, env=test_env(database_url))
    assert done.returncode == 0, done.stderr


def wait_refused(http: httpx.Client, server: Server) -> None:
    """Until the server has seen the revocation: it refuses a tokenless request, and says so."""

    def refused() -> bool:
        return http.get("/jobs").status_code == 401 and REFUSES_EVERYONE in server.output()

    wait_until(refused, AUTH_CACHE_DEADLINE)


def assert_closed_to_everyone(http: httpx.Client, revoked_token: str) -> None:
    """Every route but the health checks is 401, with or without the revoked token."""
    for headers in ({}, bearer(revoked_token)):
        assert_problem(http.get("/jobs", headers=headers), 401)
        assert_problem(http.post("/jobs", json={"payload": "x"}, headers=headers), 401)
        assert_problem(http.post("/jobs/bulk/delete", json={}, headers=headers), 401)
        assert_problem(http.get("/tasks", headers=headers), 401)
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200


def assert_dashboard_refuses(http: httpx.Client, revoked_token: str) -> None:
    """The dashboard is not open either: its pages want a sign-in that no token passes."""
    page = http.get("/ui/jobs")
    assert page.status_code == 303 and "/login" in page.headers["location"]
    signed_in = http.post("/ui/login", data={"token": revoked_token})
    assert signed_in.status_code == 401
    assert "jobhandler_session" not in signed_in.headers.get("set-cookie", "")


def test_a_public_server_refuses_everyone_once_its_last_token_is_revoked(
    spawn: Callable[..., Process], database_url: str
) -> None:
    (token,) = make_tokens(database_url, ("admin", "only"))
    server = serve(spawn, database_url, "--host", "0.0.0.0", "--no-worker")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/jobs", headers=bearer(token)).status_code == 200
        revoke(database_url, "only")
        wait_refused(http, server)
        assert_closed_to_everyone(http, token)
        assert_dashboard_refuses(http, token)
        assert server.output().count(REFUSES_EVERYONE) == 1, server.output()
        # A new token opens the door to its holder only.
        (fresh,) = make_tokens(database_url, ("admin", "new"))
        wait_until(
            lambda: http.get("/jobs", headers=bearer(fresh)).status_code == 200,
            AUTH_CACHE_DEADLINE,
        )
        assert_problem(http.get("/jobs"), 401)


def test_a_loopback_server_closed_by_a_token_stays_closed(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = serve(spawn, database_url, "--no-worker")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/jobs").status_code == 200  # open: no token yet
        (token,) = make_tokens(database_url, ("read", "first"))
        wait_until(lambda: http.get("/jobs").status_code == 401, AUTH_CACHE_DEADLINE)
        revoke(database_url, "first")
        wait_refused(http, server)
        assert_closed_to_everyone(http, token)
        assert_dashboard_refuses(http, token)


def test_a_loopback_server_started_with_a_token_stays_closed(
    spawn: Callable[..., Process], database_url: str
) -> None:
    (token,) = make_tokens(database_url, ("admin", "at-start"))
    server = serve(spawn, database_url, "--no-worker")
    # Revoked before any request but the readiness probe: the server knew of it from its start.
    revoke(database_url, "at-start")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        wait_refused(http, server)
        assert_closed_to_everyone(http, token)


class Stream(threading.Thread):
    """Reads one server-sent event stream in the background until the server ends it."""

    def __init__(self, server: Server, path: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)  # a failed test must not hang on an endless stream
        self.url = server.url + path
        self.headers = headers
        self.opened = threading.Event()  # the server has subscribed it (its first line came)
        self.data: list[str] = []
        self.ended_at: float | None = None

    def run(self) -> None:
        timeout = httpx.Timeout(30, read=60)
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=timeout) as response:
                assert response.status_code == 200, response.read()
                for line in response.iter_lines():
                    self.opened.set()
                    if line.startswith("data:"):
                        self.data.append(line)
        except httpx.HTTPError:
            pass
        finally:
            self.ended_at = time.monotonic()
            self.opened.set()


def test_streams_end_when_their_token_is_revoked_and_others_go_on(
    spawn: Callable[..., Process], database_url: str
) -> None:
    leaving, staying = make_tokens(database_url, ("read", "leaving"), ("admin", "staying"))
    server = serve(spawn, database_url, "--no-worker")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = http.post("/jobs", json={"payload": "x"}, headers=bearer(staying)).json()
        signed_in = http.post("/ui/login", data={"token": leaving})
        assert signed_in.status_code == 303, signed_in.text
    cookie = {"Cookie": f"jobhandler_session={leaving}"}
    ending = [
        Stream(server, "/events", bearer(leaving)),
        Stream(server, f"/jobs/{job['id']}/events", bearer(leaving)),
        Stream(server, f"/ui/jobs/{job['id']}/events", cookie),
    ]
    going_on = Stream(server, "/events", bearer(staying))
    for stream in [*ending, going_on]:
        stream.start()
        assert stream.opened.wait(AUTH_CACHE_DEADLINE) and stream.ended_at is None
    revoke(database_url, "leaving")
    revoked_at = time.monotonic()
    wait_until(lambda: all(s.ended_at is not None for s in ending), 3 * STREAM_END_SECONDS)
    assert all(s.ended_at - revoked_at < STREAM_END_SECONDS for s in ending if s.ended_at)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        later = http.post("/jobs", json={"payload": "y"}, headers=bearer(staying)).json()
    wait_until(lambda: any(later["id"] in line for line in going_on.data), AUTH_CACHE_DEADLINE)
    assert going_on.ended_at is None
