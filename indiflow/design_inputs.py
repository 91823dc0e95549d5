"""Argument checks and the pilot reference shared by ``design_grid`` and ``design_solver``."""

from __future__ import annotations

import torch

from indiflow._checks import check_finite_tensor, check_int, check_positive, check_tensor
from indiflow.controllers import Adaptive
from indiflow.field import InDIField
from indiflow.solve import solve
from indiflow.solvers import DormandPrince, Solver


def check_pilot(field: object, solver: object, y: object, steps: object, what: str) -> int:
    """Check the field, solver, pilot batch and step count of a design; return ``steps``.

    ``what`` names what is designed in the empty-batch message (``"a grid"``).
    """
    if not isinstance(field, InDIField):
        raise TypeError(f"field must be an indiflow.InDIField, got {type(field).__name__}")
    if not callable(getattr(solver, "step", None)):
        raise TypeError(f"solver must be a solver object such as ind.Euler(), got {solver!r}")
    check_tensor("y", y, min_dim=2)
    check_finite_tensor("y", y)
    if y.shape[0] == 0:
        raise ValueError(
            f"the pilot batch y is empty (shape (0, ...)); {what} is designed from the errors "
            "on pilot inputs, so give it a representative batch of inputs"
        )
    return check_int("steps", steps, 2)


def check_min_gap(min_gap: object, steps: int) -> float:
    """``min_gap > 0`` with ``min_gap * steps < 30``, so the smallest node stays above e^-30."""
    min_gap = check_positive("min_gap", min_gap)
    if min_gap * steps >= 30.0:
        raise ValueError(f"min_gap * steps must be < 30 (t_min >= e^-30), got {min_gap * steps}")
    return min_gap


def pilot_reference(
    field: InDIField, y: torch.Tensor, reference: object
) -> tuple[torch.Tensor, int]:
    """``(reference, evaluations)``: the given one checked against ``y``'s shape, or ``x(0)`` of
    ``y`` by adaptive ``DormandPrince`` at ``rtol = atol = 1e-9`` and the rows it evaluated."""
    rows = 0
    if reference is None:
        tight = Adaptive(rtol=1e-9, atol=1e-9)
        solver: Solver = DormandPrince()
        sol = solve(field, solver, y, tight, max_steps=100_000)
        reference, rows = sol.x, sol.stats.rows
    check_tensor("reference", reference)
    if reference.shape != y.shape:
        raise ValueError(
            f"reference must be shaped like y {tuple(y.shape)}, got {tuple(reference.shape)}"
        )
    return reference, rows
