"""Slow and idle clients cannot deny service: a real ``jobhandler serve`` on each store, raw
sockets for the clients that misbehave, httpx for the ones that do not."""

from __future__ import annotations

import asyncio
import json
import resource
import select
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx

from tests.conftest import Process, Server, test_env

DEADLINE = 20.0
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def serve(spawn: Callable[..., Process], database_url: str, *args: str, **settings: str) -> Server:
    # Variables rather than flags: a setting the server does not know is not an error.
    env = test_env(database_url, **{f"JOBHANDLER_{k.upper()}": v for k, v in settings.items()})
    proc = spawn(["serve", *args], env, server=True)
    assert isinstance(proc, Server)
    return proc.wait_ready()


def connect(server: Server) -> socket.socket:
    host, _, port = server.url.removeprefix("http://").partition(":")
    return socket.create_connection((host, int(port)), timeout=DEADLINE)


def read_until_closed(sock: socket.socket, deadline: float) -> bytes:
    """Everything the server sends until it closes the connection; fails past ``deadline``."""
    received = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open past the deadline, after {received!r}") from None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def test_a_head_not_sent_in_time_is_cut_off(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = serve(spawn, database_url, header_timeout="1")
    with connect(server) as silent:
        started = time.monotonic()
        assert read_until_closed(silent, started + 5) == b""  # nothing asked, nothing answered
        assert time.monotonic() - started >= 0.9

    with connect(server) as slow:
        started = time.monotonic()
        slow.sendall(HEAD)  # half a head, then a byte now and then: activity is not progress
        while time.monotonic() - started < 5:
            try:
                slow.sendall(b"X")
            except OSError:
                break  # closed under our feet: a cut too
            if select.select([slow], [], [], 0.2)[0]:
                break  # an answer, or the end
        answer = read_until_closed(slow, started + 5)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 4


def test_a_stalled_body_gets_408_within_the_body_timeout(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = serve(spawn, database_url, body_timeout="1")
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"task": "reverse",'
        )
        answer = read_until_closed(sock, started + 5)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"application/problem+json" in head
    assert "error" in json.loads(body)
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
        assert http.get("/jobs").json() == []  # the cut request stored nothing
    assert "Traceback" not in server.output()  # a client cut off is not a bug to log


@contextmanager
def file_limit(soft: int) -> Iterator[None]:
    """This process's soft limit on open files set to ``soft`` (children inherit it)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, before[1]), before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_idle_connections_cost_no_service(spawn: Callable[..., Process], database_url: str) -> None:
    with file_limit(1024):  # a common default: the server must raise its own to fit 1,050
        server = serve(spawn, database_url, header_timeout="60", demo_delay="0")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with file_limit(hard):
        idle = [connect(server) for _ in range(1050)]
        try:
            for half in idle[::2]:
                half.sendall(b"GET /heal")  # half of them have started a request, too
            with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
                assert http.get("/healthz").status_code == 200
                submit = {"task": "reverse", "payload": "abc"}
                # On PostgreSQL the store's new connections are past descriptor 1,023 here: the
                # pool's checkout check once used select(), and this answered 503 after 5 s.
                submitted = http.post("/jobs", json=submit)
                assert submitted.status_code == 201, submitted.text
                assert http.get("/jobs").status_code == 200
        finally:
            for sock in idle:
                sock.close()
    assert open_files_limit(server.pid) == hard  # raised at start to its hard limit


def open_files_limit(pid: int) -> int:
    """A process's soft limit on open files, as Linux shows it."""
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    return int(line.split()[3])


def test_event_streams_past_their_limit_get_503_and_the_others_stream(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = serve(spawn, database_url, max_streams="20", demo_delay="0")
    statuses, events = asyncio.run(burst_of_streams(server, 30))
    assert sorted(statuses) == [200] * 20 + [503] * 10
    assert events == 20  # every stream let in saw the job


async def burst_of_streams(server: Server, count: int) -> tuple[list[int], int]:
    """``count`` streams at once; once each has answered, a job, which the open ones see."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=DEADLINE, limits=limits) as http:
        opened: list[httpx.Response] = []
        statuses: list[int] = []

        async def open_stream() -> None:
            response = await http.send(http.build_request("GET", "/events"), stream=True)
            statuses.append(response.status_code)
            if response.status_code == 200:
                opened.append(response)
            else:
                problem = json.loads(await response.aread())
                assert problem["status"] == 503 and problem["error"], problem

        await asyncio.gather(*(open_stream() for _ in range(count)))
        assert (await http.get("/healthz")).status_code == 200  # streams take no request slot
        assert (await http.post("/jobs", json={"task": "reverse", "payload": "x"})).is_success

        async def sees_a_job(response: httpx.Response) -> bool:
            async for line in response.aiter_lines():
                if line == "event: job":
                    return True
            return False

        try:
            seen = await asyncio.wait_for(asyncio.gather(*map(sees_a_job, opened)), DEADLINE)
        finally:
            for response in opened:
                await response.aclose()
        return statuses, sum(seen)


def test_requests_past_the_limit_get_503_until_one_ends(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = serve(spawn, database_url, "--no-worker", max_connections="2")
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
        job = http.post("/jobs", json={"task": "reverse", "payload": "abc"}).json()

        async def two_waits() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=DEADLINE) as waiting:
                waits = [waiting.get(f"/jobs/{job['id']}", params={"wait": 3}) for _ in range(2)]
                return [response.status_code for response in await asyncio.gather(*waits)]

        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(asyncio.run, two_waits())  # two requests in progress, 3 s each
            refused = poll(lambda: http.get("/healthz"), until=lambda r: r.status_code == 503)
            assert refused.json()["error"] and refused.headers["retry-after"] == "1"
            assert held.result(DEADLINE) == [200, 200]  # those admitted were answered
        assert http.get("/healthz").status_code == 200  # and their slots are free again


def poll(
    call: Callable[[], httpx.Response], until: Callable[[httpx.Response], bool]
) -> httpx.Response:
    deadline = time.monotonic() + DEADLINE
    while not until(response := call()):
        assert time.monotonic() < deadline, response
        time.sleep(0.02)
    return response
