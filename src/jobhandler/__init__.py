"""Job Handler: crash-safe background jobs for Python.

The public surface is what this module exports; everything else is internal.

Each export is imported on first use (PEP 562), not with the package: ``import
jobhandler.client`` or a CLI command that restarts itself before doing anything would otherwise
load the App, the store and the service first. ``from jobhandler import App`` works as always,
and type checkers read the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobhandler.app import App, load_app
    from jobhandler.client.clients import AsyncClient, Client, ClientError, ServerUnreachable
    from jobhandler.model.builder import Node, Workflow, WorkflowHandle
    from jobhandler.model.canvas import TaskSignature, chain, chord, group
    from jobhandler.model.context import JobContext, ParentFailed
    from jobhandler.model.errors import (
        InvalidJob,
        InvalidOptions,
        InvalidPayload,
        InvalidTransition,
        JobFailed,
        JobHandlerError,
        JobNotFound,
        LeaseLost,
        PermanentFailure,
        RetryLater,
        StoreUnavailable,
        UnknownTask,
        WaitTimeout,
    )
    from jobhandler.model.handles import JobHandle
    from jobhandler.model.jobs import Job, JobStatus
    from jobhandler.model.options import EnqueueOptions, SubmitRequest, WorkflowOptions
    from jobhandler.model.retry import RetryPolicy
    from jobhandler.model.tasks import Task
    from jobhandler.model.workflows import InvalidWorkflow, WorkflowStatus, WorkflowView
    from jobhandler.settings import Settings
    from jobhandler.sync import SyncUnavailable

# Where each export is defined.
_HOMES = {
    "App": "jobhandler.app",
    "AsyncClient": "jobhandler.client.clients",
    "Client": "jobhandler.client.clients",
    "ClientError": "jobhandler.client.clients",
    "EnqueueOptions": "jobhandler.model.options",
    "InvalidJob": "jobhandler.model.errors",
    "InvalidOptions": "jobhandler.model.errors",
    "InvalidPayload": "jobhandler.model.errors",
    "InvalidTransition": "jobhandler.model.errors",
    "InvalidWorkflow": "jobhandler.model.workflows",
    "Job": "jobhandler.model.jobs",
    "JobContext": "jobhandler.model.context",
    "JobFailed": "jobhandler.model.errors",
    "JobHandle": "jobhandler.model.handles",
    "JobHandlerError": "jobhandler.model.errors",
    "JobNotFound": "jobhandler.model.errors",
    "JobStatus": "jobhandler.model.jobs",
    "LeaseLost": "jobhandler.model.errors",
    "Node": "jobhandler.model.builder",
    "ParentFailed": "jobhandler.model.context",
    "PermanentFailure": "jobhandler.model.errors",
    "RetryLater": "jobhandler.model.errors",
    "RetryPolicy": "jobhandler.model.retry",
    "ServerUnreachable": "jobhandler.client.clients",
    "Settings": "jobhandler.settings",
    "StoreUnavailable": "jobhandler.model.errors",
    "SubmitRequest": "jobhandler.model.options",
    "SyncUnavailable": "jobhandler.sync",
    "Task": "jobhandler.model.tasks",
    "TaskSignature": "jobhandler.model.canvas",
    "UnknownTask": "jobhandler.model.errors",
    "WaitTimeout": "jobhandler.model.errors",
    "Workflow": "jobhandler.model.builder",
    "WorkflowHandle": "jobhandler.model.builder",
    "WorkflowOptions": "jobhandler.model.options",
    "WorkflowStatus": "jobhandler.model.workflows",
    "WorkflowView": "jobhandler.model.workflows",
    "chain": "jobhandler.model.canvas",
    "chord": "jobhandler.model.canvas",
    "group": "jobhandler.model.canvas",
    "load_app": "jobhandler.app",
}

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
    "InvalidWorkflow",
    "Job",
    "JobContext",
    "JobFailed",
    "JobHandle",
    "JobHandlerError",
    "JobNotFound",
    "JobStatus",
    "LeaseLost",
    "Node",
    "ParentFailed",
    "PermanentFailure",
    "RetryLater",
    "RetryPolicy",
    "ServerUnreachable",
    "Settings",
    "StoreUnavailable",
    "SubmitRequest",
    "SyncUnavailable",
    "Task",
    "TaskSignature",
    "UnknownTask",
    "WaitTimeout",
    "Workflow",
    "WorkflowHandle",
    "WorkflowOptions",
    "WorkflowStatus",
    "WorkflowView",
    "chain",
    "chord",
    "group",
    "load_app",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'jobhandler' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
