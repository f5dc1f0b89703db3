"""Schemathesis against a live `jobhandler serve`, on SQLite and on PostgreSQL: finds nothing.

Every check runs (``--checks all``: no 5xx, statuses, content types, headers and bodies as the
OpenAPI description declares them, schema-valid data accepted and invalid data refused, Allow
on 405, ...), in every phase, the stateful one included: it follows the description's links
from a created job to getting, cancelling, retrying and deleting it. A fixed seed and
deterministic generation make each run the same; few examples keep it under a minute per store
(its coverage phase sends some 3,000 requests on one kept-alive connection).

The server runs ``tests/apps/fuzzapp.py``: payloads of every kind of type (str, float, models,
a dataclass, none), tasks that finish at once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Process, Server, test_env

# ``wait`` holds a request up to 60 s while a job is not finished (a job scheduled years ahead,
# or in a queue no worker serves, never is): a long poll's length is nothing to fuzz, and would
# make the run last hours. It is fixed at 0 here; tests/http/test_api.py checks its bounds.
CONFIG = """
[[operations]]
include-operation-id = "getJob"
parameters = { "query.wait" = 0 }

# A workflow is a graph: that each key in `after` names a job of it, and that there is no cycle,
# no JSON Schema can say, so a body the description allows may be refused (422, every problem
# named; tests/http/test_workflows_http.py checks each). Past 20,000 jobs a body is also past the
# size limit, refused (413) before its jobs are counted.
[[operations]]
include-operation-id = "createWorkflow"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
checks.negative_data_rejection.expected-statuses = [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"
]

# Event streams stay open until the client leaves (GET /jobs/{id}/events: until the job ends);
# tests/http/test_live.py reads them.
[[operations]]
include-operation-id = ["streamEvents", "streamJobEvents"]
enabled = false
"""


@pytest.mark.timeout(360)  # about 30 s on an idle machine; the subprocess has its own limit
def test_schemathesis_finds_nothing(
    spawn: Callable[..., Process], database_url: str, tmp_path: Path
) -> None:
    server = spawn(["serve", "--app", "fuzzapp:app"], test_env(database_url), server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "10",
        "--seed",
        "8",
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--output-truncate",
        "false",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"{report}\n--- server log ---\n{server.output()[-5000:]}"
    # The stateful phase ran: a phase schemathesis skips (no links to follow, say) fails nothing.
    assert "\u2705 Stateful" in report and "Scenarios:" in report, report
    assert "Traceback" not in server.output()
