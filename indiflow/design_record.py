"""Reading saved designs back: the checks shared by ``GridDesign`` and ``SolverDesign``.

Both are frozen dataclasses written as plain data tagged with a format name and a version;
reading one back checks the tag, that every field is present, and the plain types of its
fields, so that a file edited by hand fails with a message naming the field.
"""

from __future__ import annotations

import json


def design_values(data: object, cls: type, kind: str, fmt: str, version: int) -> dict[str, object]:
    """The fields of dataclass ``cls`` from ``data``, a dict tagged ``format = fmt``, ``version``.

    Raises:
        TypeError: ``data`` is not a dict.
        ValueError: another format or version, or a field is missing.
    """
    if not isinstance(data, dict):
        raise TypeError(f"a {kind} design must be a dict, got {type(data).__name__}")
    if data.get("format") != fmt or data.get("version") != version:
        raise ValueError(
            f"not an indiflow {kind} design: expected format {fmt!r} version {version}, "
            f"got format {data.get('format')!r} version {data.get('version')!r}"
        )
    missing = set(cls.__dataclass_fields__) - data.keys()
    if missing:
        raise ValueError(f"the {kind} design is missing the fields {sorted(missing)}")
    return {name: data[name] for name in cls.__dataclass_fields__}


def check_string(name: str, value: object) -> str:
    """``value`` if it is a ``str``, else ``TypeError`` naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def check_number(name: str, value: object) -> float:
    """``value`` as a float if it is an int or a float (not a bool), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def parse_json(text: object) -> object:
    """``json.loads(text)`` for a ``str``; ``TypeError`` otherwise (e.g. bytes)."""
    if not isinstance(text, str):
        raise TypeError(f"from_json needs a JSON string, got {type(text).__name__}")
    return json.loads(text)
