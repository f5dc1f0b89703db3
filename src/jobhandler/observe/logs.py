"""Logging: one line per job event, the API's access log, and ``--log-format text|json``.

Everything goes through the standard library's ``logging``, so an application that embeds Job
Handler keeps its own configuration; ``configure`` is what the ``jobhandler`` processes do.

Job events (observe.py) are logged by ``jobhandler.model.jobs`` with the job's fields as record
attributes (``extra``): ``event``, ``job_id``, ``task``, ``queue``, ``attempt`` and, where they
apply, ``duration``, ``wait``, ``delay``, ``error``. The text format appends them as
``key=value``; the JSON format makes each a member. Submits and starts are DEBUG (two lines
per job would drown everything else), completions and retries INFO, failures, timeouts and
rescues WARNING.

Every line is redacted (redact.py) as a whole, after formatting: the message, the job's fields,
an exception's traceback, whatever an ``extra`` carries. The access log shows which query
parameters a request had, never their values (``hide_query_values`` says why).
"""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from jobhandler.model.redact import hide_query_values, install_log_redaction, redact
from jobhandler.observe.events import Events, JobEvent, Kind
from jobhandler.settings import Settings

log = logging.getLogger("jobhandler.jobs")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
JSON_FIELDS = ("levelname", "name", "process", "message")
JSON_NAMES = {"levelname": "level", "name": "logger", "process": "pid"}
# The record attributes the text format shows after the message, in this order.
JOB_FIELDS = ("job_id", "task", "queue", "attempt", "duration", "wait", "delay", "error")

LEVELS = {
    Kind.SUBMITTED: logging.DEBUG,
    Kind.STARTED: logging.DEBUG,
    Kind.COMPLETED: logging.INFO,
    Kind.RETRIED: logging.INFO,
    Kind.CANCELLED: logging.INFO,
    Kind.INTERRUPTED: logging.WARNING,
    Kind.FAILED: logging.WARNING,
    Kind.TIMED_OUT: logging.WARNING,
    Kind.RESCUED: logging.WARNING,
}
MESSAGES = {
    Kind.SUBMITTED: "job submitted",
    Kind.STARTED: "job started",
    Kind.COMPLETED: "job completed",
    Kind.RETRIED: "job failed; retrying",
    Kind.CANCELLED: "job cancelled",
    Kind.INTERRUPTED: "job interrupted by a graceful stop: handed back, its attempt not counted",
    Kind.FAILED: "job failed",
    Kind.TIMED_OUT: "job timed out",
    Kind.RESCUED: "job rescued: its worker stopped heartbeating",
}


class TextFormatter(logging.Formatter):
    """The classic line, then the job's fields as ``key=value`` when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if not hasattr(record, "job_id"):
            return redact(line)
        pairs = " ".join(
            f"{name}={_text(value)}"
            for name in JOB_FIELDS
            if (value := getattr(record, name, None)) is not None
        )
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return redact(f"{head} {pairs}{newline}{rest}")


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    return repr(text) if any(c.isspace() or c in "\"'=" for c in text) else text


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, pid, message, then every ``extra``."""

    def __init__(self) -> None:
        # "time": ISO 8601 in UTC, the record's creation time.
        super().__init__(JSON_FIELDS, rename_fields=JSON_NAMES, timestamp="time")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # Every member as it will be written, exception and ``extra`` fields included (the
        # library formats the exception again rather than reuse the redacted ``exc_text``).
        return {k: redact(v) if isinstance(v, str) else v for k, v in log_data.items()}


class AccessFields(logging.Filter):
    """uvicorn's access records with their query values hidden, and as fields too (``client``,
    ``method``, ``path``, ``status``), read from the record's arguments as uvicorn's own
    AccessFormatter reads them. A logger's filter runs before any handler sees the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, target, version, status = args
            path = hide_query_values(str(target))
            record.args = (client, method, path, version, status)
            record.__dict__.update(client=client, method=method, path=path, status=status)
        return True


def configure(settings: Settings) -> None:
    """Set up this process's logging from ``log_level`` and ``log_format``."""
    # Before any handler exists: every record, uvicorn's included, has its passwords hidden.
    install_log_redaction()
    handler = logging.StreamHandler()
    formatter = JsonLineFormatter() if settings.log_format == "json" else TextFormatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # uvicorn's own lines ("Started server process"...) say nothing our "serving on" does not.
    logging.getLogger("uvicorn.error").setLevel(max(logging.WARNING, root.level))
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessFields) for f in access.filters):
        access.addFilter(AccessFields())


def log_job_events(events: Events) -> None:
    """Log every job event of ``events`` (at the level its kind has; see the module doc)."""
    events.subscribe(_log_event)


def _log_event(event: JobEvent) -> None:
    level = LEVELS[event.kind]
    if not log.isEnabledFor(level):  # the common case on a busy worker: nothing to build
        return
    fields = {
        "event": event.kind.value,
        "job_id": event.job_id,
        "task": event.task,
        "queue": event.queue,
        "attempt": event.attempt,
        "duration": event.duration,
        "wait": event.wait,
        "delay": event.delay,
        "error": event.error,
    }
    log.log(level, MESSAGES[event.kind], extra={k: v for k, v in fields.items() if v is not None})
