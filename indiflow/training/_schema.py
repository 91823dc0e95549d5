"""Typed parsing of TOML tables into frozen dataclasses, with messages that name the key.

A table is checked against the fields of a dataclass: an unknown key is an error naming the
closest valid one (``difflib``), a value of the wrong type is an error naming the key, the
expected type and the received one. Annotations understood: ``int``, ``float`` (an int is
accepted and converted), ``bool``, ``str``, ``None``, ``Literal[...]``, unions (``X | None``)
and ``tuple[T, ...]`` / ``tuple[A, B]`` (from a TOML array). Anything else is passed through
unchanged for the receiving constructor to check.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def unknown_key_error(
    key: str, valid: Iterable[str], prefix: str = "", what: str = "config key"
) -> ValueError:
    """A ``ValueError`` for an unknown ``key`` that names the closest valid key, if any.

    ``prefix`` (e.g. ``"train."``) is put before the key names in the message.
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {prefix + close[0]!r}? " if close else ""
    return ValueError(
        f"unknown {what} {prefix + key!r}; {hint}valid: {', '.join(valid) or '(none)'}"
    )


def check_keys(
    table: Mapping[str, Any], valid: Iterable[str], prefix: str, what: str = "config key"
) -> None:
    """Raise :func:`unknown_key_error` for the first key of ``table`` not in ``valid``."""
    valid = set(valid)
    for key in table:
        if key not in valid:
            raise unknown_key_error(key, valid, prefix, what)


def check_table(value: object, name: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a table (a mapping with string keys), else raise ``TypeError``."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"config key {name} must be a table (e.g. [{name}] or {{key = value}}), "
            f"got {type(value).__name__}: {value!r}"
        )
    return value


def parse_dataclass(cls: type[T], table: object, where: str) -> T:
    """Build the frozen dataclass ``cls`` from ``table``, checking keys and value types.

    Args:
        cls: a dataclass whose field annotations say the expected types.
        table: the TOML table (a mapping).
        where: the dotted prefix used in messages, e.g. ``"train"``.

    Raises:
        ValueError: an unknown key, a missing required key, or a value the dataclass rejects.
        TypeError: a value of the wrong type.
    """
    table = check_table(table, where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    check_keys(table, fields, f"{where}.")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in table.items():
        kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"[{where}] is missing the required key(s): {', '.join(missing)}")
    return cls(**kwargs)


def coerce(value: object, annotation: Any, name: str) -> Any:
    """Check ``value`` against ``annotation`` and return it in the annotated form.

    Raises:
        TypeError: the value does not have the annotated type (message names ``name``,
            the expected type and the received value).
        ValueError: a ``Literal`` value outside its choices.
    """
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        if value not in args or type(value) is not type(args[0]):
            raise ValueError(
                f"config key {name} must be one of {', '.join(map(repr, args))}, got {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return coerce(value, option, name)
            except (TypeError, ValueError) as err:
                errors.append(err)
        if len(options) == 1 and isinstance(errors[0], ValueError):
            raise errors[0]
        raise _type_error(name, annotation, value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _type_error(name, annotation, value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise TypeError(
                f"config key {name} must be an array of {len(args)} items "
                f"({describe(annotation)}), got {value!r}"
            )
        return tuple(
            coerce(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _type_error(name, annotation, value)
    if annotation is type(None):
        if value is None:
            return None
        raise _type_error(name, annotation, value)
    if isinstance(annotation, type):
        if isinstance(value, bool) and annotation is not bool:
            raise _type_error(name, annotation, value)
        if not isinstance(value, annotation):
            raise _type_error(name, annotation, value)
        return value
    return value


def describe(annotation: Any) -> str:
    """A short readable name of a type annotation, e.g. ``int | None`` or ``array of int``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"array of {describe(args[0])}"
        return "array [" + ", ".join(describe(a) for a in args) + "]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _type_error(name: str, annotation: Any, value: object) -> TypeError:
    return TypeError(
        f"config key {name} must be {describe(annotation)}, got {type(value).__name__}: {value!r}"
    )
