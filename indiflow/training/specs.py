"""``[data] degradation``: small typed tables that build :mod:`indiflow.degradations` operators.

``kind`` names the operator; the other keys are exactly the fields of its frozen dataclass,
checked by name and type like every config key::

    degradation = { kind = "bicubic_sr", scale = 4 }
    degradation = [{ kind = "gaussian_blur", sigma = 1.6 }, { kind = "jpeg", quality = 75 }]

An array is applied in order (``Compose``). This name -> class table belongs to the
configuration layer; the degradation classes themselves keep no registry.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from indiflow.degradations import (
    JPEG,
    BicubicSR,
    Compose,
    GaussianBlur,
    GaussianNoise,
    MotionBlur,
)
from indiflow.training._schema import check_table, parse_dataclass, unknown_key_error

KINDS: dict[str, type] = {
    "bicubic_sr": BicubicSR,
    "gaussian_blur": GaussianBlur,
    "motion_blur": MotionBlur,
    "jpeg": JPEG,
    "gaussian_noise": GaussianNoise,
}


def parse_degradation(value: object, name: str) -> tuple[Any, ...]:
    """Build the operators of one table, or of an array of tables, in order.

    Raises:
        ValueError: a missing or unknown ``kind`` or key (naming the closest valid one), or a
            value the operator rejects.
        TypeError: neither a table nor an array of tables, or a wrong-typed field.
    """
    tables = value if isinstance(value, list | tuple) else [value]
    ops = []
    for index, table in enumerate(tables):
        where = f"{name}[{index}]" if isinstance(value, list | tuple) else name
        table = check_table(table, where)
        if "kind" not in table:
            raise ValueError(
                f"{where} needs a kind, one of {', '.join(map(repr, KINDS))}; "
                'e.g. { kind = "bicubic_sr", scale = 4 }'
            )
        kind = table["kind"]
        if kind not in KINDS:
            raise unknown_key_error(str(kind), KINDS, what=f"degradation kind in {where}.kind:")
        fields = {k: v for k, v in table.items() if k != "kind"}
        ops.append(parse_dataclass(KINDS[kind], fields, where))
    return tuple(ops)


def degradation_table(op: Any) -> dict[str, Any]:
    """The config table of an operator built by :func:`parse_degradation` (``kind`` first)."""
    kind = next(name for name, cls in KINDS.items() if type(op) is cls)
    fields = dataclasses.asdict(op)
    return {"kind": kind, **{k: v for k, v in fields.items() if v is not None}}


def build_degradation(ops: tuple[Any, ...], noise_sigma: float = 0.0) -> Any:
    """The operators in order, then ``GaussianNoise(noise_sigma)`` when ``noise_sigma > 0``.

    Returns the single operator when there is one, ``Compose([...])`` otherwise.

    Raises:
        ValueError: nothing to apply.
    """
    ops = list(ops) + ([GaussianNoise(noise_sigma)] if noise_sigma > 0 else [])
    if not ops:
        raise ValueError("no degradation: set data.degradation or data.noise_sigma > 0")
    return ops[0] if len(ops) == 1 else Compose(ops)
