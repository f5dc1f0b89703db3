"""``python -m jobhandler`` and the ``jobhandler`` script: hand secrets over, then run the CLI."""

from __future__ import annotations


def launch() -> None:
    """The ``jobhandler`` command. The restart (handover.py) comes first, while nothing heavy
    is loaded: it costs one interpreter start, not the package's import twice."""
    from jobhandler.handover import receive_secrets, restart_without_secrets

    if not receive_secrets():
        restart_without_secrets()
    from jobhandler.cli import main

    main()


if __name__ == "__main__":
    launch()
