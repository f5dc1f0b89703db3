"""Client and AsyncClient resend a request that met a closed connection, when that is safe.

The server of most tests is a real socket server (a thread of this process) speaking just enough
HTTP/1.1: it answers the first request of a kept-alive connection, then reads the next request on
it and closes the connection without answering, as a server whose keep-alive timeout fires while
the client sends makes it do; every later connection is answered normally. It counts what it
read, so "sent exactly once" is what the server saw, not what the client claims. The last test
puts a proxy in front of a real ``jobhandler serve`` that loses the answer to the first submit
after the server stored the job.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobhandler import AsyncClient, Client, ServerUnreachable
from jobhandler.client import Call, Calls
from tests.conftest import Process, test_env
from tests.conftest import Server as ServerProcess

ANSWER = {"ok": True}


@dataclass
class Script:
    """What the server read, and how it closes the cut-off connection."""

    reset: bool  # an RST (the client reads ECONNRESET: ReadError) or a FIN (no answer at all)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, key
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.requests if (m, p) == (method, path))


@dataclass
class Message:
    """One HTTP/1.1 request or answer, as read: its first line, headers and every byte."""

    first_line: str
    headers: dict[str, str]
    raw: bytes


def read_message(stream: Any) -> Message | None:
    """The next message on ``stream`` (its body sized by Content-Length), None at its end."""
    raw = line = stream.readline()
    if not line:
        return None
    headers: dict[str, str] = {}
    while (header := stream.readline()) not in (b"\r\n", b""):
        raw += header
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    raw += b"\r\n" + stream.read(int(headers.get("content-length", "0")))
    return Message(line.decode().strip(), headers, raw)


def cut_off(connection: socket.socket, reset: bool) -> None:
    """Close without answering: with an RST (the client reads ECONNRESET), or a FIN."""
    if reset:  # linger 0: close() sends an RST
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class Handler(socketserver.StreamRequestHandler):
    server: CuttingServer

    def handle(self) -> None:
        script = self.server.script
        with script.lock:
            script.connections += 1
            first_connection = script.connections == 1
        answered = 0
        while (request := read_message(self.rfile)) is not None:
            method, path, _ = request.first_line.split(" ")
            with script.lock:
                script.requests.append((method, path, request.headers.get("idempotency-key")))
            if first_connection and answered == 1:
                cut_off(self.connection, script.reset)
                return
            body = json.dumps(ANSWER).encode()
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            self.wfile.write(head.encode() + body)
            answered += 1


class CuttingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(params=[False, True], ids=["closed", "reset"])
def cutting(request: pytest.FixtureRequest) -> Iterator[CuttingServer]:
    server = CuttingServer(Script(reset=request.param))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


WARM_UP = Call("GET", "/warm-up")  # answered: its connection is kept alive for the next call
CALLS = {
    "GET": (Calls.tasks(), True),
    "DELETE": (Call("DELETE", "/jobs/some-id"), True),
    "POST with a key": (Calls.submit("reverse", "abc", idempotency_key="k-1"), True),
    "POST without a key": (Calls.submit("reverse", "abc"), False),
}


def check(server: CuttingServer, call: Call, resent: bool, outcome: Any) -> None:
    script = server.script
    if resent:
        assert outcome == ANSWER
        assert script.sent(call.method, call.path) == 2  # the one cut off, then the answered one
        assert script.connections == 2
    else:
        assert isinstance(outcome, ServerUnreachable)
        assert "may or may not have been applied" in str(outcome)
        assert script.sent(call.method, call.path) == 1
    keys = {key for method, _, key in script.requests if method == call.method}
    assert keys == {call.headers.get("Idempotency-Key")}  # the same key each time


@pytest.mark.parametrize("name", CALLS)
def test_client_resends_only_what_cannot_apply_twice(cutting: CuttingServer, name: str) -> None:
    call, resent = CALLS[name]
    with Client(cutting.url, timeout=5) as client:
        assert client.send(WARM_UP) == ANSWER
        try:
            outcome: Any = client.send(call)
        except ServerUnreachable as exc:
            outcome = exc
    check(cutting, call, resent, outcome)


@pytest.mark.parametrize("name", CALLS)
async def test_async_client_resends_only_what_cannot_apply_twice(
    cutting: CuttingServer, name: str
) -> None:
    call, resent = CALLS[name]
    async with AsyncClient(cutting.url, timeout=5) as client:
        assert await client.send(WARM_UP) == ANSWER
        try:
            outcome: Any = await client.send(call)
        except ServerUnreachable as exc:
            outcome = exc
    check(cutting, call, resent, outcome)


def test_retries_zero_sends_once(cutting: CuttingServer) -> None:
    with Client(cutting.url, timeout=5, retries=0) as client:
        client.send(WARM_UP)
        with pytest.raises(ServerUnreachable):
            client.tasks()
    assert cutting.script.sent("GET", "/tasks") == 1
    with pytest.raises(ValueError, match="retries"):
        Client(cutting.url, retries=-1)


def test_a_refused_connection_is_tried_three_times_then_unreachable() -> None:
    with socket.socket() as sock:  # a port bound but not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with Client(url, timeout=2) as client, pytest.raises(ServerUnreachable) as raised:
            client.submit("reverse", "abc")  # a POST without a key: nothing was sent
    assert "(3 attempts)" in str(raised.value)
    assert "may or may not" not in str(raised.value)


# -- a real server, whose first answer to a submit is lost -------------------------------------


class LosingProxy(socketserver.ThreadingTCPServer):
    """Relays to ``upstream``, but drops the answer to the first ``POST /jobs`` it relays (the
    server has stored the job by then) and resets the client's connection instead."""

    daemon_threads = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), LosingRelay)
        self.upstream = upstream
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.lost: list[dict[str, Any]] = []  # the answers dropped
        self.submits = 0  # the POST /jobs relayed to the server

    def drops(self, request: Message) -> bool:
        if not request.first_line.startswith("POST /jobs "):
            return False
        self.submits += 1
        return self.submits == 1


