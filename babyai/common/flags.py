"""Command-line flags generated from config dataclasses: one style for every command.

Each field of a config dataclass becomes a flag `--field-name`; the string literal written
under the field (its docstring, as in CleanRL's `Args`) becomes the flag's help, and the
default is shown. Types come from the annotations:

* `bool` -> a switch (`--x`; a field that defaults to True gets `--x/--no-x`);
* `int`, `float`, `str`, `Path` and their `... | None` forms -> a typed value;
* `list[str]` -> a repeatable flag (each use appends one value);
* `tuple[...]` -> one flag whose `metadata["type"]` parses the whole value (e.g. a
  comma-separated list);
* a field without a default -> a required flag.

Field metadata may refine a flag: `type` (an argparse type such as
:func:`~babyai.common.cli.positive_int`), `name` (the flag's spelling when it differs from
the field's), `aliases` (extra spellings kept for old command lines), `metavar`,
`choices`, or `flag=False` to leave the field off the command line.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from babyai.common.errors import UserError

_SCALARS = (bool, int, float, str, Path)


@lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under the fields of a dataclass (read from its source)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body
        for node, following in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _scalar(annotation: Any) -> type:
    """`int`, `int | None`, `Optional[Path]`... -> the scalar type."""
    if annotation in _SCALARS:
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(options) == 1 and options[0] in _SCALARS:
            return options[0]
    raise TypeError(f"no command-line flag for a field of type {annotation!r}")


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser | Any, cls: type, *,
                     skip: Iterable[str] = (), defaults: dict[str, Any] | None = None,
                     help: dict[str, str] | None = None) -> None:
    """Add one flag per field of the dataclass `cls` to `parser` (or an argument group).

    Args:
        skip: fields left off the command line.
        defaults: defaults that differ from the dataclass's (e.g. a command's own choice).
        help: help texts that differ from the field docstrings.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    skip, defaults, help = set(skip), defaults or {}, help or {}
    for spec in dataclasses.fields(cls):
        meta = spec.metadata
        if spec.name in skip or meta.get("flag", True) is False:
            continue
        names = [meta.get("name", flag_name(spec.name)), *meta.get("aliases", ())]
        annotation = hints[spec.name]
        repeated = typing.get_origin(annotation) is list
        if typing.get_origin(annotation) is tuple:  # one flag parsed whole by meta["type"]
            kind = meta["type"]
        else:
            kind = typing.get_args(annotation)[0] if repeated else _scalar(annotation)
        if spec.name in defaults:
            default = defaults[spec.name]
        elif spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = spec.default_factory()  # type: ignore[misc]
        else:
            default = None
        required = (spec.name not in defaults and spec.default is dataclasses.MISSING
                    and spec.default_factory is dataclasses.MISSING)  # type: ignore[misc]
        text = help.get(spec.name, docs.get(spec.name, ""))
        options: dict[str, Any] = {"dest": spec.name, "help": text.replace("%", "%%") or " "}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction if default else "store_true"
            options["default"] = bool(default)
        elif repeated:
            options.update(action="append", type=meta.get("type", kind), required=required,
                           default=None if required else default)
        else:
            options["type"] = meta.get("type", kind)
            options["default"] = default
            options["required"] = required
            for key in ("metavar", "choices"):
                if key in meta:
                    options[key] = meta[key]
        parser.add_argument(*names, **options)


def config_parser(cls: type, description: str | None, **options: Any) -> "Parser":
    """A command's parser: one flag per field of `cls` (options as for `add_config_flags`)."""
    parser = Parser(description=description)
    add_config_flags(parser, cls, **options)
    return parser


def config_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build `cls` from the parsed flags (fields without a flag take `overrides` or defaults)."""
    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(cls)
              if hasattr(args, spec.name)}
    values.update(overrides)
    return cls(**values)


class Parser(argparse.ArgumentParser):
    """An argument parser that shows defaults in `--help` (the one style of every command);
    a bad flag is a user error like any other: one line and exit code 2, no usage dump."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see --help)")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults appended to help texts that do not state them; descriptions keep their line
    breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or "(default" in text.lower() or action.default is False:
            return text
        return super()._get_help_string(action)
