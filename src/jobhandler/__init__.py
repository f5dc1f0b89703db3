"""Job Handler: crash-safe background jobs for Python.

The public surface is what this module exports; everything else is internal.
"""

from jobhandler.app import App, load_app
from jobhandler.client.clients import AsyncClient, Client, ClientError, ServerUnreachable
from jobhandler.model.context import JobContext
from jobhandler.model.errors import (
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
from jobhandler.model.handles import JobHandle
from jobhandler.model.jobs import Job, JobStatus
from jobhandler.model.options import EnqueueOptions, SubmitRequest
from jobhandler.model.retry import RetryPolicy
from jobhandler.model.tasks import Task
from jobhandler.settings import Settings
from jobhandler.sync import SyncUnavailable

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
