"""The HTTP server's edge, so that idle and slow clients cost memory and nothing else.

- Read timeouts (``TimedH11Protocol``, uvicorn's h11 protocol extended): a connection has
  ``header_timeout`` seconds to send a whole request head, counted from its first byte (from
  the connection's start for a new one); a body that sends nothing for ``body_timeout`` seconds
  gets 408. Idle keep-alive connections are closed by uvicorn's own ``timeout_keep_alive``.
- Limits (``RequestLimiter``, an ASGI middleware) count requests in progress and open event
  streams, each against its own limit, instead of open sockets: uvicorn's ``limit_concurrency``
  counted sockets, so a thousand connections that sent nothing made every request a 503.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any, Literal

import h11
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from jobhandler.http.problems import problem_response

log = logging.getLogger("jobhandler.http")

EVENT_STREAM = b"text/event-stream"
RETRY_AFTER = {"Retry-After": "1"}


class EdgeConfig(uvicorn.Config):
    """uvicorn's configuration, served by ``TimedH11Protocol`` with these read timeouts."""

    def __init__(
        self, app: ASGIApp, *, header_timeout: float, body_timeout: float, **options: Any
    ) -> None:
        super().__init__(app, http=TimedH11Protocol, **options)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout


class TimedH11Protocol(H11Protocol):
    """One connection, closed when the client is too slow to send a request head or body."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, EdgeConfig), "serve TimedH11Protocol with an EdgeConfig"
        self.timeouts = {"head": config.header_timeout, "body": config.body_timeout}
        self.read_timer: asyncio.TimerHandle | None = None
        self.waiting_for: Literal["head", "body"] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for("head")  # a new connection owes its first head at once

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_reads(progressed=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_reads(progressed=False)  # a pipelined request may be waiting in the buffer

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _watch_reads(self, *, progressed: bool) -> None:
        """Time what the connection owes next: the rest of a head, the rest of a body, or
        nothing (a request being answered; idle between requests, which keep-alive times)."""
        state = self.conn.their_state
        if state is h11.IDLE:
            # Part of a head is in (a whole one would have moved the state on): the rest is due
            # by the deadline its first bytes started, however it trickles in.
            if self.waiting_for != "head" and self.conn.trailing_data[0]:
                self._wait_for("head")
        elif state is h11.SEND_BODY:
            if progressed or self.waiting_for != "body":
                self._wait_for("body")  # a body may take long, but must not stall
        else:
            self._stop_waiting()

    def _wait_for(self, what: Literal["head", "body"]) -> None:
        self._stop_waiting()
        self.waiting_for = what
        self.read_timer = self.loop.call_later(self.timeouts[what], self._timed_out)

    def _stop_waiting(self) -> None:
        if self.read_timer is not None:
            self.read_timer.cancel()
        self.read_timer = None
        self.waiting_for = None

    def _timed_out(self) -> None:
        what = self.waiting_for
        self.read_timer = None
        if self.transport.is_closing() or what is None:
            return
        if what == "body" and self.flow.read_paused:
            self._wait_for("body")  # the application is not reading: the wait is ours
            return
        # A connection that sent nothing of a head gets no answer: it asked nothing (and a
        # client reusing an idle connection must not read a 408 as the answer to its request).
        answered = what == "body" or bool(self.conn.trailing_data[0])
        cycle = self.cycle if what == "body" else None
        if answered and (cycle is None or not cycle.response_started):
            self.transport.write(_request_timeout(what, self.timeouts[what]))
        if cycle is not None:
            cycle.disconnected = True  # what the application sends from now on goes nowhere
            cycle.message_event.set()  # and a read of the body learns the client is gone
        self.waiting_for = None
        self.transport.close()


def _request_timeout(what: str, seconds: float) -> bytes:
    """A whole 408 problem response, written as bytes: it may interrupt a request head."""
    problem = problem_response(408, f"the request {what} was not sent within {seconds:g} s")
    head = [b"HTTP/1.1 408 Request Timeout"]
    head += [name + b": " + value for name, value in problem.raw_headers]
    return b"\r\n".join([*head, b"connection: close", b"", problem.body])


class RequestLimiter:
    """At most ``max_requests`` requests in progress and ``max_streams`` open event streams;
    past either, 503 problem JSON with ``Retry-After``. Connections themselves are not counted.

    A request counts as soon as it arrives; a response that turns out to be an event stream
    (``text/event-stream``, whichever route sends it) moves to the stream count, so streams
    left open never starve ordinary requests, nor the reverse.
    """

    def __init__(self, app: ASGIApp, *, max_requests: int, max_streams: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self.max_streams = max_streams
        self.requests = 0  # in progress, event streams not included
        self.streams = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.requests >= self.max_requests:
            await _unavailable(scope, receive, send, "too many requests in progress")
            return
        self.requests += 1
        holds: Literal["request", "stream", "nothing"] = "request"

        async def counted_send(message: Message) -> None:
            nonlocal holds
            if holds == "nothing":
                return  # a stream refused: the application's stream goes nowhere
            if message["type"] == "http.response.start" and _is_stream(message):
                self.requests -= 1
                holds = "nothing"
                if self.streams >= self.max_streams:
                    # The whole 503 tells uvicorn the response is complete, which in turn
                    # tells the application (waiting on receive) that the client is gone.
                    await _unavailable(scope, receive, send, "too many event streams open")
                    return
                self.streams += 1
                holds = "stream"
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        finally:
            if holds == "request":
                self.requests -= 1
            elif holds == "stream":
                self.streams -= 1


def _is_stream(start: Message) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(EVENT_STREAM)
        for name, value in start.get("headers", ())
    )


async def _unavailable(scope: Scope, receive: Receive, send: Send, reason: str) -> None:
    await problem_response(503, reason, headers=RETRY_AFTER)(scope, receive, send)


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit, so every connection
    the server accepts has a descriptor (a common default, 1024, is under ``max_requests``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # macOS: an unlimited hard limit cannot be set
            log.warning("open files stay limited to %d: %s", soft, exc)
            return soft
    return hard
