"""The PostgreSQL dialect's LISTEN: one dedicated connection outside the pool, as LISTEN lasts
as long as the session, reconnected with a backoff whenever it is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger("jobhandler.store.postgres")

SUBMIT_CHANNEL = "jobhandler_jobs"
CANCEL_CHANNEL = "jobhandler_cancel"
CHECK_TIMEOUT = 5  # seconds a quiet link has to answer its check before it counts as lost
LISTEN_CHECK = 30.0  # seconds without a notification before the listener checks its connection
LISTEN_BACKOFF = (0.1, 10.0)  # first and longest wait before reconnecting the listener


async def listen_forever(
    url: str,
    connect_args: dict[str, Any],
    on_submit: Callable[[], None],
    on_cancel: Callable[[str], None],
) -> None:
    """Deliver the notifications of both channels to the callbacks until cancelled."""
    delay, longest = LISTEN_BACKOFF
    while True:
        try:
            # Its own connection, not a pooled one: LISTEN lasts as long as the session.
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, **connect_args
            ) as conn:
                await conn.execute(f"LISTEN {SUBMIT_CHANNEL}")
                await conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                delay = LISTEN_BACKOFF[0]
                # Whatever was submitted while nobody listened went unheard: look now.
                _call(on_submit)
                while True:
                    async for note in conn.notifies(timeout=LISTEN_CHECK):
                        if note.channel == CANCEL_CHANNEL:
                            _call(on_cancel, note.payload)
                        else:
                            _call(on_submit)
                    # Quiet for a while: a round trip shows whether the link is still there.
                    async with asyncio.timeout(CHECK_TIMEOUT):
                        await conn.execute("SELECT 1")
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("listen connection lost (%s); reconnecting in %.1fs", exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, longest)


def _call(callback: Callable[..., None], *args: Any) -> None:
    """Run a wake-up callback; its failure must not take the listener down."""
    try:
        callback(*args)
    except Exception:
        log.exception("wake-up callback %r failed", callback)
