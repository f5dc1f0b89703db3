"""Running a process: the HTTP server, a worker, or both on one event loop, with signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Generator

import uvicorn

from jobhandler.app import App
from jobhandler.http import create_app
from jobhandler.http.auth import is_loopback
from jobhandler.http.server import EdgeConfig, RequestLimiter, raise_open_files_limit
from jobhandler.model.errors import JobHandlerError
from jobhandler.settings import Settings
from jobhandler.worker import Worker

log = logging.getLogger("jobhandler")

EXIT_FORCED = 1


class PublicBindRefused(JobHandlerError):
    """``serve`` on a network address with no API token in the store: the reason, one line."""


class CannotListen(JobHandlerError):
    """``serve`` could not take its address (a port in use, an address not this host's)."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ours stops the worker and the server together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def run(app: App, settings: Settings, *, http: bool, worker: bool) -> None:
    """Serve and/or work until SIGTERM or SIGINT; a second signal exits at once."""
    loop = asyncio.get_running_loop()
    async with app.connected(settings):
        if http:
            await _refuse_open_network_bind(app, settings)
        # The address first: a port in use ends the process before any work starts.
        sockets = [_listening(settings)] if http else []
        the_worker = Worker(app, settings) if worker else None
        server = None
        if http:
            server = _Server(_server_config(app, settings))

        signals_seen = 0

        def on_signal(signum: int) -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen > 1:
                log.warning("second signal: exiting now; leases will bring running jobs back")
                os._exit(EXIT_FORCED)
            log.info("%s: shutting down gracefully", signal.Signals(signum).name)
            if the_worker is not None:
                the_worker.stop()
            if server is not None:
                server.should_exit = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        _freeze_startup_objects()
        try:
            parts = []
            if the_worker is not None:
                parts.append(asyncio.create_task(the_worker.run()))
            if server is not None:
                serving = _serve(server, settings, the_worker, sockets)
                parts.append(asyncio.create_task(serving))
            await asyncio.gather(*parts)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


def _freeze_startup_objects() -> None:
    """Keep what the process has made by now (modules, the app, its routes and models: most
    of its objects, for its whole life) out of the cyclic collector's full collections.

    Requests leave little cyclic garbage, but the objects they hold while in flight are
    promoted to the oldest generation, and every few hundred requests that triggers a full
    collection, which walked all of these too: some 30 us of CPU a POST /jobs, a tenth of it.
    Collected first, so no startup garbage is kept.
    """
    gc.collect()
    gc.freeze()


def _server_config(app: App, settings: Settings) -> EdgeConfig:
    """uvicorn, with limits on requests rather than connections (http/server.py)."""
    raise_open_files_limit()  # idle connections cost a descriptor each, and nothing more
    limited = RequestLimiter(
        create_app(app, settings),
        max_requests=settings.max_connections,
        max_streams=settings.max_streams,
    )
    return EdgeConfig(
        limited,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        host=settings.host,
        port=settings.port,
        # Our logging (logs.py) formats uvicorn's records, the access log included.
        log_config=None,
        access_log=True,
        lifespan="on",
        timeout_keep_alive=int(max(1, settings.keep_alive)),
        loop="asyncio",
    )


def _listening(settings: Settings) -> socket.socket:
    """The server's socket, bound and listening, or CannotListen saying why in one line."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP said outright (socket.create_server says 0): asyncio turns Nagle's algorithm
    # off only on a connection whose socket says TCP, and with it on, each response on a
    # kept-alive connection waited about 40 ms for the client's delayed ACK between its head
    # and its body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CannotListen(f"cannot serve on {settings.host}:{settings.port}: {reason}") from None
    return sock


async def _serve(
    server: _Server, settings: Settings, worker: Worker | None, sockets: list[socket.socket]
) -> None:
    log.info("serving on http://%s:%d", settings.host, settings.port)
    try:
        await server.serve(sockets=sockets)
    finally:
        if worker is not None:
            worker.stop()  # the API went away (a signal, or it could not bind): stop working too
    if not server.started:
        raise SystemExit(f"could not serve on {settings.host}:{settings.port}")


async def _refuse_open_network_bind(app: App, settings: Settings) -> None:
    """An API reachable from the network must not be open to anyone who finds the port."""
    if is_loopback(settings.host) or await app.service.tokens.known():
        return
    if settings.insecure_no_auth:
        log.warning(
            "serving on %s with no API token: anyone who reaches the port can list, submit,"
            " cancel and delete jobs (--insecure-no-auth)",
            settings.host,
        )
        return
    raise PublicBindRefused(
        f"refusing to serve on {settings.host} with no API token in the store: create one with"
        " `jobhandler token create --scope admin`, bind to 127.0.0.1, or pass --insecure-no-auth"
    )
