"""The time a connected App reads: on the store's timeline, whatever its host's clock says."""

from __future__ import annotations

from collections.abc import Callable


class StoreClock:
    """The host's clock (``host``: ``time.time``, or a test's own) plus how far the store's
    clock is ahead of this host's (``skew``, set while the App is connected to the store's
    ``skew``: the database's clock on PostgreSQL, measured by each new connection; 0 on
    SQLite, whose processes share one host).

    Every time a store compares was written by some host: a job's ``run_at`` by the API server
    that took it, a lease by the worker that runs it, a rate bucket's refill and a schedule's
    due time by whichever claimed or fired last. On one timeline, a worker whose clock runs 30 s
    ahead does not start a job due in 20 s at once, and one 30 s behind does not leave a due job
    waiting; the rescuer and the leader judge leases on it too.
    """

    __slots__ = ("host", "skew")

    def __init__(self, host: Callable[[], float]) -> None:
        self.host = host
        self.skew: Callable[[], float] = no_skew

    def __call__(self) -> float:
        return self.host() + self.skew()


def no_skew() -> float:
    return 0.0


def skew_of(offset: float, round_trip: float) -> float:
    """The skew to use, in whole seconds, for a measured ``offset`` (the database's clock minus
    this host's at the query's midpoint) that the ``round_trip`` makes uncertain by half of it.

    Under load a round trip can take a second, and a skew that flipped between 0 and ±1 with
    each new connection would move every time this host writes by a second, leases included.
    So an offset within a second plus that uncertainty counts as none: hosts kept in sync agree
    to far better than a lease's margin, and the skew is for hosts that are seconds off.
    """
    if abs(offset) <= 1.0 + round_trip / 2:
        return 0.0
    return float(round(offset))
