"""The HTTP baseline: a bare FastAPI endpoint on uvicorn, with the settings `jobhandler serve`
uses (one process, loop="asyncio", http auto, lifespan on, log level warning). It parses the
same JSON body as POST /jobs and answers 201 with a small job object, storing nothing: the gap
between this and ours is what our validation, store write and serialisation cost.

    .venv/bin/python bench/http_baseline.py --port 8099
"""

from __future__ import annotations

import argparse
import json
import uuid

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

api = FastAPI()


@api.post("/jobs", status_code=201)
async def create_job(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    if not isinstance(body, dict) or "payload" not in body:
        return JSONResponse({"error": "payload is required"}, status_code=400)
    job = {"id": str(uuid.uuid4()), "task": body.get("task"), "status": "queued"}
    return JSONResponse(job, status_code=201)


@api.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    config = uvicorn.Config(
        api, host=args.host, port=args.port, log_level="warning", lifespan="on", loop="asyncio"
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
