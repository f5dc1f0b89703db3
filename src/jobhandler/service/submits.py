"""The submit path, one owner: checks, unique keys, the Idempotency-Key, the group commit
(group_commit.py), the job events and the wake-up.

``Submits.submit_checked`` checks requests, stores their jobs through the group commit, and
answers which jobs it created and which it found (a duplicate unique key answers with the job
holding the key). With an idempotency key (the header, scoped to the caller's token), the
answer is recorded in the transaction of the jobs it created: the body's fingerprint and, per
job, the id it was given and its unique key. A repeat with the same body replays the answer
(the same status and the same jobs, as they stand now) and stores nothing; a repeat with another
body is refused (422). Two requests racing with one key: the record's primary key lets one
commit, the other's whole transaction fails, and it replays the first one's answer.

The record keeps ids rather than the response's bytes: the store writes the jobs and the record
in one statement list, before any response exists, and the jobs read back are what a client
asking again wants to see anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobhandler.model.errors import InvalidJob, StoreUnavailable
from jobhandler.model.jobs import Job, NewJob
from jobhandler.model.options import SubmitRequest
from jobhandler.model.records import IdempotencyKeyTaken, IdempotencyRecord
from jobhandler.model.tasks import TaskRegistry
from jobhandler.model.tokens import hash_token
from jobhandler.observe.events import Events
from jobhandler.service.group_commit import GroupCommit
from jobhandler.service.signals import Signals
from jobhandler.service.tenancy import keyed

if TYPE_CHECKING:
    from jobhandler.model.connections import CallerConnection
    from jobhandler.store import Store

MAX_BATCH = 1000  # jobs in one submit
ANONYMOUS = "anonymous"  # the owner of keys sent to an open server (no tokens in the store)


class IdempotencyMismatch(InvalidJob):
    """The Idempotency-Key was used before with another request body (HTTP 422)."""

    def __init__(self) -> None:
        message = "this Idempotency-Key was used with another request body; use a new key"
        error = {"loc": ["header", "Idempotency-Key"], "msg": message, "type": "key_reused"}
        super().__init__(message, [error])


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    owner: str  # a token's hash, or ANONYMOUS
    key: str
    fingerprint: str  # of the request body


@dataclass(frozen=True, slots=True)
class Submitted:
    """What a submit did: per job, the job as stored and whether this submit created it."""

    jobs: list[Job]
    created: list[bool]
    replayed: bool = False  # the answer of an earlier request with the same idempotency key

    @property
    def status(self) -> int:
        """201 when it created a job; 200 when every job was there already."""
        return 201 if any(self.created) else 200


def fingerprint(body: Any) -> str:
    """The body's hash, as JSON with sorted keys: the same request however it was spelled."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def owner_of(authorization: str | None) -> str:
    """Whose keys these are: the bearer token's hash (the access check already accepted it)."""
    kind, _, token = (authorization or "").partition(" ")
    return hash_token(token.strip()) if kind.lower() == "bearer" and token.strip() else ANONYMOUS


Pending = tuple[NewJob, IdempotencyRecord | None]  # a job, with its submit's record on its first


