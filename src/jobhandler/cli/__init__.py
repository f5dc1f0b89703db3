"""The ``jobhandler`` command. Every option can also be set as a ``JOBHANDLER_*`` variable.

The options that are settings are generated from ``Settings`` (``options.py``); the exit codes
are in ``jobhandler.process.entry``. One module per kind of command: server (serve, worker), client
(over HTTP), store (migrate, store copy) and token.
"""

from __future__ import annotations

import click

from jobhandler.cli import (
    client_commands,
    queue_commands,
    schedule_commands,
    server_commands,
    store_commands,
    token_commands,
    workflow_commands,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    workflow_commands,
):
    for _command in _module.COMMANDS:
        main.add_command(_command)
