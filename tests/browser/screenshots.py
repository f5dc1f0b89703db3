"""The README's and docs/dashboard.md's screenshots: ``python -m tests.browser.screenshots``.

Starts ``jobhandler serve`` on a fresh SQLite file, gives it some work (finished, failed,
retried, waiting and running jobs), and photographs the main pages with Debian's chromium into
docs/images/.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM, start_server
from tests.conftest import wait_until

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SHOTS = {  # file name → page, relative to /ui/ (JOB: the retried job)
    "overview": "",
    "jobs": "jobs",
    "job": "jobs/JOB",
    "queues": "queues",
    "workers": "workers",
    "submit": "tasks/reverse",
}


def give_it_work(http: httpx.Client) -> str:
    """Some of every kind of job; the id of one that failed twice, then succeeded."""
    for word in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot"):
        http.post("/jobs", json={"payload": word})
    http.post("/jobs", json={"task": "fail", "payload": "card declined"})
    http.post("/jobs", json={"task": "sleep", "payload": 0.5})
    http.post("/jobs", json={"payload": "tomorrow", "delay": 86400})
    retried = http.post("/jobs", json={"task": "flaky", "payload": 2}).json()["id"]
    wait_until(lambda: http.get(f"/jobs/{retried}").json()["status"] == "completed", 30)
    http.post("/jobs", json={"task": "sleep", "payload": 30, "queue": "slow"})
    http.post("/jobs", json={"task": "spin", "payload": 20})
    return str(retried)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as where:
        server = start_server(Path(where), JOBHANDLER_DEMO_DELAY="0.2")
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                job = give_it_work(http)
            time.sleep(0.5)  # let the running ones show some progress
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        base_url=f"{server.url}/ui/",
                        viewport={"width": 1100, "height": 720},
                        color_scheme=scheme,
                    )
                    page = context.new_page()
                    for name, path in SHOTS.items():
                        if scheme == "dark" and name != "job":
                            continue
                        page.goto(path.replace("JOB", job))
                        suffix = "" if scheme == "light" else "-dark"
                        page.screenshot(path=IMAGES / f"{name}{suffix}.png", full_page=False)
                    context.close()
                phone = browser.new_context(
                    base_url=f"{server.url}/ui/",
                    viewport={"width": 390, "height": 780},
                    device_scale_factor=2,
                    is_mobile=True,
                    color_scheme="dark",
                )
                phone.new_page().goto(f"jobs/{job}")
                phone.pages[0].screenshot(path=IMAGES / "phone.png")
                browser.close()
        finally:
            server.stop(timeout=10)
    print(f"screenshots in {IMAGES}")


if __name__ == "__main__":
    main()
