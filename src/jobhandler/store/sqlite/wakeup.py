"""Push wake-ups among the processes that share one SQLite file: a datagram per commit.

A file has no channel like PostgreSQL's NOTIFY, so each listening process binds a Unix datagram
socket in a folder named after the database file, and a process that commits new work sends one
empty datagram to every socket there. The kernel hands it to the idle worker in microseconds,
where watching the file would cost a poll interval and a busy thread. Like NOTIFY it is a hint
only: a lost datagram (a full buffer, another /tmp) costs latency, and the store's slower file
watch (``watch_file``) and the worker's poll remain the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import socket
import sqlite3
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path


def _folder(database: str) -> Path:
    # Keyed by the file's real path, kept short: a Unix socket path must fit in 108 bytes.
    key = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"jobhandler-{os.getuid()}" / key


class WakeChannel:
    """Where the listeners of one database file are, and how to reach them."""

    def __init__(self, database: str) -> None:
        self.folder = _folder(database)
        self._folder_text = str(self.folder)  # os.stat of a str: pathlib's costs more per commit
        self._sender: socket.socket | None = None
        self._peers: list[str] = []
        self._seen: int | None = None  # the folder's mtime when _peers was read

    def send(self) -> None:
        """One datagram to every listener; forget those whose process is gone."""
        peers = self._listeners()
        if not peers:
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        for path in peers:
            try:
                self._sender.sendto(b"", path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # left behind by a killed process
            except OSError as exc:  # a full buffer: that listener is awake already
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    raise

    def _listeners(self) -> list[str]:
        try:
            changed = os.stat(self._folder_text).st_mtime_ns
        except FileNotFoundError:
            return []
        if changed != self._seen:
            self._seen = changed
            self._peers = [str(p) for p in self.folder.glob("*.sock")]
        return self._peers

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` on this loop whenever a datagram arrives; returns how to stop."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{os.getpid()}-{os.urandom(4).hex()}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(path))
        loop = asyncio.get_running_loop()

        def readable() -> None:
            with contextlib.suppress(BlockingIOError):
                while True:  # drain: many commits, one wake-up
                    sock.recv(64)
            wake()

        loop.add_reader(sock.fileno(), readable)

        def stop() -> None:
            loop.remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # the last listener of this file leaves no folder behind

        return stop

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


def watch_file(
    path: str, busy_timeout_ms: int, interval: float, on_submit: Callable[[], None]
) -> Callable[[], Awaitable[None]]:
    """Should a datagram be lost: a thread that watches the file; returns how to stop it.

    The watch reads ``PRAGMA data_version`` (which changes when another connection commits,
    and costs no lock) every ``interval`` seconds on its own connection, and calls
    ``on_submit`` on this loop when the newest job is newer than before.
    """
    loop = asyncio.get_running_loop()
    stopped = threading.Event()

    def watch() -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        try:
            version = newest = -1
            while not stopped.wait(interval):
                seen = conn.execute("PRAGMA data_version").fetchone()[0]
                if seen == version:
                    continue
                version = seen
                latest = conn.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()[0]
                if latest > newest:
                    newest = latest
                    loop.call_soon_threadsafe(on_submit)
        except (sqlite3.Error, RuntimeError):  # the file went away, or the loop closed
            return
        finally:
            conn.close()

    watcher = threading.Thread(target=watch, name="jobhandler-sqlite-watch", daemon=True)
    watcher.start()

    async def stop() -> None:
        stopped.set()
        await asyncio.to_thread(watcher.join)

    return stop
