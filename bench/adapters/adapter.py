"""The adapter command line: the orchestrator (bench/run.py) runs this with a system's own
virtualenv interpreter, so it never imports any system's code itself.

    python bench/adapters/adapter.py MODULE info
    python bench/adapters/adapter.py MODULE setup
    python bench/adapters/adapter.py MODULE submit-one N          # timed, one job per call
    python bench/adapters/adapter.py MODULE submit-bulk N BATCH   # timed, the bulk API
    python bench/adapters/adapter.py MODULE fill N                # untimed: bulk API, or one by one
    python bench/adapters/adapter.py MODULE submit-list M1 M2 ... # these markers, one by one
    python bench/adapters/adapter.py MODULE submit-paced N RATE FILE  # N at RATE/s; times to FILE
    python bench/adapters/adapter.py MODULE workflow-fill N       # untimed: root -> N -> child
    python bench/adapters/adapter.py MODULE workflow-times ID     # the store's times of one
    python bench/adapters/adapter.py MODULE variant-fill VARIANT N KEYS  # untimed: a drain variant
    python bench/adapters/adapter.py MODULE worker INDEX          # exec the system's worker command

MODULE is a module of bench.adapters (``celery_peer``...). Its environment: BENCH_BACKEND
(sqlite, redis or postgres), BENCH_DB_URL, BENCH_RECORD (the start-record file). Every command
but ``worker`` prints one JSON object on its last stdout line.

A system module defines ``PACKAGE`` (its distribution name), ``WORKERS`` (a description),
``worker_launches()`` (how many times to run ``worker``), ``worker_argv(index)``, an optional
``setup()`` (sync or async) and a ``Submitter`` class whose ``open``, ``one(i)``, optional
``many(list)`` and ``close`` methods are plain or ``async``. Job payloads are integers: the
marker that the job body records (negative markers are warm-ups).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import time
from importlib.metadata import version
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


async def _call(fn: Any, *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _with_submitter(mod: Any, body: Any) -> Any:
    submitter = mod.Submitter()
    await _call(submitter.open)
    try:
        return await body(submitter)
    finally:
        await _call(submitter.close)


def _has_bulk(mod: Any) -> bool:
    return hasattr(mod.Submitter, "many")


async def submit_one(mod: Any, n: int) -> dict[str, Any]:
    async def body(s: Any) -> dict[str, Any]:
        await _call(s.one, -1)  # warm-up: connections open, caches primed; not timed
        one = s.one
        is_async = inspect.iscoroutinefunction(one)
        start = time.perf_counter()
        if is_async:
            for i in range(n):
                await one(i)
        else:
            for i in range(n):
                one(i)
        return {"n": n, "seconds": time.perf_counter() - start}

    return await _with_submitter(mod, body)


async def submit_bulk(mod: Any, n: int, batch: int) -> dict[str, Any]:
    if not _has_bulk(mod):
        return {"unsupported": getattr(mod, "NO_BULK", "no bulk submit API")}

    async def body(s: Any) -> dict[str, Any]:
        await _call(s.many, [-1])
        start = time.perf_counter()
        for first in range(0, n, batch):
            await _call(s.many, list(range(first, min(n, first + batch))))
        return {"n": n, "seconds": time.perf_counter() - start, "batch": batch}

    return await _with_submitter(mod, body)


async def fill(mod: Any, n: int) -> dict[str, Any]:
    bulk = _has_bulk(mod)

    async def body(s: Any) -> dict[str, Any]:
        start = time.perf_counter()
        if bulk:
            for first in range(0, n, 1000):
                await _call(s.many, list(range(first, min(n, first + 1000))))
        else:
            for i in range(n):
                await _call(s.one, i)
        return {"n": n, "seconds": time.perf_counter() - start, "method": "bulk" if bulk else "one"}

    return await _with_submitter(mod, body)


async def submit_list(mod: Any, markers: list[int]) -> dict[str, Any]:
    async def body(s: Any) -> dict[str, Any]:
        for m in markers:
            await _call(s.one, m)
        return {"n": len(markers)}

    return await _with_submitter(mod, body)


async def submit_paced(mod: Any, n: int, rate: float, path: str) -> dict[str, Any]:
    """Submit job i at start + i/rate; the submit time (taken just before the call) goes to
    ``path`` as ``"i time"``. If submitting falls behind, the next one goes at once."""

    async def body(s: Any) -> dict[str, Any]:
        lines = []
        behind = 0
        start = time.time() + 0.05
        for i in range(n):
            delay = start + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind += 1
            submitted = time.time()
            await _call(s.one, i)
            lines.append(f"{i} {submitted!r}\n")
        with open(path, "w") as f:  # noqa: ASYNC230 - after the timed part
            f.writelines(lines)
        return {"n": n, "seconds": time.time() - start, "behind": behind}

    return await _with_submitter(mod, body)


def main(argv: list[str]) -> None:
    module, command, *args = argv
    mod = importlib.import_module(f"bench.adapters.{module}")
    if command == "worker":
        cmd = mod.worker_argv(int(args[0]))
        sys.stdout.flush()
        os.execvp(cmd[0], cmd)
    if command == "info":
        result: Any = {
            "package": mod.PACKAGE,
            "version": version(mod.PACKAGE),
            "python": sys.version.split()[0],
            "bulk": _has_bulk(mod),
            "workflow": hasattr(mod, "submit_workflow"),
            "no_bulk_reason": getattr(mod, "NO_BULK", None),
            "worker_launches": mod.worker_launches(),
            "workers": mod.WORKERS,
            "worker_argv": mod.worker_argv(0),
        }
    elif command == "setup":
        setup = getattr(mod, "setup", None)
        if setup is not None:
            asyncio.run(_call(setup))
        result = {"ok": True}
    elif command == "submit-one":
        result = asyncio.run(submit_one(mod, int(args[0])))
    elif command == "submit-bulk":
        result = asyncio.run(submit_bulk(mod, int(args[0]), int(args[1])))
    elif command == "fill":
        result = asyncio.run(fill(mod, int(args[0])))
    elif command == "submit-list":
        result = asyncio.run(submit_list(mod, [int(a) for a in args]))
    elif command == "submit-paced":
        result = asyncio.run(submit_paced(mod, int(args[0]), float(args[1]), args[2]))
    elif command in ("workflow-fill", "workflow-times"):
        name = "submit_workflow" if command == "workflow-fill" else "workflow_times"
        if not hasattr(mod, name):
            result = {"unsupported": "no workflow (fan-out/fan-in) in this adapter"}
        else:
            argument: Any = int(args[0]) if command == "workflow-fill" else args[0]
            started = time.perf_counter()
            result = asyncio.run(_call(getattr(mod, name), argument))
            result["seconds"] = time.perf_counter() - started
    elif command == "variant-fill":
        if not hasattr(mod, "fill_variant"):
            result = {"unsupported": "no drain variants in this adapter"}
        else:
            result = asyncio.run(mod.fill_variant(args[0], int(args[1]), int(args[2])))
    else:
        raise SystemExit(f"adapter: unknown command {command!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