class LosingRelay(socketserver.StreamRequestHandler):
    server: LosingProxy

    def handle(self) -> None:
        with (
            socket.create_connection(self.server.upstream) as upstream,
            upstream.makefile("rb") as answers,
        ):
            while (request := read_message(self.rfile)) is not None:
                upstream.sendall(request.raw)
                answer = read_message(answers)
                assert answer is not None
                if self.server.drops(request):
                    self.server.lost.append(json.loads(answer.raw.partition(b"\r\n\r\n")[2]))
                    cut_off(self.connection, reset=True)
                    return
                self.wfile.write(answer.raw)


def access_lines(server: ServerProcess, method: str, path: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    return [
        x
        for x in lines
        if x["logger"] == "uvicorn.access" and (x["method"], x["path"]) == (method, path)
    ]


def test_a_keyed_submit_whose_answer_was_lost_makes_one_job_on_a_real_server(
    spawn: Callable[..., Process], sqlite_url: str
) -> None:
    env = test_env(sqlite_url, JOBHANDLER_LOG_FORMAT="json", JOBHANDLER_LOG_LEVEL="info")
    server = spawn(["serve", "--no-worker"], env, server=True)
    assert isinstance(server, ServerProcess)
    server.wait_ready()
    proxy = LosingProxy(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    threading.Thread(target=proxy.serve_forever, args=(0.01,), daemon=True).start()
    try:
        with Client(proxy.url, timeout=10) as client:
            job = client.submit("reverse", "abc", idempotency_key="lost-answer")
            assert [lost["id"] for lost in proxy.lost] == [job.id]  # the server stored it first
            assert proxy.submits == 2
            assert [j.id for j in client.list_jobs()] == [job.id]  # one job, not two

            # Without a key the same loss cannot be resent: the job was made, the caller is
            # told it may have been.
            with pytest.raises(ServerUnreachable, match="may or may not have been applied"):
                proxy.submits = 0
                client.submit("reverse", "xyz")
            assert proxy.submits == 1
            assert len(list(client.list_jobs())) == 2
    finally:
        proxy.shutdown()
        proxy.server_close()
    server.stop()
    assert len(access_lines(server, "POST", "/jobs")) == 3  # what the server itself saw
