"""A worker that starts again on the same machine rescues its dead predecessors' jobs at once.

After a ``kill -9`` or a crash the registry still lists the old worker, and its running jobs
would wait a whole lease for the rescuer. A new worker can often tell that the old process is
gone for sure: same machine incarnation (boot, PID namespace), and its pid no longer names a
process, or names one that started after the old worker did (the pid was reused). Those jobs are
rescued at once, through the rescuer's own fenced path. Anything less certain (another host,
another container, no /proc) is left to the lease, as before.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jobhandler.app import App
from jobhandler.model.records import WorkerInfo
from jobhandler.worker.maintenance import Rescuer

log = logging.getLogger("jobhandler.worker")

_PROC = Path("/proc")


def incarnation() -> str | None:
    """This boot of this machine and this PID namespace, or None where it cannot be told."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat(_PROC / "self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot}:{namespace}"


def _boot_time() -> float | None:
    try:
        for line in (_PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _started_at(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if there is none."""
    boot = _boot_time()
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    if boot is None:
        return None
    # Field 22, counted after the command name, which may itself hold spaces and parentheses.
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def is_gone(other: WorkerInfo, me: WorkerInfo) -> bool:
    """True only when ``other``'s process has certainly ended."""
    if other.id == me.id or other.incarnation is None or other.incarnation != me.incarnation:
        return False
    started = _started_at(other.pid)
    # A process that started after the worker registered cannot be it: the pid was reused.
    # (One second of slack: /proc counts in clock ticks, the registry in wall-clock time.)
    return started is None or started > other.started_at + 1.0


async def rescue_predecessors(app: App, rescuer: Rescuer, me: WorkerInfo) -> int:
    """Rescue the running jobs of every registered worker of this machine that is gone."""
    rescued = 0
    for other in await app.service.store.list_workers():
        if not is_gone(other, me):
            continue
        now = app.clock()
        orphans = await app.service.store.expire_leases_of(other.id, now)
        rescued += await rescuer.rescue(orphans, now)
        await app.service.store.deregister_worker(other.id)
        log.warning(
            "worker %s (pid %d) is gone: rescued its %d running jobs",
            other.id,
            other.pid,
            len(orphans),
        )
    return rescued
