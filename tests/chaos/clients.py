"""Client threads for the chaos tests: they submit, cancel, read and retry over HTTP while
faults are injected, and log every request as an ``Op`` of the history (tests/chaos/history.py).

Two threads submit jobs of ``chaosapp:step`` (each submit repeated with its Idempotency-Key
until it is acknowledged); some fail their first attempt, some are submitted with a delay and
cancelled at once, some are submitted with a delay and left to run (no run may start before its
``run_at``, whatever its worker's clock says: tests/chaos/clocks.py). Two more read random
jobs, retry those failed or cancelled and cancel some that run.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx

from tests.chaos.history import Op


@dataclass(frozen=True)
class Answer:
    """How one API server answered one request: its status (None: no answer, the request
    failed in flight) and how long it took."""

    server: str
    status: int | None
    seconds: float
    at: float


class Clients:
    """Client threads against the API; every request is logged as an ``Op`` of the history.

    With several servers, each request goes to the first; one it cannot answer for sure (a
    5xx, or none) goes again to the next, and so on: a submit with the same Idempotency-Key."""

    def __init__(self, *urls: str) -> None:
        self.urls = urls
        self.ops: list[Op] = []
        self.answers: list[Answer] = []
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._submit_loop, args=(seed,)) for seed in range(2)
        ] + [threading.Thread(target=self._meddle_loop, args=(seed,)) for seed in range(2)]

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    @contextlib.contextmanager
    def connected(self) -> Iterator[list[httpx.Client]]:
        with contextlib.ExitStack() as stack:
            # Longer than any answer should take: a server that hangs is measured, not cut short.
            yield [stack.enter_context(httpx.Client(base_url=u, timeout=30)) for u in self.urls]

    def call(
        self, client: httpx.Client, kind: Any, job_id: str | None, method: str, path: str, **kw: Any
    ) -> Op:
        invoked, began = time.time(), time.monotonic()
        try:
            reply = client.request(method, path, **kw)
        except httpx.HTTPError:
            op, code = Op(kind, job_id, invoked, time.time(), None), None
        else:
            body = reply.json() if reply.is_success else {}
            ok = True if reply.is_success else (False if reply.status_code < 500 else None)
            job_id = job_id or body.get("id")
            op = Op(kind, job_id, invoked, time.time(), ok, body.get("status"), body.get("attempt"))
            if due := body.get("run_at"):  # RFC 3339 text
                op = replace(op, run_at=datetime.fromisoformat(due).timestamp())
            code = reply.status_code
        answer = Answer(str(client.base_url), code, time.monotonic() - began, time.time())
        with self.lock:
            self.ops.append(op)
            self.answers.append(answer)
        return op

    def answers_of(self, server: str, since: float, until: float = float("inf")) -> list[Answer]:
        """How ``server`` answered the requests sent to it from ``since`` to ``until``."""
        return [a for a in self.answers if a.server == server and since <= a.at - a.seconds < until]

    def acknowledged_by(self, server: str, since: float) -> bool:
        """Has ``server`` acknowledged a submit sent after ``since`` (it serves writes)?"""
        return any(a.status == 201 for a in self.answers_of(server, since))

    def call_any(
        self, clients: list[httpx.Client], kind: Any, job_id: str, method: str, path: str
    ) -> Op:
        """The request to each server in turn, until one answers for sure."""
        for client in clients:
            op = self.call(client, kind, job_id, method, path)
            if op.ok is not None:
                break
        return op

    def submit(self, clients: list[httpx.Client], job: dict[str, Any], cancel: bool = False) -> str:
        """Submit until acknowledged: the same Idempotency-Key makes a repeat safe; ``cancel``:
        then cancel it at once. Returns the job's id."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        invoked = time.time()
        deadline = time.monotonic() + 30
        tries = 0
        while time.monotonic() < deadline:
            client = clients[tries % len(clients)]
            tries += 1
            op = self.call(client, "submit", None, "POST", "/jobs", json=job, headers=headers)
            if op.ok:
                with self.lock:  # one acknowledged submit, from its first try to its answer
                    self.ops[self.ops.index(op)] = replace(op, invoked=invoked)
                    self.acked.append(str(op.job_id))
                if cancel:  # cancelled while it waits: it must never run
                    self.call_any(
                        clients, "cancel", str(op.job_id), "POST", f"/jobs/{op.job_id}/cancel"
                    )
                return str(op.job_id)
            assert op.ok is None, f"submit refused: {job}"
            if tries % len(clients) == 0:
                self.stop.wait(0.1)  # every server failed it: a moment before the next round
        raise AssertionError("a submit was not acknowledged within 30 s")

    def _submit_loop(self, seed: int) -> None:
        rng = random.Random(seed)
        with self.connected() as clients:
            while not self.stop.is_set():
                kind = rng.random()
                job: dict[str, Any] = {"task": "step", "max_attempts": 10}
                job["payload"] = {"hold": round(rng.uniform(0.05, 1.5), 2)}
                cancel = False
                if kind < 0.15:  # fails once: retried by itself, or failed and by its user
                    tries = rng.choice([1, 10])
                    job.update(max_attempts=tries, payload={"hold": 0.05, "fail_first": True})
                elif kind < 0.3:  # cancelled while it waits
                    job["delay"], cancel = 5, True
                elif kind < 0.4:  # due in 3 s, whatever the clock of the worker that takes it
                    job["delay"] = 3
                self.submit(clients, job, cancel)
                self.stop.wait(0.1)  # a steady rate, not a flood: the faults are the point

    def _meddle_loop(self, seed: int) -> None:
        """Read random jobs; retry those failed or cancelled, cancel some of those running."""
        rng = random.Random(100 + seed)
        with self.connected() as clients:
            while not self.stop.wait(0.05):
                with self.lock:
                    if not self.acked:
                        continue
                    job_id = rng.choice(self.acked)
                seen = self.call_any(clients, "read", job_id, "GET", f"/jobs/{job_id}")
                if seen.status in ("failed", "cancelled") and rng.random() < 0.5:
                    self.call_any(clients, "retry", job_id, "POST", f"/jobs/{job_id}/retry")
                elif seen.status == "processing" and rng.random() < 0.1:
                    self.call_any(clients, "cancel", job_id, "POST", f"/jobs/{job_id}/cancel")
