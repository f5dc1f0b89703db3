"""``ctx.transaction()`` as the worker runs it: the task's writes and its job's completion in
one transaction of the store's database.

The completion is the worker's ordinary one (``Transition.COMPLETE``, the store's fenced
``finish_job``), written last in the task's transaction, just before it commits: so the job's
row is locked only for that instant, not while the task works, and a heartbeat is never held
up. If the run no longer holds the job (a rescue or a release gave it a newer attempt, or it
ended), the statement updates no row and the transaction is rolled back: the task sees
LeaseLost and none of its writes were committed. Once it commits, the worker's own completion
of the run is not written (it would change nothing: the job is no longer processing); the run's
events and metrics are told of the completion as for any other (``committed``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from jobhandler.model.errors import JobHandlerError, LeaseLost
from jobhandler.model.jobs import Job, Outcome, Transition
from jobhandler.model.tasks import Task
from jobhandler.store.contract import Store

DONE_ALREADY = "this run completed its job in an earlier ctx.transaction()"


class RunTransactions:
    """The transactor of one run (model/context.Transactor)."""

    def __init__(
        self, store: Store, job: Job, task: Task[Any, Any], clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.job = job
        self.task = task
        self.clock = clock
        self.committed: Outcome | None = None  # the completion, once its transaction committed

    @asynccontextmanager
    async def transaction(self, result: Callable[[], Any]) -> AsyncIterator[Any]:
        self._not_yet()
        async with self.store.transaction() as conn:
            yield conn
            outcome = self._outcome(result())
            if not await self.store.finish_in(conn, outcome, self.clock()):
                raise self._lost()
        self.committed = outcome

    @contextmanager
    def transaction_sync(self, result: Callable[[], Any]) -> Iterator[Any]:
        self._not_yet()
        with self.store.transaction_sync() as conn:
            yield conn
            outcome = self._outcome(result())
            if not self.store.finish_in_sync(conn, outcome, self.clock()):
                raise self._lost()
        self.committed = outcome

    def _not_yet(self) -> None:
        if self.committed is not None:
            raise JobHandlerError(DONE_ALREADY)

    def _outcome(self, result: Any) -> Outcome:
        job = self.job
        # Checked as a returned value is (InvalidResult); a workflow parent's end wakes the
        # workers, as its dependents may become due when this commits.
        value = self.task.dump_result(result)
        wakes, worker = bool(job.dependents), job.worker_id  # fenced as the completer's are
        return Outcome(
            job.id, job.attempt, Transition.COMPLETE, value, wakes=wakes, worker_id=worker
        )

    def _lost(self) -> LeaseLost:
        return LeaseLost(
            f"job {self.job.id} attempt {self.job.attempt} no longer holds its lease:"
            " the transaction was rolled back"
        )
