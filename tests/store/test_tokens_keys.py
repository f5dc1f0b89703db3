"""API tokens bound to a concurrency key, and the pruning of per-key rate buckets, on a real
SQLite file and a real PostgreSQL (docs/tenants.md, "Tokens bound to a tenant")."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

import psycopg
import pytest

from jobhandler.model.records import FlowLimit
from jobhandler.model.tokens import Access
from jobhandler.service.tokens import Tokens
from jobhandler.store import Store
from tests.store.test_contract import NOW
from tests.store.test_keys import KEYS, keyed, take

HOSTILE_KEYS: list[Any] = ["", "a\x00b", "a\udc80b", "k" * 256, 7, ["acme"], True]


async def test_a_bound_token_keeps_its_key_and_a_plain_one_none(store: Store) -> None:
    tokens = Tokens(store, lambda: NOW)
    bound, secret = await tokens.create("submit", "acme-producer", "acme ünïcode")
    plain, _ = await tokens.create("admin", "ops")
    assert secret.startswith("jh_") and bound.concurrency_key == "acme ünïcode"
    listed = {t.name: t.concurrency_key for t in await tokens.all()}
    assert listed == {"acme-producer": "acme ünïcode", "ops": None}
    assert await tokens.known() == {
        bound.hash: Access("submit", "acme ünïcode"),
        plain.hash: Access("admin", None),
    }


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=repr)
async def test_a_bad_key_is_refused_and_nothing_stored(store: Store, key: Any) -> None:
    tokens = Tokens(store, lambda: NOW)
    with pytest.raises(ValueError, match=r"concurrency key|NUL|Unicode"):
        await tokens.create("submit", "t", key)
    assert await tokens.all() == []


async def test_a_full_key_bucket_is_pruned_and_a_spent_one_kept(
    store: Store, database_url: str
) -> None:
    await store.insert_jobs([keyed(k) for k in ("a", "b") for _ in range(10)], NOW)
    await store.set_limits(FlowLimit("queue", "default", key_rate_limit="2/s"), NOW, KEYS)
    assert Counter(await take(store, 20)) == {"a": 2, "b": 2}  # both buckets spent
    assert bucket_rows(database_url) == 2
    assert await store.prune_keys(NOW + 0.5, 0, 100) == 0  # half full: still needed
    assert Counter(await take(store, 20, now=NOW + 0.5)) == {"a": 1, "b": 1}
    assert await store.prune_keys(NOW + 0.9, 0, 100) == 0
    assert await store.prune_keys(NOW + 2, 0, 100) == 2  # full again: the same as no row
    assert bucket_rows(database_url) == 0
    # A key whose bucket went starts full, as a key first seen does.
    assert Counter(await take(store, 20, now=NOW + 2)) == {"a": 2, "b": 2}


async def test_buckets_go_in_batches_and_with_their_limit(store: Store, database_url: str) -> None:
    await store.insert_jobs([keyed(f"k{i}") for i in range(5)], NOW)
    await store.set_limits(FlowLimit("queue", "default", key_rate_limit="1/h"), NOW, KEYS)
    assert len(await take(store, 5)) == 5
    assert await store.prune_keys(NOW + 60, 0, 100) == 0  # an hour to refill
    await store.set_limits(FlowLimit("queue", "default", key_rate_limit=None), NOW, KEYS)
    assert await store.prune_keys(NOW + 60, 0, 2) == 2  # no key rate limit: none is needed
    assert await store.prune_keys(NOW + 60, 0, 2) == 2
    assert await store.prune_keys(NOW + 60, 0, 2) == 1
    assert bucket_rows(database_url) == 0


def bucket_rows(database_url: str) -> int:
    """The key_buckets rows, read beside the store: whether pruning left the table small."""
    query = "SELECT count(*) FROM key_buckets"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return int(db.execute(query).fetchone()[0])
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])
