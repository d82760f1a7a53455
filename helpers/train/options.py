"""Command-line options generated from :class:`TrainConfig`'s fields, so ``--help`` and fit
cannot drift apart.

Field ``warmup_epochs`` becomes ``--warmup-epochs``; a flag that defaults to False becomes
``--name``, one that defaults to True gets ``--name`` and ``--no-name`` (``--no-progress``).
An optional value takes ``none`` for None (``--schedule none``; ``--amp off`` also works).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from helpers.train.config import TrainConfig

__all__ = ["add_config_arguments", "config_from_args", "number"]

_NONE_WORDS = ("none", "off")


def number(text: str) -> int | float:
    """'0.5' -> 0.5 (a fraction), '91' -> 91 (an epoch)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _parser_for(kind: Any, choices: Any, optional: bool) -> Callable[[str], Any]:
    base = {int: int, float: float, str: str}.get(kind, str)

    def parse(text: str) -> Any:
        if optional and text.lower() in _NONE_WORDS:
            return None
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {base.__name__}: {text!r}") from None
        if choices is not None and value not in choices:
            known = ", ".join("none" if c is None else str(c) for c in choices)
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {known})")
        return value

    parse.__name__ = base.__name__  # argparse names the type in its errors
    return parse


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of a field's type hint such as ``float | None``."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def add_config_arguments(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """One option per TrainConfig field, in argument groups named by the fields' ``group``.

    ``defaults`` replace the dataclass defaults on the command line (e.g. ``seed=0``).
    """
    hints = typing.get_type_hints(TrainConfig)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(TrainConfig):
        group_name = f.metadata["group"]
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(group_name)
        group = groups[group_name]
        option = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.name not in defaults
        default = defaults.get(f.name, None if required else f.default)
        help_text = f.metadata["help"].replace("%", "%%")
        kind, optional = _unwrap(hints[f.name])
        if kind is bool:
            action = argparse.BooleanOptionalAction if default else "store_true"
            group.add_argument(option, action=action, default=default, help=help_text)
            continue
        if not required:
            shown = "none" if default is None else default
            if isinstance(shown, tuple):
                shown = " ".join(map(str, shown))
            help_text += f" (default: {shown})"
        kwargs: dict[str, Any] = {"default": default, "required": required, "help": help_text}
        if typing.get_origin(kind) is tuple:
            kwargs.update(type=number, nargs="+", metavar="X")
        else:
            choices = f.metadata["choices"]
            kwargs["type"] = _parser_for(kind, choices, optional)
            if choices is not None:
                kwargs["metavar"] = (
                    "{" + ",".join("none" if c is None else c for c in choices) + "}"
                )
            else:
                kwargs["metavar"] = f.name.split("_")[-1].upper()
        group.add_argument(option, **kwargs)


def config_from_args(args: argparse.Namespace, **changes: Any) -> TrainConfig:
    """The TrainConfig of parsed arguments (``changes`` override them, e.g. ``device=``)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{**values, **changes})
