"""``python -m jobhandler.http.openapi_json [module:app]``: print an app's OpenAPI description.

What clients in other languages are generated from (clients/typescript/generate.sh), taken from
the code rather than from a running server. Keys are sorted, so a regenerated file differs only
where the API does. The default app is ``serve``'s, the demo app.
"""

from __future__ import annotations

import json
import sys

from jobhandler.app import load_app
from jobhandler.http.api import create_app


def main(argv: list[str] | None = None) -> None:
    """Print the description of the app named in ``argv`` (default: the demo app)."""
    refs = sys.argv[1:] if argv is None else argv
    try:
        app = load_app(refs[0] if refs else "jobhandler.demo:app")
    except (ImportError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    json.dump(create_app(app).openapi(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
