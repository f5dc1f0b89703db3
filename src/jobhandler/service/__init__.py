"""What every frontend calls, one owner per operation.

``Service`` is made when an App connects, from the store and what the App declared; the HTTP
API, the dashboard, the CLI, the Django backend and the test kit hold it, never the App:

- ``submits``: checks, unique keys, the Idempotency-Key, the group commit and the wake-up;
- ``jobs``: get, page, wait, cancel, retry, delete, bulk, attempts;
- ``flow``: queues' pause and limits, and what ``GET /queues`` shows;
- ``schedules``, ``tokens``: the stored schedules and API tokens;
- ``live``: the feed of changed jobs behind the event streams;
- ``workflows``: graphs of jobs that run after other jobs, spawned children, parents' results;
- ``signals``: in-process wake-ups between these and the workers of this process.
"""

from __future__ import annotations

from collections.abc import Callable

from jobhandler.model.limits import DeclaredLimits
from jobhandler.model.records import Throughput, WorkerInfo
from jobhandler.model.tasks import TaskRegistry
from jobhandler.observe.events import Events
from jobhandler.service.flow import Flow
from jobhandler.service.jobs import Jobs
from jobhandler.service.live import JobFeed
from jobhandler.service.schedules import Schedules
from jobhandler.service.signals import Signals
from jobhandler.service.submits import Submits
from jobhandler.service.tokens import Tokens
from jobhandler.service.workflows import Workflows
from jobhandler.settings import Settings
from jobhandler.store import Store


class Service:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        tasks: TaskRegistry,
        limits: DeclaredLimits,
        clock: Callable[[], float],
        events: Events,
        default_task: str | None = None,
    ) -> None:
        self.store, self.settings, self.tasks, self.clock = store, settings, tasks, clock
        self.events = events
        self.signals = Signals()
        self.submits = Submits(store, tasks, default_task, clock, events, self.signals)
        self.jobs = Jobs(store, settings, clock, self.signals)
        self.flow = Flow(store, settings, clock, tasks, limits)
        self.schedules = Schedules(store, clock)
        self.tokens = Tokens(store, clock)
        self.workflows = Workflows(store, self.submits, self.jobs, clock, events, self.signals)
        self.live = JobFeed(store.changed_jobs, clock)  # behind the event streams
        self.signals.on_submit(self.live.kick)

    async def workers(self) -> list[WorkerInfo]:
        """The registered workers, with the jobs each is running."""
        return await self.store.list_workers()

    async def throughput(self, since: float) -> list[Throughput]:
        """Jobs finished per minute since ``since`` (epoch seconds), by status."""
        return await self.store.throughput(since)
