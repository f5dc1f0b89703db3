"""Click options generated from the settings' declaration, and the Settings they build.

Nothing here names a setting: a new field of ``Settings`` (with its ``Option``) becomes a flag and
a ``JOBHANDLER_*`` variable of the commands its group names, with its bounds and default in
``--help``.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from jobhandler.handover import scrub_environment
from jobhandler.process.entry import configure_logging, fail
from jobhandler.settings import Declared, Group, Settings, declared

F = TypeVar("F", bound=Callable[..., Any])

GROUP_ORDER: tuple[Group, ...] = ("store", "worker", "serve")
# A field's bounds as click range arguments: (side, pydantic's name for it, excluded?).
BOUNDS = (("min", "ge", False), ("min", "gt", True), ("max", "le", False), ("max", "lt", True))


def setting_options(*groups: Group) -> Callable[[F], F]:
    """Give a command the option of every setting in ``groups``: store, then worker, then serve."""
    wanted = [d for d in declared() if d.option.group in groups]
    wanted.sort(key=lambda d: GROUP_ORDER.index(d.option.group))  # stable: declaration order

    def decorate(fn: F) -> F:
        for setting in reversed(wanted):  # the last decorator applied is listed first
            fn = click.option(*declarations(setting), **attributes(setting))(fn)
        return fn

    return decorate


def declarations(setting: Declared) -> tuple[str, ...]:
    flag = setting.flag
    if setting.field.annotation is bool and setting.default is True:
        flag = f"{flag}/--no-{flag.removeprefix('--')}"  # on by default: the flag turns it off
    return flag, setting.name


def attributes(setting: Declared) -> dict[str, Any]:
    shown = setting.option.default_shown
    found: dict[str, Any] = {
        "envvar": setting.variable,
        "show_envvar": True,
        "help": setting.field.description,
        # A default the declaration only describes (empty, or computed where it runs) is left
        # to Settings; any other is the declared one, shown as it is.
        "default": None if shown else setting.default,
        "show_default": shown or True,
    }
    annotation = setting.field.annotation
    if annotation is bool:
        found["is_flag"] = True
        if setting.default is False:
            found["show_default"] = "off"  # a plain flag: absent means off
    else:
        found["type"] = click_type(annotation, setting.field.metadata)
    return found


def click_type(annotation: Any, metadata: list[Any]) -> click.ParamType[Any]:
    """The click type of a setting's type: a choice, a number in its bounds, or text."""
    if typing.get_origin(annotation) is typing.Literal:
        return click.Choice([str(choice) for choice in typing.get_args(annotation)])
    if annotation in (int, float):
        bounds: dict[str, Any] = {}
        for item, (side, name, is_open) in itertools.product(metadata, BOUNDS):
            if (value := getattr(item, name, None)) is not None:  # pydantic's Ge(ge=1) and such
                bounds |= {side: value, f"{side}_open": is_open}
        return click.IntRange(**bounds) if annotation is int else click.FloatRange(**bounds)
    if annotation is str or _is_text_tuple(annotation):
        return click.STRING  # a tuple is given as comma-separated text
    raise TypeError(f"no command-line form for a setting of type {annotation!r}")


def _is_text_tuple(annotation: Any) -> bool:
    return typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (str, ...)


def build_settings(values: dict[str, Any]) -> Settings:
    """Settings from a command's setting options; a bad value is one line and exit 2."""
    try:
        settings = Settings(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(map(str, first['loc']))}: {first['msg'].removeprefix('Value error, ')}")
    scrub_environment()
    configure_logging(settings)
    return settings
