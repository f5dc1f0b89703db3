"""Right and wrong uses of Client and AsyncClient, checked by mypy in
tests/unit/client/test_typing.py.

A line that must be an error ends with ``# E: <error code>``; every other line must pass, and
``assert_type`` pins what the right calls give: the same parameters on both clients, the answer
itself on ``Client`` and a coroutine of it on ``AsyncClient``. Read by mypy, never run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, assert_type

from jobhandler import AsyncClient, Client
from jobhandler.client.wire import BatchOut, BulkOut, JobOut, QueueOut, ScheduleOut, TaskOut


def sync_calls(client: Client) -> None:
    assert_type(client.get("id"), JobOut)
    assert_type(client.get("id", wait=5), JobOut)
    assert_type(client.submit("reverse", "abc", priority=5, delay=1.5), JobOut)
    assert_type(client.submit_many([{"task": "reverse"}]), BatchOut)
    assert_type(client.delete("id"), None)
    assert_type(client.bulk("retry", status=["failed"]), BulkOut)
    assert_type(client.tasks(), list[TaskOut])
    assert_type(client.update_queue("mail", concurrency=2), QueueOut)
    assert_type(client.resume_schedule("nightly"), ScheduleOut)
    assert_type(client.wait("id", 30), JobOut)
    assert_type(client.list_jobs(status=["failed"]), Iterator[JobOut])
    assert_type(client.ready(), bool)
    client.get(42)  # E: arg-type
    client.get("id", 5)  # E: call-arg
    client.get("id", wiat=5)  # E: call-arg
    client.submit("reverse", "abc", prioity=5)  # E: call-arg
    client.submit("reverse", "abc", priority="high")  # E: arg-type
    client.bulk("purge")  # E: arg-type
    client.update_queue("mail", concurrency="2")  # E: arg-type
    client.pause_queue("mail", pause=False)  # E: call-arg
    print(client.get("id").stauts)  # E: attr-defined


async def async_calls(client: AsyncClient) -> None:
    pending = client.get("id")
    _ = assert_type(pending, Coroutine[Any, Any, JobOut])  # a value: itself unused-coroutine
    assert_type(await pending, JobOut)
    assert_type(await client.get("id", wait=5), JobOut)
    assert_type(await client.submit("reverse", "abc", priority=5), JobOut)
    assert_type(await client.delete("id"), None)
    assert_type(await client.queues(), list[QueueOut])
    assert_type(await client.wait("id", 30), JobOut)
    assert_type(client.list_jobs(status=["failed"]), AsyncIterator[JobOut])
    assert_type(await client.ready(), bool)
    client.get("id")  # E: unused-coroutine
    job: JobOut = client.get("id")  # E: assignment
    print(job, client.get("id").status)  # E: attr-defined
    await client.get(42)  # E: arg-type
    await client.cancel("id", "now")  # E: call-arg
