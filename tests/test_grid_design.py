"""Tests of the pilot-batch time-grid design (indiflow/grid_design.py)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind

MEAN = torch.tensor([0.5, -0.3], dtype=torch.float64)
COV = torch.tensor([[0.02, 0.01], [0.01, 0.1]], dtype=torch.float64)
EIGVALS, EIGVECS = torch.linalg.eigh(COV)


def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact ``F`` for ``N(MEAN, COV)``, ``H = I``, sigma 1."""
    gain = EIGVALS / (EIGVALS + t[:, None] ** 2)
    return MEAN + ((x_t - MEAN) @ EIGVECS * gain) @ EIGVECS.mT


def exact_limit(y: torch.Tensor) -> torch.Tensor:
    """``x(0) = mu + C^{1/2} (C + I)^{-1/2} (y - mu)``."""
    gain = (EIGVALS / (EIGVALS + 1.0)).sqrt()
    return MEAN + ((y - MEAN) @ EIGVECS * gain) @ EIGVECS.mT


def batch(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return MEAN + torch.randn(n, 2, generator=g, dtype=torch.float64)


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
