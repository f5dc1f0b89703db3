"""One router per resource. Each route answers with its response model's own JSON."""

from jobhandler.http.routes import (
    attempts,
    events,
    health,
    jobs,
    metrics,
    queues,
    schedules,
    tasks,
    workers,
    workflows,
)

ROUTERS = (
    jobs.router,
    workflows.router,
    attempts.router,
    events.router,
    tasks.router,
    queues.router,
    workers.router,
    schedules.router,
    health.router,
    metrics.router,
)

__all__ = ["ROUTERS"]
