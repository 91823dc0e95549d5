"""Tests of the pilot-batch time-grid design (indiflow/grid_design.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from gaussian_pilot import batch, exact_limit, regressor
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.grid_design import START_RHOS, _grid_from_params, _nelder_mead, _params_from_grid

FIELD = ind.InDIField(regressor)
PILOT = batch(64, seed=1)


@pytest.fixture(scope="module")
def design() -> ind.GridDesign:
    return ind.design_grid(
        FIELD, ind.ExpMultistep3(), PILOT, 5, reference=exact_limit(PILOT), evaluations=150
    )


def rms_error(solver: object, grid: ind.TimeGrid, y: torch.Tensor) -> float:
    x = ind.solve(FIELD, solver, y, ind.FixedSteps(grid)).x
    return float((x - exact_limit(y)).square().mean().sqrt())


def test_returns_a_valid_grid_with_the_requested_steps(design: ind.GridDesign) -> None:
    assert isinstance(design.grid, ind.TimeGrid)
    assert design.steps == design.grid.steps == 5
    assert design.grid.ts[0] == 1.0 and design.grid.ts[-1] == 0.0
    assert design.evaluations_per_sample == 5.0
    assert design.pilot_size == 64
    assert design.objective_evaluations <= 150 + 10
    assert design.pilot_error <= design.start_error
    measured = rms_error(ind.ExpMultistep3(), design.grid, PILOT)
    assert measured == pytest.approx(design.pilot_error, rel=1e-9)


def test_beats_uniform_and_power_grids_on_fresh_inputs(design: ind.GridDesign) -> None:
    test = batch(256, seed=7)
    designed = rms_error(ind.ExpMultistep3(), design.grid, test)
    rivals = [ind.TimeGrid.uniform(5)] + [ind.TimeGrid.power(5, r) for r in (1.5, 2.0, 3.0, 4.0)]
    for grid in rivals:
        assert designed < 0.8 * rms_error(ind.ExpMultistep3(), grid, test), grid


def test_round_trips_through_plain_data(design: ind.GridDesign) -> None:
    data = design.to_dict()
    assert data["format"] == "indiflow.GridDesign" and isinstance(data["grid"], list)
    assert all(isinstance(v, float) for v in data["grid"])
    assert ind.GridDesign.from_dict(json.loads(json.dumps(data))) == design
    assert ind.GridDesign.from_json(design.to_json()) == design


def test_default_reference_is_a_tight_solve() -> None:
    pilot = PILOT[:16]
    auto = ind.design_grid(FIELD, ind.Euler(), pilot, 3, evaluations=20)
    given_ref = ind.design_grid(FIELD, ind.Euler(), pilot, 3, exact_limit(pilot), evaluations=20)
    assert auto.grid.ts == pytest.approx(given_ref.grid.ts, rel=1e-6)


def test_given_start_and_any_solver() -> None:
    start = ind.TimeGrid.power(4, 2.0)
    out = ind.design_grid(FIELD, ind.Heun(), PILOT, 4, exact_limit(PILOT), 40, start=start)
    assert out.start == "given" and out.pilot_error <= out.start_error
    assert out.evaluations_per_sample == 7.0  # 2 per step, the limit step onto 0 is free


@settings(max_examples=20, deadline=None)
@given(ts=st.lists(st.floats(1e-6, 1.0 - 1e-6), min_size=1, max_size=12, unique=True))
def test_plain_data_keeps_floats_exactly(ts: list[float]) -> None:
    grid = ind.TimeGrid([1.0, *sorted(ts, reverse=True), 0.0])
    design = ind.GridDesign(grid, "Euler()", grid.steps, float(grid.steps), 1, 0.1, "given", 0.2, 1)
    assert ind.GridDesign.from_json(design.to_json()).grid.ts == grid.ts


def test_bad_arguments(design: ind.GridDesign) -> None:
    ref = exact_limit(PILOT)
    solver = ind.ExpMultistep3()
    with pytest.raises(TypeError, match="InDIField"):
        ind.design_grid(regressor, solver, PILOT, 5, ref)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="solver object"):
        ind.design_grid(FIELD, "euler", PILOT, 5, ref)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps must be >= 2"):
        ind.design_grid(FIELD, solver, PILOT, 1, ref)
    with pytest.raises(ValueError, match="evaluations must be >= 10"):
        ind.design_grid(FIELD, solver, PILOT, 5, ref, evaluations=3)
    with pytest.raises(ValueError, match="shaped like y"):
        ind.design_grid(FIELD, solver, PILOT, 5, ref[:3])
    with pytest.raises(ValueError, match="from 1 to 0 in steps = 5"):
        ind.design_grid(FIELD, solver, PILOT, 5, ref, start=ind.TimeGrid.uniform(4))
    with pytest.raises(ValueError, match="min_gap must be > 0"):
        ind.design_grid(FIELD, solver, PILOT, 5, ref, min_gap=0.0)
    data = design.to_dict()
    with pytest.raises(ValueError, match="not an indiflow grid design"):
        ind.GridDesign.from_dict({**data, "format": "other"})
    with pytest.raises(ValueError, match="missing the fields"):
        ind.GridDesign.from_dict({k: v for k, v in data.items() if k != "pilot_error"})
    with pytest.raises(ValueError, match="does not match"):
        ind.GridDesign.from_dict({**data, "steps": 6})
    with pytest.raises(ValueError, match="strictly decreasing"):
        ind.GridDesign.from_dict({**data, "grid": [1.0, 0.5, 0.7, 0.2, 0.1, 0.0]})
    with pytest.raises(TypeError, match="JSON string"):
        ind.GridDesign.from_json(data)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a dict"):
        ind.GridDesign.from_dict([1.0, 0.0])


def test_search_that_never_improves_keeps_the_best_power_grid() -> None:
    # F = 0 with Euler is exact on every grid (reference 0, limit step F = 0): no candidate can
    # beat the power grids, so the design is the best of them (ties: the first rho).
    zero = ind.InDIField(lambda x, t: torch.zeros_like(x))
    for evaluations in (10, 12, 40):
        out = ind.design_grid(zero, ind.Euler(), PILOT, 4, evaluations=evaluations)
        assert out.grid == ind.TimeGrid.power(4, 1.0)
        assert out.start == "power(4, rho=1.0)"
        assert out.pilot_error == out.start_error == 0.0


@pytest.mark.parametrize("evaluations", [10, 12])
def test_smallest_budgets_return_a_grid_no_worse_than_the_best_power_grid(evaluations) -> None:
    ref = exact_limit(PILOT)
    out = ind.design_grid(FIELD, ind.Heun(), PILOT, 3, ref, evaluations=evaluations)
    best_power = min(rms_error(ind.Heun(), ind.TimeGrid.power(3, r), PILOT) for r in START_RHOS)
    assert out.start_error == pytest.approx(best_power, rel=1e-12)
    assert out.pilot_error <= out.start_error
    assert rms_error(ind.Heun(), out.grid, PILOT) == pytest.approx(out.pilot_error, rel=1e-9)


def test_parametrisation_is_log_gaps_above_min_gap() -> None:
    # Interior nodes e^-1, e^-3: gaps log(t_{i-1} / t_i) = 1, 2; z = log(gap - min_gap).
    grid = ind.TimeGrid([1.0, math.exp(-1.0), math.exp(-3.0), 0.0])
    z = _params_from_grid(grid, 0.5)
    np.testing.assert_allclose(z, np.log([0.5, 1.5]), rtol=1e-14)
    back = _grid_from_params(z, 0.5)
    assert back.ts == pytest.approx(grid.ts, rel=1e-14)
    # Gaps below min_gap are clamped to min_gap + 1e-6, the smallest gap a candidate can have.
    crowded = ind.TimeGrid([1.0, 0.999, 0.5, 0.0])
    first_gap = -math.log(_grid_from_params(_params_from_grid(crowded, 0.01), 0.01).ts[1])
    assert first_gap == pytest.approx(0.01 + 1e-6, rel=1e-9)
    assert _grid_from_params(np.array([math.log(30.0)]), 0.01) is None  # t_1 = e^-30.01 < 1e-12


@settings(max_examples=30, deadline=None)
@given(
    gaps=st.lists(st.floats(0.02, 3.0), min_size=1, max_size=10),
    min_gap=st.sampled_from([0.001, 0.01]),
)
def test_parametrisation_round_trips(gaps: list[float], min_gap: float) -> None:
    interior = np.exp(-np.cumsum(gaps))
    grid = ind.TimeGrid([1.0, *interior.tolist(), 0.0])
    back = _grid_from_params(_params_from_grid(grid, min_gap), min_gap)
    assert back is not None
    np.testing.assert_allclose(back.ts, grid.ts, rtol=1e-12)


# Nelder-Mead in 2-D (coefficients 1, 2, 1/2, 1/2) from the simplex (0,0), (1,0), (0,1) with
# values 0, 1, 3: worst (0,1), centre c = (0.5,0), reflection r = (1,-1), expansion (1.5,-2),
# outside contraction (0.75,-0.5), inside contraction (0.25,0.5), shrink to (0.5,0), (0,0.5).
R, E, OC, IC, S1, S2 = (1, -1), (1.5, -2), (0.75, -0.5), (0.25, 0.5), (0.5, 0), (0, 0.5)
VERTICES = {(1, 0): 1.0, (0, 1): 3.0}


@pytest.mark.parametrize(
    ("table", "evaluated", "best", "used"),
    [
        ({R: -1.0, E: -2.0}, [R, E], (E, -2.0), 4),  # expansion kept
        ({R: -1.0, E: -0.5}, [R, E], (R, -1.0), 4),  # expansion refused: reflection kept
        ({R: 0.5}, [R], ((0, 0), 0.0), 3),  # reflection between best and second
        ({R: 2.0, OC: -1.0}, [R, OC], (OC, -1.0), 4),  # outside contraction kept
        ({R: 2.0, OC: 2.5, S1: -3.0}, [R, OC, S1, S2], (S1, -3.0), 6),  # ... refused: shrink
        ({R: 4.0, IC: -1.0}, [R, IC], (IC, -1.0), 4),  # inside contraction kept
        ({R: 4.0, IC: 3.5, S2: -3.0}, [R, IC, S1, S2], (S2, -3.0), 6),  # ... refused: shrink
    ],
)
def test_nelder_mead_branches(table, evaluated, best, used) -> None:
    values = {**VERTICES, **table}
    seen = []

    def objective(p: np.ndarray) -> float:
        key = tuple(float(v) for v in p)
        seen.append(key)
        return values.get(key, 10.0)

    point, value, spent = _nelder_mead(objective, np.zeros(2), 0.0, 1.0, budget=3)
    assert seen == [(1.0, 0.0), (0.0, 1.0), *evaluated]
    assert tuple(point) == best[0] and value == best[1] and spent == used


def test_nelder_mead_keeps_a_reflected_point_in_the_simplex() -> None:
    # After the reflection to (1,-1) the simplex is (0,0), (1,-1), (1,0): the next reflection
    # of the worst, (1,0), through the centre (0.5,-0.5) of the other two is (0,-1).
    seen = []

    def objective(p: np.ndarray) -> float:
        seen.append(tuple(float(v) for v in p))
        return {**VERTICES, R: 0.5}.get(seen[-1], 10.0)

    _nelder_mead(objective, np.zeros(2), 0.0, 1.0, budget=4)
    assert seen[3] == (0.0, -1.0)


def test_nelder_mead_stops_on_a_flat_simplex_and_finds_a_minimum() -> None:
    calls = []
    point, value, used = _nelder_mead(lambda p: calls.append(p) or 1.0, np.zeros(3), 1.0, 0.3, 50)
    assert used == 3 and len(calls) == 3 and value == 1.0 and np.array_equal(point, np.zeros(3))
    bowl = lambda p: float(np.sum((p - np.array([0.7, -1.2, 0.4])) ** 2))  # noqa: E731
    point, value, used = _nelder_mead(bowl, np.zeros(3), bowl(np.zeros(3)), 0.3, 400)
    np.testing.assert_allclose(point, [0.7, -1.2, 0.4], atol=1e-3)
    assert value == bowl(point) and used <= 400 + 3


def test_empty_pilot_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="pilot batch y is empty"):
        ind.design_grid(FIELD, ind.Euler(), PILOT[:0], 3, evaluations=10)


def _message(exc: type[Exception], call) -> str:
    with pytest.raises(exc) as info:
        call()
    return str(info.value)


def test_design_grid_errors_name_what_was_received() -> None:
    ref = exact_limit(PILOT)
    euler = ind.Euler()

    def design(**changes):
        args = {"field": FIELD, "solver": euler, "y": PILOT, "steps": 5, "reference": ref}
        return lambda: ind.design_grid(**{**args, **changes})

    cases = [
        (TypeError, design(field=regressor), "field must be an indiflow.InDIField, got function"),
        (
            TypeError,
            design(solver="euler"),
            "solver must be a solver object such as ind.Euler(), got 'euler'",
        ),
        (ValueError, design(steps=1), "steps must be >= 2, got 1"),
        (ValueError, design(evaluations=9), "evaluations must be >= 10, got 9"),
        (ValueError, design(min_gap=0.0), "min_gap must be > 0, got 0.0"),
        (
            ValueError,
            design(min_gap=6.0),
            "min_gap * steps must be < 30 (t_min >= e^-30), got 30.0",
        ),
        (TypeError, design(start=[1.0, 0.0]), "start must be a TimeGrid or None, got list"),
        (
            ValueError,
            design(start=ind.TimeGrid.uniform(4)),
            "start must run from 1 to 0 in steps = 5 steps, got 4 steps from 1.0 to 0.0",
        ),
        (
            ValueError,
            design(start=ind.TimeGrid([0.9, 0.7, 0.5, 0.3, 0.1, 0.0])),
            "start must run from 1 to 0 in steps = 5 steps, got 5 steps from 0.9 to 0.0",
        ),
        (
            ValueError,
            design(start=ind.TimeGrid([1.0, 0.8, 0.6, 0.4, 0.2, 0.1])),
            "start must run from 1 to 0 in steps = 5 steps, got 5 steps from 1.0 to 0.1",
        ),
        (
            ValueError,
            design(reference=ref[:3]),
            "reference must be shaped like y (64, 2), got (3, 2)",
        ),
        (
            ValueError,
            design(y=PILOT[:0], reference=None),
            "the pilot batch y is empty (shape (0, ...)); a grid is designed from the errors "
            "on pilot inputs, so give it a representative batch of inputs",
        ),
    ]
    for exc, call, message in cases:
        assert _message(exc, call) == message


PLAIN = ind.GridDesign(
    ind.TimeGrid.uniform(5), "Euler()", 5, 5.0, 64, 0.1, "power(5, rho=1.0)", 0.2, 150
)

NOT_A_DESIGN = "not an indiflow grid design: expected format 'indiflow.GridDesign' version 1, "


@pytest.mark.parametrize(
    ("changes", "exc", "message"),
    [
        (
            {"format": "other"},
            ValueError,
            NOT_A_DESIGN + "got format 'other' version 1",
        ),
        (
            {"version": 2},
            ValueError,
            NOT_A_DESIGN + "got format 'indiflow.GridDesign' version 2",
        ),
        (
            {"pilot_error": None},
            ValueError,
            "the grid design is missing the fields ['pilot_error']",
        ),
        ({"solver": 1}, TypeError, "solver must be a string, got int"),
        ({"start": None}, TypeError, "start must be a string, got NoneType"),
        ({"steps": "5"}, TypeError, "steps must be an int, got str: '5'"),
        ({"steps": 0}, ValueError, "steps must be >= 1, got 0"),
        ({"pilot_size": 0}, ValueError, "pilot_size must be >= 1, got 0"),
        ({"objective_evaluations": -1}, ValueError, "objective_evaluations must be >= 0, got -1"),
        ({"pilot_error": True}, TypeError, "pilot_error must be a number, got bool"),
        ({"start_error": "0.2"}, TypeError, "start_error must be a number, got str"),
        (
            {"evaluations_per_sample": [5.0]},
            TypeError,
            "evaluations_per_sample must be a number, got list",
        ),
        ({"steps": 6}, ValueError, "steps = 6 does not match the grid's 5 steps"),
    ],
)
def test_from_dict_errors_name_the_field_and_what_was_received(changes, exc, message) -> None:
    data = {**PLAIN.to_dict(), **changes}
    if changes == {"pilot_error": None}:
        del data["pilot_error"]
    assert _message(exc, lambda: ind.GridDesign.from_dict(data)) == message


def test_from_dict_accepts_ints_for_numbers_and_round_trips() -> None:
    data = {**PLAIN.to_dict(), "evaluations_per_sample": 5, "pilot_error": 0, "start_error": 1}
    rebuilt = ind.GridDesign.from_dict(data)
    assert [type(rebuilt.evaluations_per_sample), type(rebuilt.pilot_error)] == [float, float]
    assert (rebuilt.evaluations_per_sample, rebuilt.pilot_error, rebuilt.start_error) == (
        5.0,
        0.0,
        1.0,
    )
    assert ind.GridDesign.from_dict(PLAIN.to_dict()) == PLAIN
    assert ind.GridDesign.from_json(PLAIN.to_json()) == PLAIN
    assert (
        _message(TypeError, lambda: ind.GridDesign.from_json(b"{}"))
        == "from_json needs a JSON string, got bytes"
    )
    assert (
        _message(TypeError, lambda: ind.GridDesign.from_dict([1.0]))
        == "a grid design must be a dict, got list"
    )
