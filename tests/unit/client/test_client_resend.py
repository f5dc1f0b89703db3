"""Client and AsyncClient resend a request that met a closed connection, when that is safe.

The server here is a real socket server (a thread of this process) speaking just enough HTTP/1.1:
it answers the first request of a kept-alive connection, then reads the next request on it and
closes the connection without answering, as a server whose keep-alive timeout fires while the
client sends makes it do; every later connection is answered normally. It counts what it read,
so "sent exactly once" is what the server saw, not what the client claims.
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobhandler import AsyncClient, Client, ServerUnreachable
from jobhandler.client import Call, Calls

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


def read_request(stream: Any) -> tuple[str, str, dict[str, str]] | None:
    line = stream.readline()
    if not line:
        return None
    method, path, _ = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (header := stream.readline().decode().strip()) != "":
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    stream.read(int(headers.get("content-length", "0")))
    return method, path, headers


class Handler(socketserver.StreamRequestHandler):
    server: Server

    def handle(self) -> None:
        script = self.server.script
        with script.lock:
            script.connections += 1
            first_connection = script.connections == 1
        answered = 0
        while (request := read_request(self.rfile)) is not None:
            method, path, headers = request
            with script.lock:
                script.requests.append((method, path, headers.get("idempotency-key")))
            if first_connection and answered == 1:
                self.cut_off(script.reset)
                return
            body = json.dumps(ANSWER).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            self.wfile.write(head.encode() + body)
            answered += 1

    def cut_off(self, reset: bool) -> None:
        if reset:  # linger 0: close() sends an RST
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(params=[False, True], ids=["closed", "reset"])
def cutting(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(Script(reset=request.param))
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


def check(server: Server, call: Call, resent: bool, outcome: Any) -> None:
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
def test_client_resends_only_what_cannot_apply_twice(cutting: Server, name: str) -> None:
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
    cutting: Server, name: str
) -> None:
    call, resent = CALLS[name]
    async with AsyncClient(cutting.url, timeout=5) as client:
        assert await client.send(WARM_UP) == ANSWER
        try:
            outcome: Any = await client.send(call)
        except ServerUnreachable as exc:
            outcome = exc
    check(cutting, call, resent, outcome)


def test_retries_zero_sends_once(cutting: Server) -> None:
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
