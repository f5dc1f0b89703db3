"""Settings, read once at start (flags and ``JOBHANDLER_*`` variables) and passed explicitly."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    """Everything a process needs to know. The CLI builds one; Python users may too."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = "sqlite:///jobhandler.db"
    app: str = "jobhandler.demo:app"  # module:attribute of the App, also used by process runners
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    host: str = "127.0.0.1"
    port: int = 8080
    # Workers
    queues: tuple[str, ...] = ()  # empty: every queue the app's tasks use
    concurrency: int = Field(default=100, ge=1)  # jobs one worker runs at once
    # ... of which at most this many in child processes (isolation="process"): one per core.
    process_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    poll_interval: float = Field(default=1.0, gt=0)  # the longest a worker waits before looking
    lease: float = Field(default=30.0, gt=0)
    heartbeat_interval: float = Field(default=10.0, gt=0)
    cancel_check_interval: float = Field(default=0.5, gt=0)
    rescue_interval: float = Field(default=5.0, gt=0)
    shutdown_timeout: float = Field(default=30.0, ge=0)
    prune_interval: float = Field(default=60.0, gt=0)
    keep_completed: float = Field(default=7 * 86400, ge=0)  # seconds a completed job is kept
    keep_failed: float = Field(default=30 * 86400, ge=0)  # ... and a failed or cancelled one
    thread_cancel_grace: float = Field(default=1.0, ge=0)
    completion_flush_interval: float = Field(default=0.005, ge=0)
    # HTTP: limits on what one request may send or cost (docs/security.md)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_payload_bytes: int = Field(default=1024 * 1024, ge=1)  # a payload as compact JSON
    max_json_depth: int = Field(default=64, ge=1, le=1000)  # nesting of a payload or body
    max_page_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # a list page ends early
    max_connections: int = Field(default=1000, ge=1)  # concurrent; more get 503
    keep_alive: float = Field(default=5.0, gt=0)  # seconds an idle connection is kept open
    # HTTP: who may reach the API
    insecure_no_auth: bool = False  # allow a non-loopback bind with no token in the store
    allowed_hosts: tuple[str, ...] = ()  # empty: the loopback names when bound to loopback
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API from a browser
    # Stores
    migrate_on_start: bool = True
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    listen: bool = True  # PostgreSQL LISTEN/NOTIFY wake-ups; off behind transaction poolers

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
        scheme = url.partition("://")[0] if "://" in url else "sqlite"
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(
                f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://"
            )
        return url


# Variables that hold secrets: a process drops them from its environment once it has read its
# settings, so task code and the child processes it starts never see them.
SECRET_VARIABLES = ("JOBHANDLER_DATABASE_URL", "JOBHANDLER_TOKEN", "JOBHANDLER_SETTINGS_JSON")


def scrub_environment() -> None:
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)
