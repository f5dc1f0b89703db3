"""The server's listening socket, as `jobhandler serve` makes it: the connections it accepts
have Nagle's algorithm off. With it on, every response on a kept-alive connection waited about
40 ms for the client's delayed ACK between its head and its body (the Python client, browsers
and load balancers all keep connections alive)."""

from __future__ import annotations

import asyncio
import socket

from jobhandler.process.runtime import _listening
from jobhandler.settings import Settings


async def test_accepted_connections_have_nagle_off() -> None:
    listening = _listening(Settings(host="127.0.0.1", port=0))
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
    try:
        port = listening.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
