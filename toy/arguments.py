"""Checks of the toy scripts' settings, shared by their command lines and their config classes.

One rule per setting, used in two places: as the argparse ``type`` of the option, so that a bad
value stops the script before any work with argparse's usage line, ``argument --steps: must be
an integer >= 1, got '0'`` and exit status 2; and in the ``__post_init__`` of the config
dataclass (``TrainConfig``, ``EquivalenceConfig``), so that a config built in Python fails the
same way with a ``ValueError`` naming the field.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import TypeVar

Config = TypeVar("Config")


@dataclass(frozen=True)
class Range:
    """An integer or a finite real number in an interval.

    Attributes:
        kind: ``int`` or ``float``.
        low: lower bound, or ``None`` for none.
        high: upper bound, or ``None`` for none.
        low_open: exclude ``low`` itself (``> low`` instead of ``>= low``).
        high_open: exclude ``high`` itself.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise TypeError(f"Range kind must be int or float, got {self.kind!r}")

    def describe(self) -> str:
        """What a valid value is, e.g. ``"an integer >= 1"`` or ``"a number in [0, 1)"``."""
        noun = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{noun} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {self.high:g}"
        return f"a finite {noun.split()[-1]}"

    def contains(self, value: object) -> bool:
        """Whether ``value`` is of the right kind (bools are not numbers here) and in range."""
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, Integral):
            return False
        if not isinstance(value, Real) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def check(self, name: str, value: object) -> None:
        """Raise ``ValueError`` unless ``value`` is valid, naming the setting ``name``."""
        if not self.contains(value):
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")

    def __call__(self, text: str) -> int | float:
        """Parse a command-line value; argparse reports the error with the option's name."""
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}") from None
        if not self.contains(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value


def folder(text: str) -> str:
    """An argparse ``type`` for an output folder: non-empty, and not an existing file."""
    if not text:
        raise argparse.ArgumentTypeError("must be a folder path, got an empty string")
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"must be a folder, but {text!r} is an existing file")
    return text


def check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_fields(
    config: object, ranges: Mapping[str, Range], choices: Mapping[str, Sequence[str]]
) -> None:
    """Check every field of ``config`` that has a rule (for a dataclass ``__post_init__``)."""
    for name, rule in ranges.items():
        rule.check(name, getattr(config, name))
    for name, options in choices.items():
        check_choice(name, getattr(config, name), options)


def config_from_namespace(
    parser: argparse.ArgumentParser, cls: type[Config], args: argparse.Namespace
) -> Config:
    """``cls(**vars(args))``, with a ``ValueError`` of the config (a rule that ties two settings
    together) reported by ``parser.error``: usage line, message, exit status 2."""
    try:
        return cls(**vars(args))
    except ValueError as error:
        parser.error(str(error))


def parse_config(
    cls: type[Config],
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    ranges: Mapping[str, Range],
    choices: Mapping[str, Sequence[str]],
) -> Config:
    """Build ``cls`` (a config dataclass) from the command line, one option per field.

    Field ``some_name`` becomes ``--some-name`` with the field's default: a ``bool`` field a
    ``store_true`` switch; a ``str`` field takes ``choices[name]`` when given, and ``out`` must
    be a :func:`folder`; every other field is numeric and parsed by its rule ``ranges[name]``,
    whose description heads its help. A bad value exits with status 2 before any work.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=f"(default: {f.default})")
        elif f.type == "str":
            kind = folder if f.name == "out" else str
            parser.add_argument(
                flag,
                type=kind,
                default=f.default,
                choices=choices.get(f.name),
                help=f"(default: {f.default})",
            )
        else:  # every numeric setting has a rule
            rule = ranges[f.name]
            parser.add_argument(
                flag, type=rule, default=f.default, help=f"{rule.describe()} (default: {f.default})"
            )
    return config_from_namespace(parser, cls, parser.parse_args(argv))
