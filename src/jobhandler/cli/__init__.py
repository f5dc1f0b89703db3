"""The ``jobhandler`` command. Every option can also be set as a ``JOBHANDLER_*`` variable.

The options that are settings are generated from ``Settings`` (``options.py``); the exit codes
are in ``jobhandler.process.entry``. One module per kind of command: server (serve, worker), client
(over HTTP), store (migrate, store copy) and token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from jobhandler.cli import (
    client_commands,
    queue_commands,
    schedule_commands,
    server_commands,
    store_commands,
    token_commands,
)
from jobhandler.process.entry import receive_secrets, restart_without_secrets


class Command(click.Group):
    """The group, run from the command line with no secret in its environment block: it
    restarts once without them first (jobhandler.process says why)."""

    def main(self, args: Sequence[str] | None = None, *more: Any, **extra: Any) -> Any:
        # args is None: the real command line (a test's CliRunner passes its arguments).
        if args is None and not receive_secrets():
            restart_without_secrets()
        return super().main(args, *more, **extra)


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jobhandler")
def main() -> None:
    """Job Handler: crash-safe background jobs for Python."""


for _module in (
    server_commands,
    client_commands,
    queue_commands,
    schedule_commands,
    store_commands,
    token_commands,
):
    for _command in _module.COMMANDS:
        main.add_command(_command)
