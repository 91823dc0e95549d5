"""A small TOML writer for resolved configs (``tomllib`` reads TOML but does not write it).

Covers what a config holds: a top-level table of sections, each a table of strings, ints,
floats, booleans, arrays and inline tables. Strings and keys that are not bare are written as
basic strings: ``"`` and ``\\`` escaped, control characters (U+0000-U+001F, U+007F) as
``\\uXXXX``, everything else verbatim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def dumps(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text of ``{section: {key: value}}``; each section becomes a ``[section]`` header."""
    lines: list[str] = []
    for name, table in sections.items():
        if lines:
            lines.append("")
        lines.append(f"[{_key(name)}]")
        lines.extend(f"{_key(key)} = {_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare and key else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _string(text: str) -> str:
    escaped = "".join(
        "\\" + char if char in '"\\' else f"\\u{ord(char):04x}" if _is_control(char) else char
        for char in text
    )
    return f'"{escaped}"'


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F
