"""API tokens: how they are made and kept, and what each scope allows. Pure: no I/O.

A token is shown once, when it is made; the store keeps only its SHA-256. A token carries 256
random bits, so a fast hash is enough: there is nothing to guess, only a stolen table to make
useless, and a lookup by hash needs no per-token salt.

A token may be bound to a concurrency key (its tenant, docs/tenants.md): the jobs it submits
get that key, and it reaches only the routes of ``BOUND_ROUTES``, which the service scopes to
jobs of its key (service/tenancy.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal, get_args

from jobhandler.model.errors import JobHandlerError
from jobhandler.model.validation import concurrency_key_error

Scope = Literal["read", "submit", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
PREFIX = "jh_"  # lets secret scanners and people tell a Job Handler token at a glance
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")

# Routes every caller may reach, token or not: probes cannot hold secrets.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
_READ_METHODS = frozenset({"GET", "HEAD"})


class DuplicateToken(JobHandlerError, ValueError):
    """A token with that name exists already."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as the store keeps it: never the token itself."""

    name: str
    scope: Scope
    hash: str
    created_at: float
    last_used_at: float | None = None
    concurrency_key: str | None = None  # the tenant it is bound to (None: no tenant)


@dataclass(frozen=True, slots=True)
class Access:
    """What a token may do: its scope, narrowed by the key it is bound to (if any)."""

    scope: Scope
    concurrency_key: str | None = None

    def allows(self, method: str, path: str) -> bool:
        """Whether this token may make this request (a bound one: only ``bound_allows``)."""
        if self.concurrency_key is not None and not bound_allows(method, path):
            return False
        return allows(self.scope, method, path)


def as_scope(value: str) -> Scope:
    """A scope read back from a store (its CHECK constraint keeps it one of SCOPES)."""
    for scope in SCOPES:
        if value == scope:
            return scope
    raise ValueError(f"unknown scope {value!r}")


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token(
    scope: str, name: str | None, now: float, concurrency_key: Any = None
) -> tuple[TokenInfo, str]:
    """A fresh token and what the store keeps of it. Raises ValueError for a bad scope, name or
    key (a key is checked as a job's ``concurrency_key`` is)."""
    if concurrency_key is not None and (
        problem := concurrency_key_error(concurrency_key, ["concurrency_key"])
    ):
        raise ValueError(problem["msg"])
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    if name is None:
        name = f"{scope}-{secrets.token_hex(4)}"
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            "a token name is 1 to 100 letters, digits or _.:- and starts with a letter or digit"
        )
    token = generate()
    return TokenInfo(name, scope, hash_token(token), now, None, concurrency_key), token


def allows(scope: str, method: str, path: str) -> bool:
    """Whether a token of ``scope`` may make this request.

    ``read``: every GET. ``submit``: submit jobs and workflows, and see a job, a workflow and
    the tasks (what a producer needs to submit and follow its own work), but not list, cancel,
    retry or delete.
    ``admin``: everything.
    """
    if scope == "admin":
        return True
    if scope == "read":
        return method in _READ_METHODS
    if scope == "submit":
        if method == "POST":
            return path in ("/jobs", "/jobs/batch", "/workflows")
        if method in _READ_METHODS:
            return path == "/tasks" or _is_one_job(path) or _is_one_workflow(path)
    return False


def bound_allows(method: str, path: str) -> bool:
    """The routes a token bound to a key may reach, its scope permitting: submits (the key is
    applied to each job), the tasks, the API's description, the jobs of its key (the list, one
    job, its attempts and events, cancel, retry, delete) and its workflows (one, its cancel).
    Every other route (queues, workers, schedules, metrics, the list of workflows, bulk actions,
    the whole event stream) shows or steers every tenant: refused."""
    if method == "POST":
        if path in ("/jobs", "/jobs/batch", "/workflows") or _is_job_action(path):
            return True
        head, _, action = path.rpartition("/")
        return action == "cancel" and _is_one_workflow(head)
    if method in _READ_METHODS:
        if path in ("/tasks", "/jobs", "/openapi.json", "/docs") or path.startswith("/docs/"):
            return True
        return _is_one_job(path) or _is_job_feed(path) or _is_one_workflow(path)
    if method == "DELETE":
        return _is_one_job(path)
    return False


def shows_tracebacks(scope: str | None) -> bool:
    """Tracebacks can carry internals: only ``read`` and ``admin`` (or an open server) see them."""
    return scope is None or scope in ("read", "admin")


def _is_one_job(path: str) -> bool:
    head, _, job_id = path.rpartition("/")
    return head == "/jobs" and job_id not in ("", "batch")


def _is_one_workflow(path: str) -> bool:
    head, _, workflow_id = path.rpartition("/")
    return head == "/workflows" and workflow_id != ""


def _is_job_action(path: str) -> bool:
    head, _, action = path.rpartition("/")  # not /jobs/bulk/cancel: that is every tenant's
    return action in ("cancel", "retry") and _is_one_job(head) and head != "/jobs/bulk"


def _is_job_feed(path: str) -> bool:
    head, _, what = path.rpartition("/")
    return what in ("attempts", "events") and _is_one_job(head)
