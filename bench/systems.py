"""The systems measured, the workloads and their sizes (--quick and --full)."""

from __future__ import annotations

from dataclasses import dataclass

from bench import variants

FSYNC = "fsync"  # a power cut loses nothing committed
PROCESS = "process"  # survives a killed process, not a power cut (SQLite NORMAL in WAL)
MEMORY = "memory"  # Redis as run here (no RDB, no AOF): a restart loses everything


@dataclass(frozen=True)
class System:
    name: str
    module: str  # bench.adapters.<module>
    venv: str | None  # a section of requirements-peers.txt; None: the repo's .venv
    backend: str  # sqlite | redis | postgres
    # What a committed submit survives, as run here: compare only equal durabilities.
    durability: str = FSYNC
    env: tuple[tuple[str, str], ...] = ()  # added to the adapter's and the workers' environment
    only: frozenset[str] | None = None  # the workloads it takes part in; None: all

    @property
    def ours(self) -> bool:
        return self.module == "jobhandler_peer"

    @property
    def bare(self) -> bool:
        """A bare loop of one-row commits: the limit the disk or the database sets."""
        return self.module == "bare_peer"


SUBMIT_ONLY = frozenset({"submit_one", "submit_bulk"})
NORMAL = (("JOBHANDLER_SQLITE_SYNCHRONOUS", "NORMAL"),)

SYSTEMS = [
    System("jobhandler-sqlite", "jobhandler_peer", None, "sqlite"),
    System("jobhandler-sqlite-normal", "jobhandler_peer", None, "sqlite", PROCESS, NORMAL),
    System("jobhandler-postgres", "jobhandler_peer", None, "postgres"),
    System("bare-sqlite", "bare_peer", None, "sqlite", FSYNC, (), SUBMIT_ONLY),
    System("bare-sqlite-normal", "bare_peer", None, "sqlite", PROCESS, NORMAL, SUBMIT_ONLY),
    System("bare-psycopg", "bare_peer", None, "postgres", FSYNC, (), SUBMIT_ONLY),
    System("celery-redis", "celery_peer", "celery", "redis", MEMORY),
    # Celery's chord needs a result backend, which celery-redis runs without: a system of its own.
    System(
        "celery-chord-redis",
        "celery_chord_peer",
        "celery",
        "redis",
        MEMORY,
        (),
        frozenset({"workflow"}),
    ),
    System("rq-redis", "rq_peer", "rq", "redis", MEMORY),
    System("dramatiq-redis", "dramatiq_peer", "dramatiq", "redis", MEMORY),
    System("huey-sqlite", "huey_peer", "huey", "sqlite"),
    System("huey-redis", "huey_peer", "huey", "redis", MEMORY),
    System("arq-redis", "arq_peer", "arq", "redis", MEMORY),
    System("saq-redis", "saq_peer", "saq", "redis", MEMORY),
    System("procrastinate-postgres", "procrastinate_peer", "procrastinate", "postgres"),
    System("pgqueuer-postgres", "pgqueuer_peer", "pgqueuer", "postgres"),
]
BY_NAME = {s.name: s for s in SYSTEMS}

# The drain's variants right after it: their ratios are to it, so the less time between, the better.
WORKLOADS = [
    "submit_one",
    "submit_bulk",
    "drain",
    *variants.VARIANTS,
    "latency",
    "http",
    "claim_cost",
    "workflow",
]
OURS_ONLY = {"http", "claim_cost", *variants.VARIANTS}


@dataclass(frozen=True)
class Sizes:
    submit_one_n: int
    submit_bulk_n: int
    drain_n: int
    latency_n: int
    latency_rate: float
    http_seconds: int
    claim_fill: int
    claim_cycles: int
    reps: dict[str, int]
    drain_timeout: float
    workflow_n: int = 1000  # root -> N -> child, against draining N plain jobs
    drain_keys: int = 100  # drain_keyed: the drain's N jobs spread over this many keys
    workflow_timeout: float = 120.0


QUICK = Sizes(
    submit_one_n=300,
    submit_bulk_n=3000,
    drain_n=2000,
    latency_n=100,
    latency_rate=100.0,
    http_seconds=3,
    claim_fill=20_000,
    claim_cycles=300,
    reps={w: 1 for w in WORKLOADS},
    drain_timeout=60.0,
    workflow_n=1000,
    workflow_timeout=120.0,
)
FULL = Sizes(
    submit_one_n=2000,
    submit_bulk_n=20_000,
    drain_n=20_000,
    latency_n=500,
    latency_rate=100.0,
    http_seconds=10,
    claim_fill=1_000_000,
    claim_cycles=2000,
    reps={
        "submit_one": 5,
        "submit_bulk": 5,
        "drain": 3,
        **{w: 3 for w in variants.VARIANTS},
        "latency": 3,
        "http": 3,
        "claim_cost": 3,
        "workflow": 1,
    },
    drain_timeout=120.0,
    workflow_n=10_000,
    workflow_timeout=600.0,
)
