"""Settings, read once at start (flags and ``JOBHANDLER_*`` variables) and passed explicitly.

Each setting is declared here once: its type, default, bounds and description, and (in an
``Option`` beside its type) which commands take it. The CLI generates its options from this,
so a flag, its variable, its bounds and its ``--help`` line cannot drift from the setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.fields import FieldInfo

PREFIX = "JOBHANDLER_"
# PostgreSQL connections per pool of tasks' ctx.transaction() (store/postgres/tasktx.py): as many
# as the store's own pool. Not the worker's concurrency (100 by default): two workers would ask
# for more sessions than PostgreSQL's default max_connections of 100.
TASK_CONNECTIONS = 10

# Which commands take a setting: "store" every command that opens the store (serve, worker,
# migrate, token ...); "worker" serve and worker (serve runs a worker too); "serve" serve only.
Group = Literal["store", "worker", "serve"]


@dataclass(frozen=True)
class Option:
    """How a setting is given on the command line: ``Annotated`` metadata of its field."""

    group: Group
    flag: str | None = None  # default: --field-name
    default_shown: str | None = None  # for a default that is empty, or computed where it runs


STORE, WORKER, SERVE = Option("store"), Option("worker"), Option("serve")


def variable(name: str) -> str:
    """The environment variable of the setting ``name``."""
    return PREFIX + name.upper()


class Settings(BaseModel):
    """Everything a process needs to know. The CLI builds one; Python users may too."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: Annotated[str, Option("store", flag="--database")] = Field(
        default="sqlite:///jobhandler.db",
        description="sqlite:///FILE, sqlite:////ABSOLUTE/FILE or postgresql://user@host/db.",
        repr=False,  # a Settings printed or logged does not show the store URL
    )
    app: Annotated[str, STORE] = Field(
        default="jobhandler.demo:app",
        description="The App to load, as module:attribute (child processes load it too).",
    )
    log_level: Annotated[Literal["debug", "info", "warning", "error"], STORE] = Field(
        default="info", description="The least severe log records shown."
    )
    log_format: Annotated[Literal["text", "json"], STORE] = Field(
        default="text", description="Log lines as text, or one JSON object per line."
    )
    host: Annotated[str, SERVE] = Field(
        default="127.0.0.1", description="The address serve listens on."
    )
    port: Annotated[int, SERVE] = Field(
        default=8080, ge=0, le=65535, description="The port it listens on."
    )
    # Workers
    queues: Annotated[
        tuple[str, ...], Option("worker", default_shown="every queue of the tasks")
    ] = Field(default=(), description="Comma-separated queues the worker serves.")
    concurrency: Annotated[int, WORKER] = Field(
        default=100, ge=1, description="Jobs one worker runs at once."
    )
    process_concurrency: Annotated[int, Option("worker", default_shown="one per core")] = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description='Of those, the most run at once in child processes (isolation="process").',
    )
    process_max_jobs: Annotated[int, WORKER] = Field(
        default=100, ge=1, description="Jobs a warm child process runs before it is replaced."
    )
    loop_block_threshold: Annotated[float, WORKER] = Field(
        default=1.0,
        ge=0,
        description="Warn when an async task blocks the event loop this many seconds (0: off).",
    )
    metrics_port: Annotated[int, Option("worker", default_shown="off")] = Field(
        default=0,
        ge=0,
        le=65535,
        description="Serve a worker's Prometheus metrics on this port (--processes N: N ports).",
    )
    metrics_host: Annotated[str, WORKER] = Field(
        default="127.0.0.1", description="The address the metrics port listens on."
    )
    poll_interval: Annotated[float, WORKER] = Field(
        default=1.0,
        gt=0,
        description="Seconds an idle worker waits at most before it looks for jobs.",
    )
    lease: Annotated[float, WORKER] = Field(
        default=30.0, gt=0, description="Seconds a claim lasts without a heartbeat."
    )
    heartbeat_interval: Annotated[float, WORKER] = Field(
        default=10.0, gt=0, description="Seconds between a worker's lease renewals."
    )
    cancel_check_interval: Annotated[float, WORKER] = Field(
        default=0.5, gt=0, description="Seconds between a worker's looks for cancel requests."
    )
    rescue_interval: Annotated[float, WORKER] = Field(
        default=5.0, gt=0, description="Seconds between looks for expired leases."
    )
    shutdown_timeout: Annotated[float, WORKER] = Field(
        default=30.0, ge=0, description="Seconds running jobs get to finish on SIGTERM."
    )
    prune_interval: Annotated[float, WORKER] = Field(
        default=60.0, gt=0, description="Seconds between prunes of old finished jobs."
    )
    keep_completed: Annotated[float, WORKER] = Field(
        default=7 * 86400, ge=0, description="Seconds a completed job is kept before it is pruned."
    )
    keep_failed: Annotated[float, WORKER] = Field(
        default=30 * 86400, ge=0, description="Seconds a failed or cancelled job is kept."
    )
    keep_idempotency_keys: Annotated[float, WORKER] = Field(
        default=86400, ge=0, description="Seconds a submit's Idempotency-Key is remembered."
    )
    schedule_grace: Annotated[float, WORKER] = Field(
        default=60.0,
        ge=0,
        description="Seconds late a periodic run may start; older due times count as missed.",
    )
    thread_cancel_grace: Annotated[float, WORKER] = Field(
        default=1.0,
        ge=0,
        description="Seconds a stopped thread or process run gets before it is let go.",
    )
    # HTTP: limits on what one request may send or cost (docs/security.md)
    max_body_bytes: Annotated[int, SERVE] = Field(
        default=1024 * 1024, ge=1, description="Larger request bodies get 413."
    )
    max_payload_bytes: Annotated[int, SERVE] = Field(
        default=1024 * 1024, ge=1, description="Larger payloads (as compact JSON) get 422."
    )
    max_json_depth: Annotated[int, SERVE] = Field(
        default=64, ge=1, le=1000, description="Deeper nesting in a payload or body gets 422."
    )
    max_page_bytes: Annotated[int, SERVE] = Field(
        default=4 * 1024 * 1024, ge=1024, description="A list page ends early past this size."
    )
    # The flag's name is older than its meaning: requests are counted, not connections.
    max_connections: Annotated[int, SERVE] = Field(
        default=1000, ge=1, description="Requests in progress at once (not streams); more get 503."
    )
    max_streams: Annotated[int, SERVE] = Field(
        default=1000, ge=1, description="Event streams open at once; more get 503."
    )
    keep_alive: Annotated[float, SERVE] = Field(
        default=5.0, gt=0, description="Seconds an idle connection stays open."
    )
    header_timeout: Annotated[float, SERVE] = Field(
        default=10.0,
        gt=0,
        description="Seconds to send a whole request head; slower clients are cut off.",
    )
    body_timeout: Annotated[float, SERVE] = Field(
        default=10.0, gt=0, description="Seconds a request body may stall before it gets 408."
    )
    # HTTP: who may reach the API
    insecure_no_auth: Annotated[bool, SERVE] = Field(
        default=False, description="Serve on a non-loopback address with no API token in the store."
    )
    allowed_hosts: Annotated[
        tuple[str, ...], Option("serve", default_shown="loopback names if bound to loopback")
    ] = Field(default=(), description="Comma-separated Host names the API answers (else any).")
    cors_origins: Annotated[tuple[str, ...], Option("serve", default_shown="none")] = Field(
        default=(), description="Comma-separated browser origins allowed to call the API."
    )
    # Stores
    migrate_on_start: Annotated[bool, WORKER] = Field(
        default=True, description="Create or upgrade the store's schema as the process starts."
    )
    sqlite_synchronous: Annotated[Literal["OFF", "NORMAL", "FULL", "EXTRA"], STORE] = Field(
        default="FULL",
        description="SQLite durability: FULL survives power loss, NORMAL only crashes.",
    )
    sqlite_reserve_bytes: Annotated[int, STORE] = Field(
        default=8 * 1024 * 1024,
        ge=0,
        description="Disk kept free beside a SQLite file, so that cancel, delete and prune"
        " work on a full disk (0: none).",
    )
    listen: Annotated[bool, STORE] = Field(
        default=True,
        description="PostgreSQL LISTEN/NOTIFY wake-ups; off behind transaction poolers.",
    )
    task_connections: Annotated[int, WORKER] = Field(
        default=TASK_CONNECTIONS,
        ge=1,
        description="PostgreSQL: connections kept for tasks' ctx.transaction() (as many again"
        " for thread tasks'); more tasks wait their turn.",
    )

    @field_validator("allowed_hosts", "cors_origins", "queues", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """A comma-separated string (a flag or a variable) is a list too."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        return database_url(url)


_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_URL_FORMS = "sqlite:///FILE (relative), sqlite:////ABSOLUTE/FILE or postgresql://USER@HOST/DB"


def database_url(url: str) -> str:
    """The one parser of a store URL (``--database``, ``JOBHANDLER_DATABASE_URL``, Settings).

    ``sqlite:///jobs.db`` is a file here, ``sqlite:////var/jobs.db`` an absolute one;
    ``postgresql://``, ``postgres://`` (what hosting providers hand out) and SQLAlchemy's
    ``postgresql+psycopg://`` are one PostgreSQL URL. Anything else is refused with one line
    that says what would do, a bare name included: it used to become a new SQLite file named
    after it, silently. An in-memory SQLite database is refused too: the server, its workers
    and the store's own threads each open a connection, and each would see its own database.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"{url!r} is not a database URL: use {_URL_FORMS}")
    if scheme.lower() in _POSTGRES_SCHEMES:
        return f"postgresql://{rest}"
    if scheme.lower() != "sqlite":
        raise ValueError(f"unsupported database URL {url!r}: use {_URL_FORMS}")
    path = rest[1:] if rest.startswith("/") else None
    if not path:
        raise ValueError(f"{url!r} names no file: a SQLite URL has three slashes, sqlite:///FILE")
    if path == ":memory:" or path.startswith("file::memory:"):
        raise ValueError(
            "an in-memory SQLite database cannot be shared by the server, its workers and the"
            " store's threads: use a file, sqlite:///FILE"
        )
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Declared:
    """One setting as declared: what the CLI (and its docs) are generated from."""

    name: str
    field: FieldInfo
    option: Option

    @property
    def flag(self) -> str:
        return self.option.flag or "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return variable(self.name)

    @property
    def default(self) -> Any:
        return self.field.get_default(call_default_factory=False)


def declared(model: type[BaseModel] = Settings) -> list[Declared]:
    """Every setting, in declaration order. Each must say how the command line takes it."""
    found = []
    for name, field in model.model_fields.items():
        options = [m for m in field.metadata if isinstance(m, Option)]
        if len(options) != 1:
            raise TypeError(f"setting {name!r} needs one Option (its commands) beside its type")
        if field.default_factory is not None and options[0].default_shown is None:
            raise TypeError(f"setting {name!r}: say in default_shown what its default will be")
        found.append(Declared(name, field, options[0]))
    return found
