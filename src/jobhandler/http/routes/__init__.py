"""One router per resource. Each route answers with its response model's own JSON."""

from jobhandler.http.routes import health, jobs, queues, tasks, workers

ROUTERS = (jobs.router, tasks.router, queues.router, workers.router, health.router)

__all__ = ["ROUTERS"]
