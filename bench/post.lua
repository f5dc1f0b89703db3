-- wrk script: POST one job (the bench app's no-op task) per request.
wrk.method = "POST"
wrk.body = '{"task": "noop", "payload": 1}'
wrk.headers["Content-Type"] = "application/json"
