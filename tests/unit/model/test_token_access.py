"""What a token bound to a concurrency key may reach (model/tokens.py): one tenant's routes,
within its scope; every route that shows or steers all tenants refused."""

from __future__ import annotations

import pytest

from jobhandler.model.tokens import Access

ONE_TENANT = [
    ("POST", "/jobs"),
    ("POST", "/jobs/batch"),
    ("POST", "/workflows"),
    ("GET", "/jobs"),
    ("GET", "/jobs/some-id"),
    ("GET", "/jobs/some-id/attempts"),
    ("GET", "/jobs/some-id/events"),
    ("POST", "/jobs/some-id/cancel"),
    ("POST", "/jobs/some-id/retry"),
    ("DELETE", "/jobs/some-id"),
    ("GET", "/tasks"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/workflows/some-id"),
    ("POST", "/workflows/some-id/cancel"),
]
EVERY_TENANT = [
    ("POST", "/jobs/bulk/cancel"),
    ("POST", "/jobs/bulk/retry"),
    ("POST", "/jobs/bulk/delete"),
    ("GET", "/events"),
    ("GET", "/queues"),
    ("PATCH", "/queues/default"),
    ("POST", "/queues/default/pause"),
    ("GET", "/workers"),
    ("GET", "/metrics"),
    ("GET", "/schedules"),
    ("GET", "/workflows"),
]


@pytest.mark.parametrize(("method", "path"), ONE_TENANT)
def test_a_bound_admin_reaches_its_tenants_routes(method: str, path: str) -> None:
    assert Access("admin", "acme").allows(method, path)


@pytest.mark.parametrize(("method", "path"), EVERY_TENANT)
def test_a_bound_token_never_reaches_every_tenants_routes(method: str, path: str) -> None:
    assert Access("admin").allows(method, path)  # unbound, the same scope may
    assert not Access("admin", "acme").allows(method, path)


def test_the_scope_still_applies_to_a_bound_token() -> None:
    submit = Access("submit", "acme")
    assert submit.allows("POST", "/jobs") and submit.allows("GET", "/jobs/x")
    assert not submit.allows("POST", "/jobs/x/cancel") and not submit.allows("GET", "/jobs")
    read = Access("read", "acme")
    assert read.allows("GET", "/jobs") and not read.allows("POST", "/jobs")
