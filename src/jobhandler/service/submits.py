"""Submits that say what they created: unique keys and the Idempotency-Key header.

``Submits.submit`` checks requests, stores their jobs through the App's group commit, and
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jobhandler.model.errors import InvalidJob
from jobhandler.model.jobs import Job, NewJob
from jobhandler.model.records import IdempotencyKeyTaken, IdempotencyRecord
from jobhandler.model.tokens import hash_token

if TYPE_CHECKING:
    from jobhandler.store import Store

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


class SubmitOwner(Protocol):
    """What ``Submits`` needs from its App (declared here: the App imports this module)."""

    clock: Callable[[], float]

    @property
    def store(self) -> Store: ...

    async def insert_jobs(self, new: list[NewJob]) -> list[Job]: ...


@dataclass
class Submits:
    app: SubmitOwner
    # Records waiting to ride in the group commit's transaction, by their first job's id.
    _pending: dict[str, IdempotencyRecord] = field(default_factory=dict)

    def records_for(self, new: Sequence[NewJob]) -> list[IdempotencyRecord]:
        """The records of the submits whose jobs are in this write (see App._write)."""
        return [self._pending[j.id] for j in new if j.id in self._pending]

    async def submit(
        self,
        check: Callable[[float], list[NewJob]],
        *,
        batch: bool,
        key: IdempotencyKey | None = None,
    ) -> Submitted:
        """Store the jobs ``check(now)`` makes (it raises InvalidJob); or replay ``key``'s."""
        if key is not None and (earlier := await self.replay(key)) is not None:
            return earlier
        now = self.app.clock()
        new = check(now)
        if key is None:
            return _submitted(new, await self.app.insert_jobs(new))
        record = _record(key, batch, new, now)
        self._pending[new[0].id] = record
        try:
            return _submitted(new, await self.app.insert_jobs(new))
        except IdempotencyKeyTaken:
            earlier = await self.replay(key)  # the request that won the race committed
            if earlier is None:
                raise
            return earlier
        finally:
            del self._pending[new[0].id]

    async def replay(self, key: IdempotencyKey) -> Submitted | None:
        record = await self.app.store.get_idempotency(key.owner, key.key)
        if record is None:
            return None
        if record.fingerprint != key.fingerprint:
            raise IdempotencyMismatch
        found = await self.app.store.idempotent_jobs(record)
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
    make: Callable[[Any, float], NewJob], requests: Sequence[Any], now: float, max_batch: int
) -> list[NewJob]:
    """Jobs from a batch's requests; InvalidJob naming every bad one, or a bad batch size."""
    _check_size(len(requests), max_batch)
    new, errors = [], []
    for index, request in enumerate(requests):
        try:
            new.append(make(request, now))
        except InvalidJob as exc:
            errors.extend(exc.at("jobs", index))
    if errors:
        raise InvalidJob(f"{len(errors)} errors in the batch; nothing was stored", errors)
    return new


def batch_sized(new: list[NewJob], max_batch: int) -> list[NewJob]:
    """Jobs made already (and checked one by one), if they are 1 to ``max_batch``."""
    _check_size(len(new), max_batch)
    return new


def _check_size(size: int, max_batch: int) -> None:
    if not 1 <= size <= max_batch:
        message = f"a batch holds 1 to {max_batch} jobs, not {size}"
        raise InvalidJob(message, [{"loc": ["jobs"], "msg": message, "type": "batch_size"}])
