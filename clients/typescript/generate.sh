#!/usr/bin/env bash
# Regenerate src/schema.ts from the server's code (no server running): the OpenAPI description
# of the demo app, or of the app given as module:attribute (with its own tasks' payload types).
# Python is the repository's .venv, or $PYTHON. Run `npm ci` here once first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
spec="$(mktemp --suffix=.json)"
trap 'rm -f "$spec"' EXIT

"$python" -m jobhandler.http.openapi_json "$@" >"$spec"
"$here/node_modules/.bin/openapi-typescript" "$spec" --output "$here/src/schema.ts" --root-types
