"""CPU per POST /jobs inside the server, layer by layer: the ASGI application driven in-process
by 32 concurrent requests (no socket, no h11), with the layers above a point left out. Each
level is the one above it less some layers, so the differences say what those layers cost.

    nice -n 19 ionice -c 3 .venv/bin/python bench/http_layers.py sqlite full
    .venv/bin/python bench/http_layers.py postgresql://postgres@127.0.0.1:5432/<db> route
    .venv/bin/python bench/http_layers.py bare full --calls    # Python calls per request

Levels: ``full`` (what uvicorn calls, less its proxy-headers wrapper), ``app`` (below
Starlette's and FastAPI's middleware and our access checks: the router), ``route`` (the route's
own app: the query check, the lean call, the ``Request``, the endpoint, the ``Response``),
``endpoint`` (what the endpoint does, without HTTP: parse, check, store, JSON), ``store`` (the
service's submit alone). ``bare`` is bench/http_baseline.py's application (``full`` only).
The process's startup objects are frozen first, as ``serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BODY = b'{"task": "noop", "payload": 1}'
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def post(app: App, statuses: list[int]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5555),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/jobs",
        "raw_path": b"/jobs",
        "query_string": b"",
        "headers": list(HEADERS),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)


async def drive(app: App, requests: int, clients: int = 32) -> None:
    statuses: list[int] = []
    left = [requests]

    async def client() -> None:
        while left[0] > 0:
            left[0] -= 1
            await post(app, statuses)

    await asyncio.gather(*(client() for _ in range(clients)))
    assert set(statuses) == {201}, set(statuses)


def level_app(api: Any, service: Any, level: str) -> App:
    """The ASGI callable of ``level`` (see the docstring) over the FastAPI application."""
    from jobhandler.client.wire import job_json
    from jobhandler.http.inputs import parse_json, submit_request

    layer = api.build_middleware_stack()
    while level in ("app", "route") and not hasattr(layer, "routes"):
        layer = layer.app  # down to the router
    if level == "route":
        layer = next(r for r in layer.routes if getattr(r, "path", "") == "/jobs").app
    parse = level == "endpoint"

    async def below(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if level in ("endpoint", "store"):
            body = parse_json(BODY, 32) if parse else {"task": "noop", "payload": 1}
            request = submit_request(body, [])
            submits = service.submits
            done = await submits.submit_checked(
                lambda now: [submits.new_job(request, now)], batch=False
            )
            if parse:
                job_json(done.jobs[0])
            await send({"type": "http.response.start", "status": 201})
            return
        scope["app"] = api
        await layer(scope, receive, send)

    return below


async def measure(target: str, level: str, requests: int, rounds: int, calls: bool) -> None:
    if target == "bare":
        from bench.http_baseline import api as bare

        app: App = bare
        connected = None
    else:
        from bench.adapters.jobhandler_peer import app as ours
        from jobhandler.http.api import create_app
        from jobhandler.http.server import RequestLimiter
        from jobhandler.settings import Settings

        url = f"sqlite:///{tempfile.mkdtemp()}/layers.db" if target == "sqlite" else target
        settings = Settings.model_validate(
            {"database_url": url, "app": "bench.adapters.jobhandler_peer:app"}
        )
        api = create_app(ours, settings)
        connected = ours.connected(settings)
        await connected.__aenter__()
        if level == "full":
            app = RequestLimiter(
                api, max_requests=settings.max_connections, max_streams=settings.max_streams
            )
        else:
            app = level_app(api, ours.service, level)
    await drive(app, 500)  # warm
    gc.collect()
    gc.freeze()
    if calls:
        profile = cProfile.Profile()
        profile.enable()
        await drive(app, requests)
        profile.disable()
        print(f"{target} {level}: {pstats.Stats(profile).total_calls / requests:.0f} calls/request")
    else:
        spent = []
        for _ in range(rounds):
            before = time.process_time()
            await drive(app, requests)
            spent.append((time.process_time() - before) / requests * 1e6)
        shown = " ".join(f"{s:.1f}" for s in spent)
        print(f"{target} {level}: {statistics.median(spent):.1f} us CPU/request ({shown})")
    if connected is not None:
        await connected.__aexit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="sqlite, a postgresql:// URL of an empty database, bare")
    parser.add_argument("level", choices=["full", "app", "route", "endpoint", "store"])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", action="store_true", help="Python calls per request instead")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "no live worker serves it", every few seconds
    asyncio.run(measure(args.target, args.level, args.requests, args.rounds, args.calls))


if __name__ == "__main__":
    main()
