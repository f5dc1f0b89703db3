"""What ``redact`` hides: every form a password, token or store URL takes in a log line or an
error, and nothing that is not one."""

from __future__ import annotations

import json
import logging

import pytest

from jobhandler.model.redact import hide_query_values, redact
from jobhandler.settings import Settings

SECRET = "pw-9f3k"


@pytest.mark.parametrize(
    "text",
    [
        # Python reprs and JSON of settings or connection parameters
        f"connect({{'password': '{SECRET}', 'user': 'u'}})",
        f'{{"password": "{SECRET}", "user": "u"}}',
        f'{{"db_password":"{SECRET}"}}',
        f"{{'client_secret': '{SECRET}'}}",
        f"{{'api_key': '{SECRET}'}}",
        f'{{"token": "{SECRET}"}}',
        f"{{'password': 'it\\'s {SECRET}'}}",
        # environment forms
        f"PGPASSWORD={SECRET} psql",
        f"export GITHUB_TOKEN={SECRET}",
        f"AWS_SECRET_ACCESS_KEY={SECRET}",
        f"MY_APP_SECRET={SECRET};",
        f"REDIS_PASSWORD='{SECRET} x'",
        f"JOBHANDLER_DATABASE_URL=postgresql://u@h/{SECRET}",
        f"DATABASE_URL=sqlite:///{SECRET}.db",
        # URLs: a raw '/' or '@' in the password, no '@' at all, a query parameter
        f"postgresql://u:{SECRET}/x@h/db",
        f"postgresql://u:a@{SECRET}@h/db",
        f"postgresql://u:{SECRET}",
        f"https://api.example/v1?api_key={SECRET}&page=2",
        f"GET /jobs?token={SECRET} HTTP/1.1",
        # headers and Job Handler tokens
        f"Authorization: Bearer {SECRET}",
        f"{{'authorization': 'Bearer {SECRET}'}}",
        "sent jh_" + "A" * 43,
    ],
)
def test_every_form_of_secret_is_hidden(text: str) -> None:
    shown = redact(text)
    assert SECRET not in shown and "A" * 43 not in shown, shown
    assert "***" in shown
    assert redact(shown) == shown  # redacting twice changes nothing


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"{{'password': '{SECRET}', 'user': 'u'}}", "{'password': '***', 'user': 'u'}"),
        (f'{{"password": "{SECRET}"}}', '{"password": "***"}'),
        (f"PGPASSWORD={SECRET} psql", "PGPASSWORD=*** psql"),
        (f"postgresql://u:{SECRET}/x@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("Authorization: Bearer abc", "Authorization: Bearer ***"),
    ],
)
def test_a_secret_is_replaced_in_place(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8080/jobs/abc?status=failed&limit=10",
        "postgresql://postgres@127.0.0.1:5432/db",
        "job completed job_id=0190 task=send queue=default attempt=1 duration=0.010",
        "{'status': 'queued', 'tokens_used': 3, 'author': 'ann'}",
        "PWD=/home/ann HOME=/home/ann",
        "connecting to [::1]:5432",
    ],
)
def test_text_without_secrets_is_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/jobs?token=" + SECRET, "/jobs?token=***"),
        ("/jobs?status=failed&" + SECRET, "/jobs?status=***&***"),
        ("/jobs", "/jobs"),
        ("/jobs?", "/jobs?"),
    ],
)
def test_query_values_are_hidden(path: str, shown: str) -> None:
    assert hide_query_values(path) == shown


def test_the_settings_repr_shows_no_store_url() -> None:
    settings = Settings(database_url=f"postgresql://u:{SECRET}@h/db")
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert json.loads(settings.model_dump_json())["database_url"].endswith("@h/db")  # still held


def test_a_log_record_is_redacted_in_every_part(caplog: pytest.LogCaptureFixture) -> None:
    from jobhandler.model.redact import install_log_redaction

    install_log_redaction()
    log = logging.getLogger("test_redact")
    with caplog.at_level(logging.INFO):
        try:
            raise ValueError({"password": SECRET})
        except ValueError:
            log.exception("failed with %s", {"password": SECRET})
    (record,) = caplog.records
    assert SECRET not in record.getMessage()
    assert record.exc_text is not None and SECRET not in record.exc_text


def test_a_format_string_is_left_as_written(caplog: pytest.LogCaptureFixture) -> None:
    from jobhandler.model.redact import install_log_redaction

    install_log_redaction()
    log = logging.getLogger("test_redact")
    with caplog.at_level(logging.INFO):
        log.info("serving on http://%s:%d", "127.0.0.1", 8080)
        log.info("PGPASSWORD=%s", SECRET)
    assert [r.getMessage() for r in caplog.records] == [
        "serving on http://127.0.0.1:8080",
        "PGPASSWORD=***",
    ]
