"""Job Handler: crash-safe background jobs for Python.

The public surface is what this module exports; everything else is internal.
"""

from jobhandler.app import App, SubmitRequest, load_app
from jobhandler.client import AsyncClient, Client, ClientError, ServerUnreachable
from jobhandler.context import JobContext
from jobhandler.errors import (
    InvalidJob,
    InvalidOptions,
    InvalidPayload,
    InvalidTransition,
    JobFailed,
    JobHandlerError,
    JobNotFound,
    PermanentFailure,
    RetryLater,
    StoreUnavailable,
    UnknownTask,
    WaitTimeout,
)
from jobhandler.handles import JobHandle
from jobhandler.jobs import Job, JobStatus
from jobhandler.options import EnqueueOptions
from jobhandler.retry import RetryPolicy
from jobhandler.settings import Settings
from jobhandler.sync import SyncUnavailable
from jobhandler.tasks import Task

__all__ = [
    "App",
    "AsyncClient",
    "Client",
    "ClientError",
    "EnqueueOptions",
    "InvalidJob",
    "InvalidOptions",
    "InvalidPayload",
    "InvalidTransition",
    "Job",
    "JobContext",
    "JobFailed",
    "JobHandle",
    "JobHandlerError",
    "JobNotFound",
    "JobStatus",
    "PermanentFailure",
    "RetryLater",
    "RetryPolicy",
    "ServerUnreachable",
    "Settings",
    "StoreUnavailable",
    "SubmitRequest",
    "SyncUnavailable",
    "Task",
    "UnknownTask",
    "WaitTimeout",
    "load_app",
]
