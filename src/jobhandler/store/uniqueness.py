"""Unique keys and idempotency records: what a submit writes besides its jobs.

A unique key is held in one of two scopes, each enforced by the store itself, so it holds
across API servers and under concurrent submits:

- live (the default): a partial unique index over the waiting and running jobs with a key.
  The insert skips a job whose key is held (``ON CONFLICT ... DO NOTHING``, which on
  PostgreSQL waits for a concurrent holder's commit or rollback). A job that ends leaves the
  index in the same write, so its key is free again with nothing to clean up.
- window: the key is held for ``unique_for`` seconds from the submit, whatever becomes of the
  job. An index predicate may not read the clock, so the window is a row of
  ``unique_windows`` (key, job id, expires_at); a submit first frees the windows of its keys
  that expired (by the submit's own ``now``) or whose job was deleted, then takes each key
  with ``ON CONFLICT DO NOTHING`` (which waits for a concurrent taker, as above), inserts its
  jobs, and takes out again, in the same transaction, a windowed job whose key row does not
  name it. The insert statement stays the one every submit runs.

Then, in the same transaction, the insert reads who holds each key: a job that was skipped is
answered with that holder (a different id) instead. With no key in a batch, the insert is the
one statement it always was.

Debounce (a ``DebouncedJob``, always a live key): after the insert, in its transaction, a
debounced job whose key a waiting (queued or scheduled) job holds gives that job its payload and
its start, at most the holder's ``created_at`` plus ``max_wait`` (``debounce``): concurrent
submits queue on the holder's row lock, so the last to commit leaves its payload. The holders'
read that follows answers with the updated job. A job already running keeps its payload: the
submit is answered with it, as a plain duplicate is.

A user's retry puts a finished job back among the waiting ones, so it follows the rule a submit
of its key in its place would: the guarded UPDATE of a retry (one job's or a bulk batch's) also
requires that no other job holds the key (``{key_held}``: a waiting or running job with the
live key, or the job of an unexpired window), and a read after it, in its transaction, names
the holder of each job it left as it was (``held_keys``, :func:`held_keys_step`): one job's
retry is refused with :class:`UniqueKeyHeld`, a bulk retry reports them as skipped. The unique
index stays the judge: on PostgreSQL a concurrent submit or retry of the key may commit
between the guard's snapshot and the write, whose unique violation rolls the write back; it is
run again, and then sees the holder (``unraced``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from jobhandler.model.errors import DuplicateJob, UniqueKeyHeld
from jobhandler.model.jobs import DebouncedJob, Job, NewJob
from jobhandler.model.records import IdempotencyKeyTaken, IdempotencyRecord
from jobhandler.store import rows as r
from jobhandler.store.dialect import Dialect, Done, Duplicate, Step
from jobhandler.store.queries import STATUS_WORDS, fill
from jobhandler.store.resource import Resource

T = TypeVar("T")

# Whether the job ``jobs`` may not leave a finished status because the job ``holder`` holds its
# unique key, judged as a submit of the key would be at ``:now``: a live key by a waiting or
# running job with it (the statuses of the index jobs_unique_live), a windowed key by the job
# its unexpired window names. Written into the queries of a retry (a word of both dialects).
KEY_WORDS = {
    "key_held": fill(
        """holder.unique_key = jobs.unique_key AND holder.id <> jobs.id AND (
        (jobs.unique_until IS NULL AND holder.unique_until IS NULL
            AND holder.status IN {cancellable})
        OR (jobs.unique_until IS NOT NULL AND holder.id IN (
            SELECT job_id FROM unique_windows
            WHERE unique_windows.key = jobs.unique_key AND unique_windows.expires_at > :now)))""",
        STATUS_WORDS,
    )
}
# A write that lost a unique key to a concurrent one is run again this often, at most.
RACES = 3


def _keys(jobs: Sequence[Job | NewJob], windowed: bool) -> list[str]:
    return sorted(
        {
            j.unique_key
            for j in jobs
            if j.unique_key is not None and (j.unique_until is not None) == windowed
        }
    )


class Submits(Resource):
    """Inserting jobs with their unique keys and idempotency records, and reading them back."""

    async def insert_jobs(
        self,
        jobs: Sequence[NewJob],
        now: float,
        connection: object | None,
        records: Sequence[IdempotencyRecord],
    ) -> list[Job]:
        """The jobs as stored: each created one, or in a duplicate's place its key's holder."""
        self.dialect.accept(connection)
        created = [r.created_job(j, now) for j in jobs]
        if not created:
            return []
        # Most submits hold no unique key: the key steps below then look at nothing.
        keyed = [j for j in created if j.unique_key is not None]
        live, window = _keys(keyed, False), _keys(keyed, True)
        array, steps = self.dialect.array, []
        if records:  # first: a key taken fails the transaction before any job is written
            steps.append(Step(self.queries["add_idempotency"], self._records(records), many=True))
        values = [r.new_job_params(j, self.dialect.json) for j in created]
        if window:
            claims = _claims(keyed)
            steps += [
                Step(self.queries["free_windows"], {"keys": array(window), "now": now}),
                Step(self.queries["claim_window"], claims, many=True),
            ]
        one = self.queries.get("insert_job") if len(values) == 1 else None  # a dialect's row form
        many = Step(self.queries["insert_jobs"], values, many=True)
        insert = Step(one, values[0]) if one else many
        # Counted before drop_unclaimed, whose delete trigger takes a dropped job off again.
        steps += self.counted(insert, [j.id for j in created], _live_ids(keyed), created)
        if keyed and (debounced := [j for j in jobs if isinstance(j, DebouncedJob)]):
            steps.append(self._debounce_step(debounced, values, now))
        if window:
            ids = array([c["job_id"] for c in claims])
            steps.append(Step(self.queries["drop_unclaimed"], {"ids": ids}))
        holders = self._holder_steps(live, window)
        try:
            done = await self.dialect.run([*steps, *holders], True, connection)
        except Duplicate as exc:
            if records and any([await self.get_idempotency(x.owner, x.key) for x in records]):
                raise IdempotencyKeyTaken("this Idempotency-Key was used already") from None
            raise DuplicateJob("a job with one of these ids exists already") from exc
        if not holders:
            return created
        held = self._held(done[len(steps) :], live, window)
        return [_settle(job, held) for job in created]

    def _debounce_step(
        self, debounced: list[DebouncedJob], values: list[dict[str, Any]], now: float
    ) -> Step:
        """A debounced job that found its key held by a waiting job hands that job its payload
        and start, in submit order (the last one's stay); the live_holders read then answers
        with it. One that was inserted changes nothing: no other waiting job has its key."""
        params = {v["id"]: v for v in values}
        rows = [
            {
                "id": j.id,
                "key": j.unique_key,
                "payload": params[j.id]["payload"],
                "run_at": j.run_at,
                "max_wait": j.max_wait,
                "now": now,
            }
            for j in debounced
        ]
        return Step(self.queries["debounce"], rows, many=True)

    def _holder_steps(self, live: list[str], window: list[str]) -> list[Step]:
        array = self.dialect.array
        steps = []
        if live:
            steps.append(Step(self.queries["live_holders"], {"keys": array(live)}))
        if window:
            steps.append(Step(self.queries["window_holders"], {"keys": array(window)}))
        return steps

    def _held(
        self, done: Sequence[Done], live: list[str], window: list[str]
    ) -> dict[tuple[str, bool], Job]:
        """Each key's holder, by (key, windowed)."""
        scopes = [scope for scope, keys in ((False, live), (True, window)) if keys]
        held: dict[tuple[str, bool], Job] = {}
        for scope, result in zip(scopes, done, strict=True):
            for row in result.rows:
                job = self.job(row)
                held[(str(job.unique_key), scope)] = job
        return held

    def _records(self, records: Sequence[IdempotencyRecord]) -> list[dict[str, Any]]:
        return [
            {
                "owner": x.owner,
                "key": x.key,
                "fingerprint": x.fingerprint,
                "batch": x.batch,
                "items": self.dialect.json([list(item) for item in x.items]),
                "created_at": x.created_at,
            }
            for x in records
        ]

    async def get_idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        found = (await self.one("get_idempotency", {"owner": owner, "key": key})).rows
        if not found:
            return None
        row = found[0]
        items = tuple((str(i), k, bool(w)) for i, k, w in self.dialect.loads(row["items"]))
        return IdempotencyRecord(
            owner=row["owner"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            batch=bool(row["batch"]),
            items=items,
            created_at=row["created_at"],
        )

    async def idempotent_jobs(self, record: IdempotencyRecord) -> list[Job | None]:
        ids = [item[0] for item in record.items]
        live = sorted({k for _, k, w in record.items if k is not None and not w})
        window = sorted({k for _, k, w in record.items if k is not None and w})
        holders = self._holder_steps(live, window)
        by_id = Step(self.queries["jobs_by_id"], {"ids": self.dialect.array(ids)})
        found, *rest = await self.dialect.run([by_id, *holders], False)
        jobs = {job.id: job for job in map(self.job, found.rows)}
        held = self._held(rest, live, window)
        return [
            jobs.get(i) or (held.get((k, w)) if k is not None else None) for i, k, w in record.items
        ]

    async def prune_keys(self, now: float, idempotency_before: float, limit: int) -> int:
        if limit <= 0:
            return 0
        steps = [
            Step(self.queries["prune_windows"], {"now": now, "limit": limit}),
            Step(self.queries["prune_idempotency"], {"before": idempotency_before, "limit": limit}),
            Step(self.queries["prune_key_buckets"], {"now": now, "limit": limit}),
        ]
        windows, records, buckets = await self.dialect.run(steps, True)
        return max(windows.counts[0], records.counts[0], buckets.counts[0])


# -- a retry's guard: used by one job's retry (jobs.py) and a bulk retry (bulk.py) ----------


def held_keys_step(dialect: Dialect, job_ids: Sequence[str], now: float) -> Step:
    """The read, after a retry's write, of the jobs it left finished for a held key."""
    return Step(dialect.queries["held_keys"], {"ids": dialect.array(list(job_ids)), "now": now})


def skipped(held: Done) -> list[tuple[str, str]]:
    """What ``held_keys_step`` found: each job kept from a retry, and its key's holder."""
    return [(row["id"], row["holder"]) for row in held.rows]


def refuse_held(held: Done) -> None:
    """Raise UniqueKeyHeld for the job ``held_keys_step`` found, if it found one."""
    for row in held.rows:
        raise UniqueKeyHeld(row["id"], row["unique_key"], row["holder"], row["status"])


async def unraced(write: Callable[[], Awaitable[T]]) -> T:
    """``write``, run again if a concurrent writer took a unique key it needs between its
    guard's read and its write (which rolled back): the next run sees the holder."""
    for _ in range(RACES - 1):
        try:
            return await write()
        except Duplicate:
            continue
    return await write()


def _live_ids(created: Sequence[Job]) -> list[str]:
    """The jobs the insert skips if their key is held: those with a live unique key."""
    return [j.id for j in created if j.unique_key is not None and j.unique_until is None]


def _claims(created: Sequence[Job]) -> list[dict[str, Any]]:
    return [
        {"key": j.unique_key, "job_id": j.id, "expires_at": j.unique_until}
        for j in created
        if j.unique_key is not None and j.unique_until is not None
    ]


def _settle(job: Job, held: dict[tuple[str, bool], Job]) -> Job:
    """The job itself if it was created, else the job holding its key."""
    if job.unique_key is None:
        return job
    holder = held.get((job.unique_key, job.unique_until is not None))
    if holder is None:  # its holder ended and was deleted in the moment between: very rare
        raise DuplicateJob(f"unique key {job.unique_key!r} is held by a job that just went away")
    return job if holder.id == job.id else holder
