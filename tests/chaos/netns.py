"""Hosts for the chaos tests: a network namespace per host, a veth pair to the root namespace,
and a TCP forwarder that carries the host's database traffic to the real server.

Everything is the test's own: a namespace and veth names made up per test, a /30 of
10.0.0.0/8 no interface of the machine uses, a forwarder bound to the root side's address
only. PostgreSQL listens on 127.0.0.1 only (and its pg_hba trusts only that), so the forwarder
in the root namespace relays a host's connections to it: PostgreSQL sees them from 127.0.0.1.

A host that serves clients (an API server) gets a second veth pair, its "client link", which a
partition leaves up: the server is cut off from the database while its clients still reach it.

A partition takes the root side of the (database) veth pair down: the host's packets are
dropped without an answer (the host side keeps its address and route, with no carrier), as on
a cut cable; a heal brings it back up and TCP carries on where it stopped. Everything made is
removed on exit, in reverse order, whatever failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import COMMAND, LIVE, Process, Server, free_port


def require_root_and_ip() -> None:
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip` to make network namespaces")
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces and veth pairs")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _free_subnet() -> str:
    """The first three octets of a /30 in 10.0.0.0/8 that no interface uses."""
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, check=True)
    while True:
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}"
        if f"inet {prefix}." not in used.stdout:
            return prefix


@dataclass
class Host:
    """A network namespace joined to the root one by a veth pair."""

    netns: str
    outside: str  # the veth in the root namespace
    root_ip: str  # the root side's address: the host reaches the database there
    host_ip: str
    client_ip: str | None = None  # the host's address on its client link, if it has one

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the host (``ip netns exec`` execs it: the pid is the same)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def partition(self) -> None:
        ip("link", "set", self.outside, "down")

    def heal(self) -> None:
        ip("link", "set", self.outside, "up")


def _link(netns: str, outside: str, inside: str, prefix: str) -> None:
    """A veth pair from the root namespace into ``netns``: .1 outside, .2 inside."""
    ip("link", "add", outside, "type", "veth", "peer", "name", inside)
    ip("link", "set", inside, "netns", netns)
    ip("addr", "add", f"{prefix}.1/30", "dev", outside)
    ip("link", "set", outside, "up")
    ip("netns", "exec", netns, "ip", "addr", "add", f"{prefix}.2/30", "dev", inside)
    ip("netns", "exec", netns, "ip", "link", "set", inside, "up")


@contextlib.contextmanager
def host(client_link: bool = False) -> Iterator[Host]:
    """A host; with ``client_link``, a second link for its clients that partitions leave up."""
    tag = uuid.uuid4().hex[:6]
    prefix = _free_subnet()
    made = Host(f"jhchaos-{tag}", f"jh{tag}o", f"{prefix}.1", f"{prefix}.2")
    clients_side = f"jh{tag}c"
    try:
        ip("netns", "add", made.netns)
        ip("netns", "exec", made.netns, "ip", "link", "set", "lo", "up")
        _link(made.netns, made.outside, f"jh{tag}i", prefix)
        if client_link:
            other = _free_subnet()
            while other == prefix:
                other = _free_subnet()
            _link(made.netns, clients_side, f"jh{tag}s", other)
            made.client_ip = f"{other}.2"
        yield made
    finally:
        for link in (made.outside, clients_side):  # the peer inside goes with it
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", made.netns], capture_output=True, timeout=10)


class HostProcess(Process):
    """A ``jobhandler`` command run inside a host's network namespace."""

    def __init__(self, where: Host, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.popen = subprocess.Popen(
            where.command([*COMMAND, *args]), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        LIVE.append(self)


class HostServer(HostProcess, Server):
    """``jobhandler serve`` inside a host, listening on its client link's address."""

    def __init__(self, where: Host, args: list[str], env: dict[str, str], log: Path) -> None:
        assert where.client_ip is not None, "a server's host needs a client link"
        port = free_port()  # free on loopback; the namespace has its own ports anyway
        listen = ["--host", where.client_ip, "--port", str(port)]
        super().__init__(where, [*args, *listen], {**env, "JOBHANDLER_INSECURE_NO_AUTH": "1"}, log)
        self.url = f"http://{where.client_ip}:{port}"


class Forwarder:
    """Relays TCP connections from ``listen`` to ``target``, on an event loop in a thread."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen, self.target = listen, target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, *self.listen)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, upstream_writer),
            self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
