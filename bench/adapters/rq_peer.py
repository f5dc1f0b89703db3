"""RQ on Redis, default Worker class (it forks a work horse per job).

Submit one: ``queue.enqueue(noop, i)``. Bulk: ``queue.enqueue_many`` (one Redis pipeline).
Workers: 2 ``rq worker`` processes.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue

from bench.adapters.common import bin_path, env, record

PACKAGE = "rq"
WORKERS = "2 `rq worker` processes (default Worker: one forked work horse per job)"


def noop(i: int) -> None:
    record(i)


def worker_launches() -> int:
    return 2


def worker_argv(index: int) -> list[str]:
    return [bin_path("rq"), "worker", "--url", env("BENCH_DB_URL"), "--logging_level", "WARNING"]


class Submitter:
    def open(self) -> None:
        self.redis = Redis.from_url(env("BENCH_DB_URL"))
        self.queue = Queue("default", connection=self.redis)

    def one(self, i: int) -> None:
        self.queue.enqueue(noop, i)

    def many(self, items: list[int]) -> None:
        self.queue.enqueue_many([Queue.prepare_data(noop, args=(i,)) for i in items])

    def close(self) -> None:
        self.redis.close()
