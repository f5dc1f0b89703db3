"""Text the API shows or a process logs never carries a password, and always fits in a store.

``redact`` hides passwords in URLs (``scheme://user:password@host`` → ``scheme://user:***@host``)
and in libpq connection strings (``password=...`` → ``password=***``): driver errors and task
tracebacks may quote the store URL. ``storable`` makes text that a task produced (an error
message, a traceback) writable to both stores: PostgreSQL text cannot hold NUL, and neither
store can encode a lone surrogate. ``install_log_redaction`` applies ``redact`` to every log
record the process makes, whichever handler writes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

MASK = "***"

# The userinfo password of a URL: up to the last '@' before the path, as URL parsers read it,
# but never across whitespace or quotes (so two URLs in one message stay apart).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@'\"]*:)[^\s/'\"]*(?=@)")
# libpq key/value form: password=secret, password = 'se cret' (quotes may hold escapes).
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s'\"&]+)", re.IGNORECASE
)
# What no store can hold: NUL (PostgreSQL text) and lone surrogates (neither encodes them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def redact(text: str) -> str:
    """``text`` with passwords in URLs and in ``password=`` settings replaced by ``***``."""
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    if "=" in text:
        text = _KEYWORD_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return text


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD, so either store can write it."""
    return _UNSTORABLE.sub("\ufffd", text)


def clean(text: str) -> str:
    """An error message or traceback as it may be stored and shown: redacted and storable."""
    return storable(redact(text))


# -- logging ---------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Rewrites a record so that no handler can print a password from it. Never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact_arg(record.msg)  # usually a str; an exception logged as is, too
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            # Formatted here, once, so every formatter uses this redacted text (they reuse
            # ``exc_text`` when it is set).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_arg(value: Any) -> Any:
    """An argument as it was unless its text holds a password (keeps %d and friends working)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    hidden = redact(text)
    return value if hidden == text else hidden


def install_log_redaction() -> None:
    """Redact every record this process logs from now on.

    A filter on the root logger's handlers would miss handlers configured later, such as
    uvicorn's own, so the filter runs where records are made: in the record factory.
    """
    factory = logging.getLogRecordFactory()
    if isinstance(factory, _RedactingFactory):
        return
    logging.setLogRecordFactory(_RedactingFactory(factory))


class _RedactingFactory:
    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner
        self.filter = RedactingFilter()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        self.filter.filter(record)
        return record


__all__ = ["MASK", "RedactingFilter", "clean", "install_log_redaction", "redact", "storable"]
