"""Leader election: one worker at a time holds a role (such as "maintenance") by a lease.

The lease lives in the store (``try_lead``), so workers in any process or host agree. The
leader renews it every ttl/3; the others ask every ``campaign_every`` seconds, so one of them
takes over within one lease (plus that) of the leader's death. A leader that cannot renew (the
store is away, or someone else holds the lease) steps down at once, and also by its own clock
once its lease would have run out, so it never acts on a lease it may no longer hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from jobhandler.model.errors import JobHandlerError
from jobhandler.store.contract import Store

log = logging.getLogger("jobhandler.leader")


class Elector:
    def __init__(
        self,
        store: Store,
        role: str,
        holder: str,
        *,
        ttl: float,
        clock: Callable[[], float],
        campaign_every: float | None = None,
        on_elected: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.role = role
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        self.campaign_every = min(campaign_every or ttl / 3, ttl / 3)
        self.on_elected = on_elected  # so leader-only work can start at once on a win
        self._until = 0.0  # time.monotonic() at which our lease, if any, runs out

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._until

    async def run(self) -> None:
        """Campaign and renew until cancelled."""
        while True:
            leading = await self.campaign()
            await asyncio.sleep(self.ttl / 3 if leading else self.campaign_every)

    async def campaign(self) -> bool:
        """Take or renew the lease once; True while we lead."""
        asked_at = time.monotonic()  # the store counts the lease from about now, not later
        was_leading = self.leading
        try:
            won = await self.store.try_lead(self.role, self.holder, self.clock(), self.ttl)
        except JobHandlerError as exc:
            log.warning("could not take or renew the %s lease: %s", self.role, exc)
            won = False
        self._until = asked_at + self.ttl if won else 0.0
        if won and not was_leading:
            log.info("worker %s leads %s", self.holder, self.role)
            self.on_elected()
        elif was_leading and not won:
            log.warning("worker %s stepped down from %s", self.holder, self.role)
        return won

    async def resign(self) -> None:
        """Give the lease up at once (a graceful stop), so the next leader need not wait."""
        if self._until == 0.0:
            return
        self._until = 0.0
        try:
            await self.store.resign(self.role, self.holder)
        except JobHandlerError as exc:
            log.warning("could not resign %s: %s; the lease will run out", self.role, exc)
        else:
            log.info("worker %s resigned from %s", self.holder, self.role)
