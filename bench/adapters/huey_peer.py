"""Huey on SQLite (SqliteHuey) or Redis (RedisHuey), default settings.

Submit one: calling the task, ``noop(i)``. Bulk: none (``noop.map`` enqueues one by one).
Workers: one ``huey_consumer`` with ``-k process -w 2`` (Huey's documented way to use several
cores; the default is one worker thread).
"""

from __future__ import annotations

import os

from huey import RedisHuey, SqliteHuey

from bench.adapters.common import bin_path, record

PACKAGE = "huey"
WORKERS = "1 `huey_consumer -k process -w 2` (2 worker processes, 1 job at a time each)"
NO_BULK = "none: task.map() enqueues one by one"

_url = os.environ.get("BENCH_DB_URL", "redis://127.0.0.1:6379/12")
if os.environ.get("BENCH_BACKEND") == "sqlite":
    huey = SqliteHuey("bench", filename=_url.removeprefix("sqlite:///"))
else:
    huey = RedisHuey("bench", url=_url)


@huey.task()
def noop(i: int) -> None:
    record(i)


def worker_launches() -> int:
    return 1


def worker_argv(index: int) -> list[str]:
    return [
        bin_path("huey_consumer"),
        "bench.adapters.huey_peer.huey",
        "--worker-type",
        "process",
        "--workers",
        "2",
        "--quiet",
    ]


class Submitter:
    def open(self) -> None:
        pass

    def one(self, i: int) -> None:
        noop(i)

    def close(self) -> None:
        pass
