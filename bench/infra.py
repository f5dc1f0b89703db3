"""Where the benchmark keeps its files, and the processes and stores it runs: every process in
its own process group and stopped for sure, a fresh database for every repetition, the peers'
virtualenvs. Standard library only, like bench/run.py, which these serve."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.errors import BenchError

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENVS = BENCH / ".venvs"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
REQUIREMENTS = BENCH / "requirements-peers.txt"
ADAPTER = BENCH / "adapters" / "adapter.py"

# BENCH_REDIS_DB: another database number, when another run shares this Redis (each run
# empties its database before and after every measurement).
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "12"))
# BENCH_PG_PORT points every run at another server of 127.0.0.1 (the hour's soak uses one with
# PostgreSQL's default settings, autovacuum on, which this machine's shared server turns off).
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-p", PG_PORT, "-U", "postgres", "-d", "postgres"]
PG_URL = "postgresql://postgres@127.0.0.1:" + PG_PORT + "/{db}"

# -- processes: every one in its own process group, stopped for sure ------------------------------

LIVE: dict[int, subprocess.Popen[bytes]] = {}


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOBHANDLER_", "BENCH_", "PG", "CELERY_", "PROCRASTINATE_"))
        and k not in {"VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP"}
    }
    # BENCH_SRC: another copy of src/ to measure instead (a before/after of one change).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("BENCH_SRC"), str(ROOT)]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    LIVE[proc.pid] = proc
    return proc


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after ``grace`` seconds."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    LIVE.pop(proc.pid, None)


def stop_all() -> None:
    for proc in list(LIVE.values()):
        stop(proc, grace=3.0)


def run(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run to completion within ``timeout`` seconds (its whole process group is killed after)."""
    proc = subprocess.Popen(
        argv,
        env=env or clean_env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    LIVE[proc.pid] = proc  # type: ignore[assignment]
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BenchError(f"timed out after {timeout:g}s: {' '.join(argv[:4])}") from None
    finally:
        LIVE.pop(proc.pid, None)
        with contextlib.suppress(ProcessLookupError):  # anything it left behind
            os.killpg(proc.pid, signal.SIGKILL)
    result = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        tail = (err or out).strip().splitlines()[-6:]
        raise BenchError(f"{' '.join(argv[:4])} exited {proc.returncode}: " + " | ".join(tail))
    return result


# -- backends: a fresh database for every repetition ----------------------------------------------

CREATED_DBS: set[str] = set()


def psql(sql: str, timeout: float = 60.0) -> str:
    out = run([*PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], timeout=timeout)
    return out.stdout.strip()


def redis_cli(*args: str, timeout: float = 30.0) -> str:
    argv = ["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), "-n", str(REDIS_DB), *args]
    return run(argv, timeout=timeout).stdout.strip()


def drop_db(name: str) -> None:
    with contextlib.suppress(BenchError):
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    CREATED_DBS.discard(name)


@contextlib.contextmanager
def backend(kind: str, tag: str, rundir: Path) -> Iterator[str]:
    """A fresh, empty store of ``kind``; yields the URL (``sqlite:///PATH`` for SQLite: a peer
    that wants the path takes the prefix off)."""
    if kind == "sqlite":
        path = rundir / f"{tag}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    elif kind == "redis":
        redis_cli("FLUSHDB")
        try:
            yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
        finally:
            with contextlib.suppress(BenchError):
                redis_cli("FLUSHDB")
    elif kind == "postgres":
        name = re.sub(r"[^a-z0-9_]", "_", f"bench_{tag}_{os.getpid()}".lower())[:60]
        drop_db(name)
        psql(f"CREATE DATABASE {name}")
        CREATED_DBS.add(name)
        try:
            yield PG_URL.format(db=name)
        finally:
            drop_db(name)
    else:
        raise ValueError(kind)


# -- virtualenvs ----------------------------------------------------------------------------------


def requirement_sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in REQUIREMENTS.read_text().splitlines():
        header = re.fullmatch(r"#\s*\[([a-z0-9_-]+)\]\s*", line.strip())
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is not None and line.strip() and not line.lstrip().startswith("#"):
            current.append(line.strip())
    return sections


def venv_python(section: str | None, ours_python: str) -> str:
    if section is None:
        return ours_python
    return str(VENVS / section / "bin" / "python")


def ensure_venv(section: str, log: Callable[[str], None]) -> str:
    lines = requirement_sections().get(section)
    if not lines:
        raise BenchError(f"no section [{section}] in {REQUIREMENTS.name}")
    want = "\n".join([f"python {platform.python_version()}", *lines]) + "\n"
    path = VENVS / section
    stamp = path / ".bench-requirements"
    python = path / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return str(python)
    log(f"installing [{section}] into {path.relative_to(ROOT)} ...")
    shutil.rmtree(path, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(path)], timeout=300)
    reqs = path / "requirements.txt"
    reqs.write_text("\n".join(lines) + "\n")
    run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(reqs)],
        timeout=1200,
    )
    stamp.write_text(want)
    return str(python)


def pip_freeze(python: str) -> list[str]:
    with contextlib.suppress(BenchError):
        out = run([python, "-m", "pip", "freeze", "--disable-pip-version-check"], timeout=120)
        return [x for x in out.stdout.splitlines() if x and not x.startswith("-e ")]
    return []
