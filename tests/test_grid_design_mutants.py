"""Exact behaviour of grid_design.py that the design tests leave open: the JSON text, the
Nelder–Mead stopping rule ``max f - min f <= 1e-9 * max(1, |min f|)``, the evaluation budget,
the search the module docstring describes (written out here as a reference), and messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import indiflow as ind
from indiflow.grid_design import (
    ROUND,
    START_RHOS,
    _grid_from_params,
    _nelder_mead,
    _params_from_grid,
)


def test_to_json_writes_one_space_indented_text() -> None:
    design = ind.GridDesign(
        ind.TimeGrid([1.0, 0.25, 0.0]), "Euler()", 2, 2.0, 3, 0.125, "given", 0.5, 7
    )
    assert design.to_json() == (
        "{\n"
        ' "format": "indiflow.GridDesign",\n'
        ' "version": 1,\n'
        ' "grid": [\n'
        "  1.0,\n"
        "  0.25,\n"
        "  0.0\n"
        " ],\n"
        ' "solver": "Euler()",\n'
        ' "steps": 2,\n'
        ' "evaluations_per_sample": 2.0,\n'
        ' "pilot_size": 3,\n'
        ' "pilot_error": 0.125,\n'
        ' "start": "given",\n'
        ' "start_error": 0.5,\n'
        ' "objective_evaluations": 7\n'
        "}"
    )


def _first_simplex(start_value: float, e1: float, e2: float) -> tuple[list, float, int]:
    """Nelder–Mead in 2-D from (0,0), (1,0), (0,1) with the given values (10 elsewhere)."""
    values = {(1.0, 0.0): e1, (0.0, 1.0): e2}
    seen: list[tuple[float, ...]] = []

    def objective(p: np.ndarray) -> float:
        seen.append(tuple(float(v) for v in p))
        return values.get(seen[-1], 10.0)

    _, value, used = _nelder_mead(objective, np.zeros(2), start_value, 1.0, budget=3)
    assert used == len(seen)
    return seen, value, used


@pytest.mark.parametrize(
    ("start_value", "e1", "e2"),
    [
        (0.0, 1e-9, 1e-9),  # spread 1e-9 = the threshold 1e-9 * max(1, 0): stop (<=)
        (1000.0, 1000.0 + 5e-7, 1000.0 + 5e-7),  # 5e-7 <= 1e-9 * 1000: relative to |min f|
        (-math.inf, 1.0, 2.0),  # an exact vertex (log error -inf): inf <= 1e-9 * inf
    ],
)
def test_nelder_mead_stops_on_a_simplex_within_the_tolerance(start_value, e1, e2) -> None:
    seen, value, used = _first_simplex(start_value, e1, e2)
    assert seen == [(1.0, 0.0), (0.0, 1.0)] and used == 2 and value == start_value


@pytest.mark.parametrize(
    ("start_value", "e1", "e2"),
    [
        (0.0, 1.5e-9, 1.5e-9),  # spread 1.5e-9 > 1e-9 * max(1, 0)
        (0.0, 0.0, 1.0),  # only the worst vertex is off: the spread is max - min, not 2nd - min
        (0.0, 1.0, 1.0),  # the two worst agree, the best is 1 below
    ],
)
def test_nelder_mead_continues_on_a_simplex_outside_the_tolerance(start_value, e1, e2) -> None:
    seen, _, used = _first_simplex(start_value, e1, e2)
    assert len(seen) > 2 and used == len(seen)


# --------------------------------------------------------------------------------------------
# design_grid's budget: objective_evaluations counts every pilot solve it made

MEAN = torch.tensor([0.5, -0.3], dtype=torch.float64)
VAR = torch.tensor([0.02, 0.1], dtype=torch.float64)  # a diagonal prior N(MEAN, diag(VAR))


def _counting_field() -> tuple[ind.InDIField, list[int]]:
    """Exact ``F`` for ``N(MEAN, diag(VAR))``, ``H = I``, sigma 1; counts solves (calls at t=1)."""
    solves = [0]

    def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        solves[0] += int(bool((t == 1.0).all()))
        return MEAN + VAR / (VAR + t[:, None] ** 2) * (x_t - MEAN)

    return ind.InDIField(regressor), solves


PILOT = MEAN + torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
LIMIT = MEAN + (VAR / (VAR + 1.0)).sqrt() * (PILOT - MEAN)  # x(0) of the exact ODE


@pytest.mark.parametrize(
    ("steps", "evaluations", "start"),
    [(3, 40, None), (4, 60, None), (3, 25, ind.TimeGrid.power(3, 2.0)), (3, 10, None)],
)
def test_objective_evaluations_count_every_pilot_solve(steps, evaluations, start) -> None:
    field, solves = _counting_field()
    out = ind.design_grid(
        field, ind.Euler(), PILOT, steps, LIMIT, evaluations=evaluations, start=start
    )
    assert out.objective_evaluations == solves[0]
    # The search stops once it has spent the budget; one simplex move can overshoot it by at
    # most 1 + 1 + (steps - 1) evaluations (reflection, contraction, shrink); + 1 final solve.
    assert evaluations + 1 <= solves[0] <= evaluations + steps + 2
    assert out.evaluations_per_sample == float(steps) and out.pilot_size == 16
    measured = float(
        (ind.solve(field, ind.Euler(), PILOT, ind.FixedSteps(out.grid)).x - LIMIT)
        .square()
        .mean()
        .sqrt()
    )
    assert out.pilot_error == pytest.approx(measured, rel=1e-12)


def _reference_design(
    field: ind.InDIField,
    steps: int,
    evaluations: int,
    start: ind.TimeGrid | None = None,
    min_gap: float = 0.01,
) -> tuple[ind.TimeGrid, float, str, float, int]:
    """The search the module docstring describes, written out from its text with Euler: score
    the power grids ``(1 - i/n)^rho`` (rho in START_RHOS); from each, in order of error, a
    Nelder–Mead search (step 0.3) of ``(budget left) // (2 * starts)`` evaluations on the
    log-gap parameters ``z`` (objective ``log RMS``); then restarts from the best point, each of
    at most ``ROUND * dim`` evaluations (at least ``dim + 2``), until the budget is spent."""

    def rms(grid: ind.TimeGrid) -> float:
        x = ind.solve(field, ind.Euler(), PILOT, ind.FixedSteps(grid)).x
        return float((x - LIMIT).square().mean().sqrt())

    def objective(z: np.ndarray) -> float:
        grid = _grid_from_params(z, min_gap)
        return math.inf if grid is None else math.log(rms(grid))

    if start is None:
        scored = sorted((rms(ind.TimeGrid.power(steps, rho)), rho) for rho in START_RHOS)
        starts = [ind.TimeGrid.power(steps, rho) for _, rho in scored]
        label, spent = f"power({steps}, rho={scored[0][1]})", len(scored)
        share = (evaluations - spent) // (2 * len(scored))
    else:  # one given grid: no first short search, straight to the restarts
        scored, starts, label, spent, share = [(rms(start), None)], [start], "given", 1, 0
    found = []
    for grid in starts:
        z = _params_from_grid(grid, min_gap)
        value, spent = objective(z), spent + 1
        if share > z.size + 2:
            z, value, used = _nelder_mead(objective, z, value, 0.3, share)
            spent += used
        found.append((value, z))
    value, z = min(found, key=lambda item: item[0])
    while spent < evaluations:
        budget = max(min(evaluations - spent, ROUND * z.size), z.size + 2)
        z, value, used = _nelder_mead(objective, z, value, 0.3, budget)
        spent += used
    if math.exp(value) < scored[0][0]:
        return _grid_from_params(z, min_gap), math.exp(value), label, scored[0][0], spent + 1
    return starts[0], scored[0][0], label, scored[0][0], spent + 1


# Budgets around the first searches' threshold ``share > dim + 2`` (dim = 2): share =
# (evaluations - 6) // 12 = 4 (no search), 5 (search), 5.5 and 6.17 before rounding down.
@pytest.mark.parametrize(
    ("steps", "evaluations", "start"),
    [
        (3, 10, None),
        (3, 13, None),
        (3, 40, None),
        (4, 90, None),
        (3, 54, None),
        (3, 66, None),
        (3, 72, None),
        (3, 80, None),
        (3, 30, ind.TimeGrid.power(3, 2.0)),
    ],
)
def test_design_follows_the_documented_search_exactly(steps, evaluations, start) -> None:
    field, _ = _counting_field()
    out = ind.design_grid(
        field, ind.Euler(), PILOT, steps, LIMIT, evaluations=evaluations, start=start
    )
    grid, error, label, start_error, spent = _reference_design(field, steps, evaluations, start)
    assert out.grid.ts == grid.ts
    assert (out.pilot_error, out.start, out.objective_evaluations) == (error, label, spent)
    assert out.start_error == start_error
    assert out.solver == "Euler(order=1, error_order=None)" and out.steps == steps


def test_a_pilot_solved_exactly_spends_only_the_power_grids() -> None:
    """F = 0 with Euler is exact on every grid (error 0): no search runs, 6 + 1 solves."""
    solves = [0]

    def zero(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        solves[0] += int(bool((t == 1.0).all()))
        return torch.zeros_like(x_t)

    zeros = torch.zeros_like(PILOT)  # x(t) = t y exactly, so x(0) = 0
    out = ind.design_grid(ind.InDIField(zero), ind.Euler(), PILOT, 3, zeros, evaluations=40)
    assert out.objective_evaluations == solves[0] == len(START_RHOS) + 1
    assert out.grid == ind.TimeGrid.power(3, 1.0) and out.pilot_error == 0.0


def test_default_reference_is_dormand_prince_at_1e_9() -> None:
    """``reference=None``: the start error is measured against a DormandPrince solve at
    rtol = atol = 1e-9, within 1e-8 of the one against the exact limit."""
    field, _ = _counting_field()
    auto = ind.design_grid(field, ind.Euler(), PILOT, 3, evaluations=10)
    exact = ind.design_grid(field, ind.Euler(), PILOT, 3, LIMIT, evaluations=10)
    assert auto.start_error == pytest.approx(exact.start_error, rel=0, abs=1e-8)
    assert auto.start == exact.start


def test_design_grid_names_y_and_reference_in_its_messages() -> None:
    field, _ = _counting_field()
    cases = [
        (
            TypeError,
            ([1.0, 2.0], LIMIT),
            "y must be a torch.Tensor, got list; wrap arrays with torch.as_tensor",
        ),
        (
            ValueError,
            (PILOT[0], LIMIT),
            "y must have at least 2 dimension(s) (batch first), got shape (2,)",
        ),
        (
            ValueError,
            (torch.full((4, 2), math.nan, dtype=torch.float64), LIMIT[:4]),
            "y holds NaN or infinite values; clean or clamp it before solving",
        ),
        (
            TypeError,
            (PILOT, [0.0]),
            "reference must be a torch.Tensor, got list; wrap arrays with torch.as_tensor",
        ),
    ]
    for exc, (y, reference), message in cases:
        with pytest.raises(exc) as info:
            ind.design_grid(field, ind.Euler(), y, 3, reference, evaluations=10)
        assert str(info.value) == message


def test_nelder_mead_takes_a_reflection_that_only_ties_the_best_without_expanding() -> None:
    # Values 0, 1, 3 at (0,0), (1,0), (0,1); the reflection (1,-1) also has value 0: it is not
    # better than the best (strict <), so no expansion is tried; it replaces the worst vertex.
    seen: list[tuple[float, ...]] = []
    values = {(1.0, 0.0): 1.0, (0.0, 1.0): 3.0, (1.0, -1.0): 0.0}

    def objective(p: np.ndarray) -> float:
        seen.append(tuple(float(v) for v in p))
        return values.get(seen[-1], 10.0)

    point, value, used = _nelder_mead(objective, np.zeros(2), 0.0, 1.0, budget=3)
    assert seen == [(1.0, 0.0), (0.0, 1.0), (1.0, -1.0)] and used == 3
    assert tuple(point) == (0.0, 0.0) and value == 0.0
