"""``/docs`` against a real `jobhandler serve`, on SQLite and PostgreSQL: Swagger UI from the
package's own files, under the dashboard's Content-Security-Policy; no ReDoc.

tests/browser/test_docs.py loads the page in a real browser, under that policy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urljoin

import httpx

from tests.conftest import Process, Server, test_env


def test_docs_load_only_the_servers_own_files_under_the_dashboards_csp(
    spawn: Callable[..., Process], database_url: str
) -> None:
    server = spawn(["serve", "--no-worker"], test_env(database_url), server=True)
    assert isinstance(server, Server)
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        page = http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        dashboard = http.get("/ui/")
        for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
            assert page.headers[header] == dashboard.headers[header], header
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert "://" not in page.text and "<style" not in page.text  # nothing from elsewhere
        assert not re.search(r"<script>|<script [^>]*>[^<]", page.text)  # no inline code
        # Every file the page names is there, with the same headers and the right type.
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert len(assets) == 4, assets
        for asset in assets:
            url = urljoin(f"{server.url}/docs", asset)
            got = http.get(url)
            assert got.status_code == 200, url
            assert (
                got.headers["content-security-policy"]
                == dashboard.headers["content-security-policy"]
            )
            kind = {"js": "javascript", "css": "text/css", "png": "image/png"}
            assert kind[asset.rsplit(".", 1)[1]] in got.headers["content-type"], url
        script = http.get("/docs/swagger-init.js").text
        assert "openapi.json" in script and "validatorUrl: null" in script
        assert http.get("/openapi.json").status_code == 200
        assert http.get("/redoc").status_code == 404  # off: it needs inline styles
        assert http.get("/docs/static/../../pyproject.toml").status_code == 404
