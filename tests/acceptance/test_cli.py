"""The `jobhandler` command, run as a real process against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Server, free_port, run_cli, test_env

cli = run_cli


def test_submit_wait_prints_the_result(server: Server) -> None:
    done = cli("submit", "reverse", '"abc"', "--wait", "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cba\n"


def test_submit_without_wait_prints_the_id_and_json_output(server: Server) -> None:
    job_id = cli("submit", "reverse", '"abc"', "--url", server.url).stdout.strip()
    shown = cli("jobs", "get", job_id, "--url", server.url, "-o", "json")
    assert json.loads(shown.stdout)["id"] == job_id
    listed = cli("jobs", "list", "--url", server.url, "-o", "json")
    assert job_id in [j["id"] for j in json.loads(listed.stdout)]
    table = cli("jobs", "list", "--url", server.url)
    assert table.stdout.startswith("ID") and job_id in table.stdout


def test_payload_from_stdin_and_failed_job_exit_code(server: Server) -> None:
    done = cli("submit", "reverse", "-", "--wait", "--url", server.url, stdin='"xyz"')
    assert done.stdout == "zyx\n"
    failed = cli("submit", "fail", '"broken on purpose"', "--wait", "--url", server.url)
    assert failed.returncode == 1
    assert failed.stderr.strip().endswith("failed: broken on purpose")


def test_cancel_retry_delete_and_tables(server: Server) -> None:
    job_id = cli(
        "submit", "reverse", '"abc"', "--delay", "3600", "--url", server.url
    ).stdout.strip()
    cancelled = cli("jobs", "cancel", job_id, "--url", server.url, "-o", "json")
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    again = cli("jobs", "cancel", job_id, "--url", server.url)
    assert again.returncode == 2 and again.stderr == "error: job cannot be cancelled\n"
    assert cli("jobs", "retry", job_id, "--url", server.url).returncode == 0
    assert cli("jobs", "get", job_id, "--url", server.url).stdout.startswith("id ")
    tasks = cli("tasks", "--url", server.url)
    assert "reverse" in tasks.stdout and "crunch" in tasks.stdout
    assert "default" in cli("queues", "--url", server.url).stdout
    assert cli("healthcheck", "--url", server.url).returncode == 0


def test_bad_input_is_one_line_and_exit_2(server: Server) -> None:
    for args in (
        ("submit", "reverse", "abc", "--url", server.url),
        ("submit", "reverse", "5", "--url", server.url),
        ("submit", "nope", '"x"', "--url", server.url),
        ("jobs", "get", "no-such-job", "--url", server.url),
    ):
        result = cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_unreachable_server_is_one_line_and_exit_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("submit", "reverse", '"x"'), ("jobs", "list"), ("healthcheck",)):
        result = cli(*args, "--url", url)
        assert result.returncode == 3
        assert result.stderr.startswith(f"error: cannot reach the server at {url}")
        assert result.stderr.count("\n") == 1


def test_migrate_and_bad_app(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    done = cli("migrate", "--database", url)
    assert done.returncode == 0 and (tmp_path / "new.db").exists()
    bad = cli("worker", "--app", "no_such_module:app", "--database", url)
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot load the app")
    env = test_env(url, JOBHANDLER_APP="jobhandler.demo")
    assert cli("worker", env=env).returncode == 2
    bad_url = cli("migrate", "--database", "mysql://x")
    assert bad_url.returncode == 2 and "unsupported database URL" in bad_url.stderr
    bare = cli("worker", "--database", "dx_shop")
    assert bare.returncode == 2 and "'dx_shop' is not a database URL" in bare.stderr
    assert bare.stderr.count("\n") == 1 and not Path("dx_shop").exists()


def test_help_lists_env_vars() -> None:
    shown = cli("serve", "--help").stdout
    for name in ("JOBHANDLER_DATABASE_URL", "JOBHANDLER_PORT", "JOBHANDLER_CONCURRENCY"):
        assert name in shown


def test_job_timeout_run_at_and_a_wait_that_runs_out(server: Server) -> None:
    shown = cli(
        "submit", "reverse", '"abc"', "--timeout", "7", "--run-at", "2031-01-01T00:00:00Z",
        "--url", server.url, "-o", "json",
    )  # fmt: skip
    job = json.loads(shown.stdout)
    assert job["timeout"] == 7 and job["run_at"].startswith("2031-01-01T00:00:00")
    assert job["status"] == "scheduled"
    waited = cli(
        "submit", "reverse", '"abc"', "--delay", "3600", "--wait", "--wait-timeout", "0.5",
        "--url", server.url,
    )  # fmt: skip
    assert waited.returncode == 4, waited.stderr
    assert "still scheduled after 0.5s" in waited.stderr and waited.stderr.count("\n") == 1


def test_store_copy_refuses_a_source_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    result = cli(
        "store", "copy", "--from", f"sqlite:///{missing}", "--to", f"sqlite:///{tmp_path / 'b.db'}"
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert result.stderr.count("\n") == 1 and not missing.exists()


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
        result = cli("serve", "--port", str(port), "--database", url)
    assert result.returncode == 2
    assert result.stderr == f"error: cannot serve on 127.0.0.1:{port}: Address already in use\n"


def test_an_app_module_that_raises_is_one_line_with_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "brokenapp.py").write_text("import os\n\nsettings = os.environ['NOT_SET_ZZ']\n")
    env = test_env(f"sqlite:///{tmp_path / 'jobs.db'}", PYTHONPATH=str(tmp_path))
    result = cli("worker", "--app", "brokenapp:app", env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == (
        "error: cannot load the app 'brokenapp:app': KeyError: 'NOT_SET_ZZ'"
        f" ({tmp_path / 'brokenapp.py'}:3)\n"
    )


def test_a_422_lists_every_error_without_library_prefixes(server: Server, tmp_path: Path) -> None:
    body = {
        "name": "two bad",
        "jobs": [
            {"key": "a", "task": "reverse", "payload": "x", "priority": "high"},
            {"key": "b", "task": "reverse", "payload": "x", "run_at": "2020-01-01"},
        ],
    }
    (tmp_path / "wf.json").write_text(json.dumps(body))
    result = cli("workflows", "submit", str(tmp_path / "wf.json"), "--url", server.url)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "jobs.0.priority" in result.stderr and "jobs.1.run_at" in result.stderr, result.stderr
    assert "Value error" not in result.stderr
