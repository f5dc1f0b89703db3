"""Both clients have the same methods with the same parameters, as ``help()`` shows them: the
sync one answers, the async one is a coroutine function, as if each were written out."""

from __future__ import annotations

import inspect

import pytest

from jobhandler import AsyncClient, Client
from jobhandler.client import Calls
from jobhandler.client.clients import Method, Methods

SHARED = sorted(name for name, value in vars(Methods).items() if isinstance(value, Method))
PER_CLIENT = ["aclose", "close", "list_jobs", "ready", "send", "wait"]


def public_methods(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_both_clients_have_the_same_methods() -> None:
    assert len(SHARED) == 21
    assert public_methods(Client) - {"close"} == public_methods(AsyncClient) - {"aclose"}
    assert set(SHARED) | set(PER_CLIENT) == public_methods(Client) | public_methods(AsyncClient)


@pytest.mark.parametrize("name", SHARED)
async def test_a_shared_method_looks_written_out_on_each_client(name: str) -> None:
    # Only built, never sent: these clients talk to nothing.
    with Client() as client:
        sync = getattr(client, name)
    async with AsyncClient() as client:
        awaiting = getattr(client, name)
    described = inspect.signature(getattr(Calls, name))
    assert inspect.signature(sync) == inspect.signature(awaiting)
    assert inspect.signature(sync).parameters == described.parameters
    assert (sync.__name__, sync.__qualname__) == (name, f"Client.{name}")
    assert awaiting.__qualname__ == f"AsyncClient.{name}"
    assert not inspect.iscoroutinefunction(sync)
    assert inspect.iscoroutinefunction(awaiting)


def test_the_signatures_a_user_sees() -> None:
    with Client() as client:
        assert str(inspect.signature(client.get)) == "(job_id: 'str', *, wait: 'float' = 0)"
        assert "idempotency_key" in inspect.signature(client.submit).parameters
    assert Client.get.__doc__ == Calls.get.__doc__
