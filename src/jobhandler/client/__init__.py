"""The client: Client and AsyncClient over httpx, and the wire models it shares with the
server (wire.py). Importing it loads no server package: no FastAPI, Starlette, uvicorn or store
(tests/unit/client/test_imports.py keeps it so)."""

from jobhandler.client.calls import Call, Calls
from jobhandler.client.clients import (
    DEFAULT_URL,
    TERMINAL,
    AsyncClient,
    Client,
    ClientError,
    ServerUnreachable,
)

__all__ = [
    "DEFAULT_URL",
    "TERMINAL",
    "AsyncClient",
    "Call",
    "Calls",
    "Client",
    "ClientError",
    "ServerUnreachable",
]