class Submits:
    """The one submit path: checks, unique keys (the store's), the Idempotency-Key, the group
    commit, the job events and the wake-up of this process's workers."""

    def __init__(
        self,
        store: Store,
        tasks: TaskRegistry,
        default_task: str | None,
        clock: Callable[[], float],
        events: Events,
        signals: Signals,
    ) -> None:
        self._store, self._tasks, self._default_task = store, tasks, default_task
        self._clock, self._events, self._signals = clock, events, signals
        # A lost store fails every submit in a merged write; any other error is retried one
        # submit at a time, so a bad row fails only its own request.
        self._group: GroupCommit[Pending, Job] = GroupCommit(
            self._write, fail_all=(StoreUnavailable,)
        )

    def new_job(self, request: SubmitRequest, now: float) -> NewJob:
        """Check a request against its task and turn it into a job to store (no I/O). Every
        HTTP submit comes through here: a caller bound to a concurrency key gets its key, or
        KeyNotAllowed for naming another (tenancy.py), before anything is stored."""
        request = keyed(request)
        name = request.task or self._default_task
        if name is None:
            message = "task is required: this app has no default task"
            raise InvalidJob(message, [{"loc": ["task"], "msg": message, "type": "missing"}])
        task = self._tasks.get(name)
        return task.new_job(task.validate_payload(request.payload), now, request)

    async def submit(
        self, request: SubmitRequest, *, connection: CallerConnection | None = None
    ) -> Job:
        """Submit one job; it is committed when this returns. Raises InvalidJob.

        With ``connection`` (the caller's, to the store's database: see Task.enqueue) the job
        joins that connection's transaction and is committed, or rolled back, with it.
        """
        (job,) = await self.insert([self.new_job(request, self._clock())], connection)
        return job

    async def submit_many(self, requests: Sequence[SubmitRequest]) -> list[Job]:
        """Submit up to MAX_BATCH jobs, all or none. Raises InvalidJob naming every bad one."""
        return await self.insert(checked_jobs(self.new_job, requests, self._clock(), MAX_BATCH))

    async def insert(
        self,
        new: list[NewJob],
        connection: CallerConnection | None = None,
        record: IdempotencyRecord | None = None,
    ) -> list[Job]:
        """Store checked jobs (from ``new_job`` or ``Task.new_job``), with ``record`` in the
        same transaction, and wake this process's workers."""
        with self._events.submitting(new) as new:  # a tracer stamps its trace context in
            if connection is not None:  # the caller's transaction: theirs to commit
                records = [] if record is None else [record]
                jobs = await self._store.insert_jobs(new, self._clock(), connection, records)
            elif record is None:
                jobs = await self._group.submit([(job, None) for job in new])
            else:
                jobs = await self._group.submit([(new[0], record), *((j, None) for j in new[1:])])
        self._events.submitted(jobs)
        self._signals.submitted()
        return jobs

    async def _write(self, pending: list[Pending]) -> list[Job]:
        """One group commit's write: its jobs and their records in one transaction."""
        records = [record for _, record in pending if record is not None]
        new = [job for job, _ in pending]
        return await self._store.insert_jobs(new, self._clock(), None, records)

    async def submit_checked(
        self,
        check: Callable[[float], list[NewJob]],
        *,
        batch: bool,
        key: IdempotencyKey | None = None,
    ) -> Submitted:
        """Store the jobs ``check(now)`` makes (it raises InvalidJob); or replay ``key``'s."""
        if key is not None and (earlier := await self.replay(key)) is not None:
            return earlier
        now = self._clock()
        new = check(now)
        if key is None:
            return _submitted(new, await self.insert(new))
        try:
            return _submitted(new, await self.insert(new, record=_record(key, batch, new, now)))
        except IdempotencyKeyTaken:
            earlier = await self.replay(key)  # the request that won the race committed
            if earlier is None:
                raise
            return earlier

    async def replay(self, key: IdempotencyKey) -> Submitted | None:
        record = await self._store.get_idempotency(key.owner, key.key)
        if record is None:
            return None
        if record.fingerprint != key.fingerprint:
            raise IdempotencyMismatch
        found = await self._store.idempotent_jobs(record)
        kept = [
            (job, job.id == item[0])
            for job, item in zip(found, record.items, strict=True)
            if job is not None  # deleted since: left out
        ]
        return Submitted([j for j, _ in kept], [made for _, made in kept], replayed=True)


def _record(key: IdempotencyKey, batch: bool, new: list[NewJob], now: float) -> IdempotencyRecord:
    items = tuple((j.id, j.unique_key, j.unique_until is not None) for j in new)
    return IdempotencyRecord(key.owner, key.key, key.fingerprint, batch, items, now)


def _submitted(new: list[NewJob], jobs: list[Job]) -> Submitted:
    return Submitted(jobs, [job.id == n.id for job, n in zip(jobs, new, strict=True)])


def checked_jobs(
    make: Callable[[Any, float], NewJob],
    requests: Sequence[Any],
    now: float,
    max_batch: int,
    what: str = "batch",
) -> list[NewJob]:
    """Jobs from a batch's (or a workflow's) requests; InvalidJob naming every bad one, or a
    bad batch size."""
    _check_size(len(requests), max_batch)
    new, errors = [], []
    for index, request in enumerate(requests):
        try:
            new.append(make(request, now))
        except InvalidJob as exc:
            errors.extend(exc.at("jobs", index))
    if errors:
        raise InvalidJob(f"{len(errors)} errors in the {what}; nothing was stored", errors)
    return new


def batch_sized(new: list[NewJob], max_batch: int) -> list[NewJob]:
    """Jobs made already (and checked one by one), if they are 1 to ``max_batch``."""
    _check_size(len(new), max_batch)
    return new


def _check_size(size: int, max_batch: int) -> None:
    if not 1 <= size <= max_batch:
        message = f"a batch holds 1 to {max_batch} jobs, not {size}"
        raise InvalidJob(message, [{"loc": ["jobs"], "msg": message, "type": "batch_size"}])
