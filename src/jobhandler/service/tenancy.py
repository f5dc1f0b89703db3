"""The caller's tenant: a request made with a token bound to a concurrency key is confined to
that key, here, once for every route (docs/tenants.md, "Tokens bound to a tenant").

The access check (http/auth.py) knows the caller's token; it sets ``CALLER_KEY`` for the
request, and the service applies it wherever a job is made or read for a caller: a submit
(``Submits.new_job``: every HTTP path that makes jobs goes through it) gets the key, or is
refused for naming another, and its unique key is the tenant's own; a read or an action on a
job of another key answers as if the job did not exist (jobs.py), and so does one on a workflow
with a job of another key (workflows.py); a list sees only the key's jobs. No key set (the
Python API, the CLI, the workers, a token of no tenant): nothing changes.
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar

from jobhandler.model.errors import JobNotFound, KeyNotAllowed
from jobhandler.model.jobs import Job
from jobhandler.model.options import SubmitRequest
from jobhandler.model.records import JobFilter

# The key of the token behind the request being served; None: no tenant (every job).
CALLER_KEY: ContextVar[str | None] = ContextVar("jobhandler.caller_key", default=None)


def keyed(request: SubmitRequest) -> SubmitRequest:
    """The request with the caller's key: its own if it names none, refused if another. Its
    ``unique_key``, if any, is made the tenant's own (``tenant_unique_key``)."""
    bound = CALLER_KEY.get()
    if bound is None:
        return request
    if request.concurrency_key not in (None, bound):
        raise KeyNotAllowed(bound)
    update: dict[str, str] = {"concurrency_key": bound}
    if request.unique_key is not None:
        update["unique_key"] = tenant_unique_key(bound, request.unique_key)
    return request.model_copy(update=update)


def tenant_unique_key(tenant: str, unique_key: str) -> str:
    """A unique key in the tenant's own space: unique keys are shared by the whole store, and a
    duplicate is answered with the job holding the key (a debounce even replaces its payload),
    so a tenant naming another's key would see or change that job. Prefixed with the tenant's
    length and name, no two tenants' keys meet (``5:acme:x`` is never ``4:acm:...``)."""
    return f"{len(tenant)}:{tenant}:{unique_key}"


def visible(job: Job) -> Job:
    """The job, if the caller may see it; JobNotFound if it is another tenant's."""
    bound = CALLER_KEY.get()
    if bound is not None and job.concurrency_key != bound:
        raise JobNotFound(job.id)
    return job


def scoped(where: JobFilter) -> JobFilter:
    """The filter, narrowed to the caller's key."""
    bound = CALLER_KEY.get()
    return where if bound is None else dataclasses.replace(where, concurrency_key=bound)
