"""``jobhandler workflows submit|list|get|cancel``, run as users run them, against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Server, run_cli, wait_until

DIAMOND = {
    "name": "nightly",
    "jobs": [
        {"key": "a", "task": "reverse", "payload": "abc", "delay": 3600},
        {"key": "b", "payload": "b", "after": ["a"]},
        {"key": "c", "payload": "c", "after": ["a"]},
        {"key": "d", "payload": "d", "after": ["b", "c"]},
    ],
}


def test_submit_list_get_and_cancel_a_workflow(server: Server, tmp_path: Path) -> None:
    url = ["--url", server.url]
    file = tmp_path / "diamond.json"
    file.write_text(json.dumps(DIAMOND))
    submitted = run_cli("workflows", "submit", str(file), *url)
    assert submitted.returncode == 0, submitted.stderr
    workflow_id = submitted.stdout.strip()
    assert len(workflow_id.splitlines()) == 1

    shown = run_cli("workflows", "get", workflow_id, *url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["id", workflow_id] and lines[1].split() == ["name", "nightly"]
    assert "1 scheduled, 3 waiting" in shown.stdout
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == ["KEY", "STATUS", "AFTER", "ID", "ERROR"]
    rows = {row.split()[0]: row.split()[1:3] for row in table[1:]}
    assert rows == {
        "a": ["scheduled", "-"],
        "b": ["waiting", "a"],
        "c": ["waiting", "a"],
        "d": ["waiting", "b,c"],
    }
    as_json = json.loads(run_cli("workflows", "get", workflow_id, "-o", "json", *url).stdout)
    assert as_json["id"] == workflow_id and len(as_json["jobs"]) == 4

    listed = run_cli("workflows", "list", *url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["ID", "NAME", "STATUS", "CREATED_AT", "JOBS"]
    assert workflow_id in listed.stdout and "running" in listed.stdout

    cancelled = run_cli("workflows", "cancel", workflow_id, *url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "4 cancelled" in cancelled.stdout

    def listed_as(*args: str) -> list[str]:
        done = run_cli("workflows", "list", *args, "-o", "json", *url)
        assert done.returncode == 0, done.stderr
        return [item["id"] for item in json.loads(done.stdout)]

    assert listed_as("--status", "cancelled") == [workflow_id]
    assert listed_as("--status", "running") == []
    assert listed_as("--name", "nightly") == [workflow_id]
    assert listed_as("--name", "other") == []


def test_a_workflow_runs_and_its_jobs_show_their_graph(server: Server, tmp_path: Path) -> None:
    url = ["--url", server.url]
    file = tmp_path / "pair.json"
    pair = [{"key": "a", "payload": "ab"}, {"key": "b", "payload": "cd", "after": ["a"]}]
    file.write_text(json.dumps({"name": "pair", "jobs": pair}))
    workflow_id = run_cli("workflows", "submit", str(file), *url).stdout.strip()

    def completed() -> bool:
        shown = run_cli("workflows", "get", workflow_id, "-o", "json", *url).stdout
        return bool(json.loads(shown)["status"] == "completed")

    wait_until(completed, timeout=60)
    # Stdin works too; the answer as JSON is the workflow.
    again = run_cli("workflows", "submit", "-", "-o", "json", *url, stdin=file.read_text())
    assert again.returncode == 0 and json.loads(again.stdout)["name"] == "pair"


def test_errors_are_one_line_and_a_non_zero_exit(server: Server, tmp_path: Path) -> None:
    url = ["--url", server.url]
    missing = run_cli("workflows", "get", "00000000-0000-7000-8000-000000000000", *url)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "not found" in missing.stderr

    bad = tmp_path / "cycle.json"
    cycle = [{"key": "a", "payload": "x", "after": ["b"]}, {"key": "b", "payload": "y"}]
    cycle[1]["after"] = ["a"]
    bad.write_text(json.dumps({"name": "loop", "jobs": cycle}))
    refused = run_cli("workflows", "submit", str(bad), *url)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "cycle" in refused.stderr

    unknown = tmp_path / "unknown.json"
    jobs = [{"key": "a", "payload": "x", "after": ["zz"]}, {"key": "b", "payload": 5}]
    unknown.write_text(json.dumps({"name": "bad", "jobs": jobs}))
    named = run_cli("workflows", "submit", str(unknown), *url)
    assert named.returncode == 2 and named.stderr.count("\n") == 1
    assert "jobs.1.payload" in named.stderr, named.stderr

    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    broken = run_cli("workflows", "submit", str(not_json), *url)
    assert broken.returncode == 2 and "is not JSON" in broken.stderr
    assert run_cli("workflows", "list", "-o", "json", *url).stdout.strip() == "[]"

    gone = run_cli("workflows", "list", "--url", "http://127.0.0.1:9")
    assert gone.returncode == 3 and gone.stderr.count("\n") == 1
