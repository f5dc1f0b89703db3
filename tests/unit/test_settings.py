"""Settings are declared once; each is a flag and a variable, generated from the declaration."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Annotated, Any

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field, ValidationError

from jobhandler.cli import main
from jobhandler.cli.options import build_settings, setting_options
from jobhandler.settings import WORKER, Declared, Group, Settings, declared

README = Path(__file__).parents[2] / "README.md"

COMMAND_GROUPS: dict[str, tuple[Group, ...]] = {
    "serve": ("store", "worker", "serve"),
    "worker": ("store", "worker"),
    "migrate": ("store",),
    "token create": ("store",),
}

# Flags users and the docs already use: each must keep working, on the same commands.
EXISTING_FLAGS = {
    "serve": "--app --database --log-level --listen --no-listen --sqlite-synchronous --concurrency"
    " --queues --shutdown-timeout --lease --heartbeat-interval --rescue-interval --poll-interval"
    " --keep-completed --keep-failed --host --port --no-worker --max-body-bytes"
    " --max-payload-bytes --max-json-depth --max-page-bytes --max-connections --keep-alive"
    " --allowed-hosts --cors-origins --insecure-no-auth",
    "worker": "--app --database --concurrency --queues --lease --processes --keep-failed",
    "migrate": "--app --database --log-level --listen --sqlite-synchronous",
}


def help_of(command: str) -> str:
    shown = CliRunner().invoke(main, [*command.split(), "--help"], terminal_width=100)
    assert shown.exit_code == 0, shown.output
    return " ".join(shown.output.split())  # as one line: click wraps where it likes


@pytest.mark.parametrize("command", COMMAND_GROUPS)
def test_help_shows_each_setting_with_its_variable_and_default(command: str) -> None:
    shown = help_of(command)
    for setting in declared():
        described = f"{setting.flag}" in shown and f"env var: {setting.variable};" in shown
        if setting.option.group in COMMAND_GROUPS[command]:
            assert described, setting.name
            assert re.search(rf"env var: {setting.variable}; default: [^ ]", shown), setting.name
        else:
            assert f"env var: {setting.variable};" not in shown, (command, setting.name)


def test_defaults_shown_are_the_declared_ones() -> None:
    shown = help_of("serve")
    assert "JOBHANDLER_LEASE; default: 30.0; x>0]" in shown
    assert "JOBHANDLER_PORT; default: 8080; 0<=x<=65535]" in shown
    assert "JOBHANDLER_MAX_JSON_DEPTH; default: 64; 1<=x<=1000]" in shown
    assert "JOBHANDLER_PROCESS_CONCURRENCY; default: (one per core); x>=1]" in shown
    assert "JOBHANDLER_LISTEN; default: listen]" in shown
    assert "JOBHANDLER_INSECURE_NO_AUTH; default: (off)]" in shown


@pytest.mark.parametrize("command", EXISTING_FLAGS)
def test_existing_flags_keep_working(command: str) -> None:
    shown = help_of(command)
    for flag in EXISTING_FLAGS[command].split():
        assert re.search(rf"{flag}\b", shown), (command, flag)


def test_every_variable_is_in_the_readme() -> None:
    table = README.read_text().partition("## Configuration")[2]
    missing = [s.variable for s in declared() if f"`{s.variable}`" not in table]
    assert missing == []


def test_a_setting_with_no_command_line_form_is_refused() -> None:
    class Unsaid(BaseModel):
        secret_knob: int = 1

    class Computed(BaseModel):
        knob: Annotated[int, WORKER] = Field(default_factory=lambda: 2)

    for model in (Unsaid, Computed):
        with pytest.raises(TypeError, match="knob"):
            declared(model)


def test_commands_name_no_setting_by_hand() -> None:
    """Besides the generated options, serve and worker take only their own two."""
    names = {s.name for s in declared()}
    for command, own in (("serve", {"no_worker"}), ("worker", {"processes"})):
        params = {p.name for p in main.commands[command].params}
        assert params - names == own


# -- every setting reaches Settings, from its flag and from its variable ----------------------


@click.command()
@setting_options("store", "worker", "serve")
def probe(**options: Any) -> None:
    click.echo(build_settings(options).model_dump_json())


def other_value(setting: Declared) -> tuple[Any, str]:
    """A valid value that is not the default: as Settings holds it, and as text."""
    annotation, default = setting.field.annotation, setting.default
    if annotation is bool:
        return not default, str(not default).lower()
    if annotation is str:
        return default + "x", default + "x"
    if annotation in (int, float):
        value = 3 if setting.name == "process_concurrency" else default + 1
        return value, str(value)
    if annotation == tuple[str, ...]:
        return ["a", "b"], "a,b"
    choices = [c for c in typing.get_args(annotation) if c != default]  # a Literal
    return choices[0], choices[0]


def probe_settings(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = CliRunner().invoke(probe, args, env=env)
    assert done.exit_code == 0, done.output
    return json.loads(done.output.splitlines()[-1])  # type: ignore[no-any-return]


def test_every_setting_is_read_from_its_flag() -> None:
    args = []
    for setting in declared():
        value, text = other_value(setting)
        if setting.field.annotation is bool:
            args.append(setting.flag if value else f"--no-{setting.flag.removeprefix('--')}")
        else:
            args += [setting.flag, text]
    got = probe_settings(args, {})
    assert got == {s.name: other_value(s)[0] for s in declared()}


def test_every_setting_is_read_from_its_variable() -> None:
    env = {s.variable: other_value(s)[1] for s in declared()}
    got = probe_settings([], env)
    assert got == {s.name: other_value(s)[0] for s in declared()}


def test_nothing_given_is_the_declared_defaults() -> None:
    assert probe_settings([], {}) == json.loads(Settings().model_dump_json())


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--lease", "0"], {}),
        (["--max-json-depth", "1001"], {}),
        (["--port", "70000"], {}),
        (["--log-level", "loud"], {}),
        ([], {"JOBHANDLER_CONCURRENCY": "0"}),
        ([], {"JOBHANDLER_KEEP_ALIVE": "soon"}),
    ],
)
def test_values_out_of_bounds_are_refused(args: list[str], env: dict[str, str]) -> None:
    done = CliRunner().invoke(probe, args, env=env)
    assert done.exit_code == 2, done.output
    assert "Invalid value" in done.output


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("sqlite:///jobs.db", "sqlite:///jobs.db"),
        ("sqlite:////var/lib/jobs.db", "sqlite:////var/lib/jobs.db"),
        ("postgresql://app@db/jobs", "postgresql://app@db/jobs"),
        ("postgres://app:pw@db:5432/jobs", "postgresql://app:pw@db:5432/jobs"),
        ("postgresql+psycopg://app@db/jobs", "postgresql://app@db/jobs"),
    ],
)
def test_one_parser_reads_every_database_url(given: str, meant: str) -> None:
    assert Settings(database_url=given).database_url == meant


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("dx_shop", "is not a database URL"),
        ("jobs.db", "is not a database URL"),
        ("sqlite:jobs.db", "is not a database URL"),
        ("sqlite://jobs.db", "three slashes"),
        ("sqlite:///", "three slashes"),
        ("sqlite:///:memory:", "in-memory"),
        ("mysql://x", "unsupported database URL"),
    ],
)
def test_anything_else_is_refused_with_what_would_do(given: str, said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url=given)
    assert said in str(caught.value) and "sqlite:///FILE" in str(caught.value)
