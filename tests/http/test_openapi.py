"""The OpenAPI description is complete: a schema for every route's every answer, and the
answers a real server sends conform to it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.conftest import Server, test_env

NO_BODY = {204}  # statuses that carry no content


@pytest.fixture
def http(server: Server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client  # type: ignore[misc]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in refs(v)
        ]
    if isinstance(node, list):
        return [r for item in node for r in refs(item)]
    return []


def test_every_route_and_status_has_a_response_schema(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    components = spec["components"]["schemas"]
    routes = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == {
        ("post", "/jobs"),
        ("get", "/jobs"),
        ("post", "/jobs/batch"),
        ("post", "/jobs/bulk/{action}"),
        ("get", "/jobs/{job_id}"),
        ("delete", "/jobs/{job_id}"),
        ("post", "/jobs/{job_id}/cancel"),
        ("post", "/jobs/{job_id}/retry"),
        ("get", "/jobs/{job_id}/attempts"),
        ("get", "/jobs/{job_id}/events"),
        ("post", "/workflows"),
        ("get", "/workflows"),
        ("get", "/workflows/{workflow_id}"),
        ("post", "/workflows/{workflow_id}/cancel"),
        ("get", "/events"),
        ("get", "/tasks"),
        ("get", "/queues"),
        ("patch", "/queues/{name}"),
        ("post", "/queues/{name}/pause"),
        ("post", "/queues/{name}/resume"),
        ("get", "/workers"),
        ("get", "/schedules"),
        ("post", "/schedules/{name}/pause"),
        ("post", "/schedules/{name}/resume"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            for code, response in operation["responses"].items():
                where = (method, path, code)
                if int(code) in NO_BODY:
                    assert "content" not in response, where
                    continue
                assert response["content"], where
                for media in response["content"].values():  # /metrics offers two formats
                    schema = media.get("schema")
                    assert schema, where
                    assert schema != {}, where  # an empty schema describes nothing
            if method == "post" and path in ("/jobs", "/jobs/batch", "/workflows"):
                body = operation["requestBody"]
                assert body["required"] is True
                assert body["content"]["application/json"]["schema"]
    for ref in refs(spec):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in components, ref


def answer_conforms(spec: dict[str, Any], response: httpx.Response, method: str, path: str) -> None:
    declared = spec["paths"][path][method]["responses"][str(response.status_code)]
    (media_type, media) = next(iter(declared["content"].items()))
    assert response.headers["content-type"].startswith(media_type), (method, path)
    schema = {**media["schema"], "components": spec["components"]}
    jsonschema_rs.validator_for(schema, validate_formats=True).validate(response.json())


def test_what_the_server_answers_conforms_to_the_description(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    job = http.post("/jobs", json={"payload": "x", "delay": 3600})
    answer_conforms(spec, job, "post", "/jobs")
    job_id = job.json()["id"]
    batch = http.post("/jobs/batch", json={"jobs": [{"payload": "a"}, {"payload": "b"}]})
    answer_conforms(spec, batch, "post", "/jobs/batch")
    for path in ("/jobs", "/tasks", "/queues", "/workers", "/healthz", "/readyz"):
        answer_conforms(spec, http.get(path), "get", path)
    answer_conforms(spec, http.get(f"/jobs/{job_id}"), "get", "/jobs/{job_id}")
    answer_conforms(spec, http.post(f"/jobs/{job_id}/cancel"), "post", "/jobs/{job_id}/cancel")
    answer_conforms(spec, http.post(f"/jobs/{job_id}/retry"), "post", "/jobs/{job_id}/retry")
    answer_conforms(spec, http.get("/jobs/nope"), "get", "/jobs/{job_id}")
    answer_conforms(spec, http.post("/jobs", json={"payload": 5}), "post", "/jobs")


def test_the_description_clients_are_generated_from_is_the_servers(
    http: httpx.Client, sqlite_url: str
) -> None:
    # clients/typescript/generate.sh takes it from the code, with no server running.
    dump = [sys.executable, "-m", "jobhandler.http.openapi_json"]
    env = test_env(sqlite_url)
    printed = subprocess.run(dump, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(printed.stdout) == http.get("/openapi.json").json()
    assert list(json.loads(printed.stdout)) == sorted(json.loads(printed.stdout))
    refused = subprocess.run([*dump, "nosuchmodule:app"], env=env, capture_output=True, text=True)
    assert (refused.returncode, refused.stderr) == (1, "error: No module named 'nosuchmodule'\n")
