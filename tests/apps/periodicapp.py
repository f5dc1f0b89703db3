"""The App the periodic tests run: a schedule every second, and a nightly one in a time zone."""

from __future__ import annotations

from jobhandler import App

app = App()


@app.periodic(every=1, payload={"n": 1})
@app.task
async def tick(payload: dict[str, int]) -> int:
    return payload["n"]


@app.periodic(cron="0 3 * * *", timezone="Europe/Berlin", missed="catch_up", name="nightly")
@app.task
def report() -> str:
    return "done"
