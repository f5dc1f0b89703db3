"""Text the API shows or a process logs never carries a secret, and always fits in a store.

``redact`` hides every form a secret takes in a message: the password of a URL
(``scheme://user:password@host`` → ``scheme://user:***@host``, a raw ``/`` or ``@`` in it
included, and ``scheme://user:password`` with no host), the value of any setting whose name
says it is a secret, however it is written (``password=...``, ``PGPASSWORD=...``,
``GITHUB_TOKEN=...``, ``{'api_key': '...'}``, ``{"password": "..."}``, ``?token=...``,
``JOBHANDLER_DATABASE_URL=...``), ``Bearer``/``Basic`` credentials, and Job Handler tokens
(``jh_...``) wherever they stand. Driver errors, task tracebacks and the environment a task
prints can hold any of these. ``hide_query_values`` hides every value of a request's query
string (the access log's). ``storable`` makes text that a task produced (an error message, a
traceback) writable to both stores: PostgreSQL text cannot hold NUL, and neither store can
encode a lone surrogate. ``install_log_redaction`` applies ``redact`` to every log record the
process makes, whichever handler writes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

MASK = "***"

# The userinfo password of a URL: up to the last '@' before whitespace or a quote, '/' and
# '@' included (a password with a raw '/' is still a password), so two URLs in one message
# stay apart. Over-hiding "host:8080/a@b" is the price of never showing "user:pa/ss@host".
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@'\"]*:)[^\s'\"]*(?=@)")
# The same with no '@' after it ("postgresql://user:password", a message cut short): anything
# after the colon but a port number.
_URL_PASSWORD_NO_HOST = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@'\"]*:)(?!\d+(?:[/\s'\"]|$))[^\s/:@'\"]+"
    r"(?=[/\s'\"]|$)",
    re.MULTILINE,
)
# A value given under a name that ends in a word for a secret, in every notation a message uses:
# key=value (libpq, environment, query strings), key: value (headers), Python reprs and JSON
# ({'password': '...'}, {"api_key": "..."}). The name's start is not read: PGPASSWORD,
# db_password and X-Api-Key all end in one. A quoted value keeps its quotes (JSON stays JSON).
# The names of secrets, to hide their values (bandit's B105 takes the pattern for a password).
_SECRET_NAME = (  # nosec B105
    r"(?:pass(?:word|wd)|secret|token|key|auth(?:orization)?|credentials?|signature|sig"
    r"|cookie|session(?:[_-]?id)?|dsn|database[_-]?url)"
)
_SECRET_SETTING = re.compile(
    rf"(?P<head>{_SECRET_NAME}[\"']?\s*[:=]\s*(?!=)(?:(?:Bearer|Basic)\s+)?)"
    r"(?:(?P<quote>[\"'])(?:\\.|(?!(?P=quote))[^\\\n])*(?:(?P=quote)|$)|[^\s'\"&,;}\])]+)",
    re.IGNORECASE | re.MULTILINE,
)
# Credentials in an Authorization header, and Job Handler's own tokens wherever they stand.
_SECRET_KEY = re.compile(rf"{_SECRET_NAME}$", re.IGNORECASE)  # a mapping's key that names one
_AUTH_SCHEME = re.compile(r"\b(?P<head>(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+")
_JOBHANDLER_TOKEN = re.compile(r"(?<![\w-])(?P<head>jh_)[\w-]{40,}")
# What no store can hold: NUL (PostgreSQL text) and lone surrogates (neither encodes them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def redact(text: str) -> str:
    """``text`` with every secret it holds (see the module doc) replaced by ``***``."""
    if "://" in text:
        text = _URL_PASSWORD.sub(_keep_head, text)
        text = _URL_PASSWORD_NO_HOST.sub(_keep_head, text)
    if "=" in text or ":" in text:
        text = _SECRET_SETTING.sub(_hide_value, text)
    if "Bearer" in text or "Basic" in text:
        text = _AUTH_SCHEME.sub(_keep_head, text)
    if "jh_" in text:
        text = _JOBHANDLER_TOKEN.sub(_keep_head, text)
    return text


def _keep_head(match: re.Match[str]) -> str:
    return match["head"] + MASK


def _hide_value(match: re.Match[str]) -> str:
    quote = match["quote"] or ""
    return match["head"] + quote + MASK + quote


def hide_query_values(target: str) -> str:
    """A request target with every query value hidden (``/jobs?token=***&status=***``).

    The API takes no secret in a query string, but a client can put one there (a token in
    ``?token=``, an API key a proxy expects), and the server cannot tell it from a filter: so
    the access log keeps which parameters a request had, and none of their values. A bare item
    (``?abc``) is hidden whole.
    """
    path, mark, query = target.partition("?")
    if not query:
        return target
    return path + mark + "&".join(_hide_pair(pair) for pair in query.split("&"))


def _hide_pair(pair: str) -> str:
    name, equals, _ = pair.partition("=")
    return f"{name}={MASK}" if equals else (MASK if pair else pair)


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
        if not record.args:
            record.msg = _redact_arg(record.msg)  # usually a str; an exception logged as is, too
        else:
            # A format string is left as written ("http://%s:%d" is no password), its arguments
            # redacted one by one, so handlers that read them (the access log's) still can.
            _redact_args(record)
        if record.exc_info and not record.exc_text:
            # Formatted here, once, so every formatter uses this redacted text (they reuse
            # ``exc_text`` when it is set).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_args(record: logging.LogRecord) -> None:
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(a) for a in record.args)
    elif isinstance(record.args, dict):  # log("%s", {...}) or log("%(name)s", {...})
        record.args = {
            k: MASK if _SECRET_KEY.search(str(k)) else _redact_arg(v)
            for k, v in record.args.items()
        }
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a bad format: logging reports it, with what it has
        return
    hidden = redact(message)
    if hidden != message:  # a secret split between the format and its arguments: "pw=%s"
        record.msg, record.args = hidden, None


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


__all__ = [
    "MASK",
    "RedactingFilter",
    "clean",
    "hide_query_values",
    "install_log_redaction",
    "redact",
    "storable",
]
