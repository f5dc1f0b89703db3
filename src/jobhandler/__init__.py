"""Job Handler: crash-safe background jobs for Python.

The public surface is what this module exports; everything else is internal.
"""

from jobhandler.app import App, SubmitRequest, load_app
from jobhandler.client import AsyncClient, Client, ClientError
from jobhandler.context import JobContext
from jobhandler.errors import (
    InvalidJob,
    InvalidPayload,
    InvalidTransition,
    JobHandlerError,
    JobNotFound,
    PermanentFailure,
    RetryLater,
    StoreUnavailable,
    UnknownTask,
)
from jobhandler.jobs import Job, JobStatus
from jobhandler.retry import RetryPolicy
from jobhandler.settings import Settings
from jobhandler.tasks import Task

__all__ = [
    "App",
    "AsyncClient",
    "Client",
    "ClientError",
    "InvalidJob",
    "InvalidPayload",
    "InvalidTransition",
    "Job",
    "JobContext",
    "JobHandlerError",
    "JobNotFound",
    "JobStatus",
    "PermanentFailure",
    "RetryLater",
    "RetryPolicy",
    "Settings",
    "StoreUnavailable",
    "SubmitRequest",
    "Task",
    "UnknownTask",
    "load_app",
]
