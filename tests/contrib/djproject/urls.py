"""Two views, served by a threaded server in the tests: enqueue in one request, read the result
in another (on another thread, or in another process)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse  # type: ignore[import-untyped, unused-ignore]
from django.urls import path  # type: ignore[import-untyped, unused-ignore]

try:
    from django.tasks import default_task_backend  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:
    from django_tasks import default_task_backend  # type: ignore[no-redef, unused-ignore]


def enqueue(request: HttpRequest) -> Any:
    from tests.contrib.djproject import tasks

    result = tasks.add.enqueue(int(request.GET["a"]), int(request.GET["b"]))
    return JsonResponse({"id": result.id, "status": str(result.status)})


def result(request: HttpRequest, result_id: str) -> Any:
    # No import of the tasks module here: a process that never enqueued one still reads it.
    found = default_task_backend.get_result(result_id)
    value = found.return_value if found.is_finished and str(found.status) != "FAILED" else None
    return JsonResponse({"status": str(found.status), "return_value": value})


urlpatterns = [path("add", enqueue), path("result/<str:result_id>", result)]
