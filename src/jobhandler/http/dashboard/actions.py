"""What the dashboard changes: job actions, pausing queues and schedules, submitting, signing
in and out. Each is a plain HTML form (it works without the script too) checked for its
session, its scope (the same rule as the API route it stands for) and its CSRF token, then
answered with a 303 to the page that shows the result."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from jobhandler.http.dashboard.forms import (
    BadForm,
    SubmitForm,
    form_fields,
    payload_from,
    read_form,
)
from jobhandler.http.dashboard.session import (
    CSRF_FIELD,
    Viewer,
    check_csrf,
    check_origin,
    clear_session,
    mount_point,
    set_session,
)
from jobhandler.http.dashboard.web import dashboard, links, redirect
from jobhandler.model.errors import InvalidJob, JobNotFound
from jobhandler.model.options import SubmitRequest
from jobhandler.model.validation import is_job_id
from jobhandler.service.workflows import WorkflowNotFound

CANCEL_WAIT = 5.0  # as the API: a running job's cancel waits this long for its worker
MAX_FORM_BYTES = 64 * 1024  # the login and action forms; a submit form may be as big as a body


async def checked(
    request: Request, method: str, api_path: str, max_bytes: int = MAX_FORM_BYTES
) -> tuple[Viewer, dict[str, str]]:
    """The viewer and the form, once the session, its scope and its CSRF token are checked."""
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, method, api_path)
    form = await read_form(request, max_bytes)
    check_csrf(request, viewer, form.get(CSRF_FIELD))
    return viewer, form


async def job_action(request: Request) -> Response:
    dash = dashboard(request)
    job_id, action = request.path_params["job_id"], request.path_params["action"]
    routes = {
        "cancel": ("POST", f"/jobs/{job_id}/cancel"),
        "retry": ("POST", f"/jobs/{job_id}/retry"),
        "delete": ("DELETE", f"/jobs/{job_id}"),
    }
    if action not in routes:
        raise HTTPException(404, "no such action")
    await checked(request, *routes[action])
    if not is_job_id(job_id):
        raise JobNotFound(job_id)
    if action == "cancel":
        await dash.service.jobs.cancel(job_id, wait=CANCEL_WAIT)
    elif action == "retry":
        await dash.service.jobs.retry(job_id)
    else:
        await dash.service.jobs.delete(job_id)
        return redirect(request, "jobs")
    return redirect(request, "job", job_id=job_id)


async def workflow_cancel(request: Request) -> Response:
    """Cancel what has not finished of a workflow; its page shows the jobs as they end."""
    dash = dashboard(request)
    workflow_id = request.path_params["workflow_id"]
    await checked(request, "POST", f"/workflows/{workflow_id}/cancel")
    if not is_job_id(workflow_id):
        raise WorkflowNotFound(workflow_id)
    await dash.service.workflows.cancel(workflow_id)
    return redirect(request, "workflow", workflow_id=workflow_id)


async def steer(request: Request) -> Response:
    """Pause or resume a queue or a schedule."""
    dash = dashboard(request)
    kind, name, action = (request.path_params[k] for k in ("kind", "name", "action"))
    if kind not in ("queues", "schedules") or action not in ("pause", "resume"):
        raise HTTPException(404, "no such action")
    await checked(request, "POST", f"/{kind}/{name}/{action}")
    if kind == "queues":
        flow = dash.service.flow
        await (flow.pause if action == "pause" else flow.resume)(name)
    else:
        schedules = dash.service.schedules
        await (schedules.pause if action == "pause" else schedules.resume)(name)
    return redirect(request, kind)


async def submit(request: Request) -> Response:
    """The task form's submit: the job page follows it as it runs."""
    dash = dashboard(request)
    name = request.path_params["name"]
    viewer, sent = await checked(request, "POST", "/jobs", dash.settings.max_body_bytes)
    if name not in dash.service.tasks:
        raise HTTPException(404, "no such task")
    task = dash.service.tasks.get(name)
    fields = form_fields(task.payload_schema(), sent)
    try:
        delay = float(sent["delay"]) if sent.get("delay") else None
        request_ = SubmitRequest(task=name, payload=payload_from(fields, sent), delay=delay)
        job = await dash.service.submits.submit(request_)
    except (BadForm, InvalidJob, ValueError) as exc:
        form = SubmitForm(fields, _messages(exc))
        return dash.render(request, viewer, "task.html", 422, task=task, form=form, nav="tasks")
    return redirect(request, "job", job_id=job.id)


def _messages(exc: Exception) -> list[str]:
    if isinstance(exc, InvalidJob) and exc.errors:
        return [f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors]
    if hasattr(exc, "errors") and callable(exc.errors):  # pydantic's ValidationError
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return [str(exc)]


async def login_form(request: Request) -> Response:
    dash = dashboard(request)
    is_open = await dash.sessions.is_open()
    return dash.render(request, None, "login.html", next=_next(request), is_open=is_open)


async def login(request: Request) -> Response:
    """A valid token becomes the session cookie; the form goes back where it was asked for."""
    dash = dashboard(request)
    check_origin(request)  # no other site may sign a browser in with a token of its own
    form = await read_form(request, MAX_FORM_BYTES)
    token = form.get("token", "").strip()
    scope = await dash.sessions.scope_of(token) if token else None
    if scope is None:
        return dash.render(
            request,
            None,
            "login.html",
            401,
            next=form.get("next", "/"),
            is_open=await dash.sessions.is_open(),
            error="that token is not valid (a token bound to a concurrency key cannot sign in)",
        )
    response = RedirectResponse(_local(request, form.get("next", "/")), status_code=303)
    set_session(request, response, token)
    return response


async def logout(request: Request) -> Response:
    dash = dashboard(request)
    viewer = await dash.sessions.viewer(request, "GET", "/tasks")
    form = await read_form(request, MAX_FORM_BYTES)
    check_csrf(request, viewer, form.get(CSRF_FIELD))
    response = RedirectResponse(links(request)("login"), status_code=303)
    clear_session(request, response)
    return response


def _next(request: Request) -> str:
    return request.query_params.get("next", "/")


def _local(request: Request, target: str) -> str:
    """Only a path inside the dashboard: ``next`` must not send anyone to another site."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        target = "/"
    return mount_point(request) + "/" + target.lstrip("/\\")
