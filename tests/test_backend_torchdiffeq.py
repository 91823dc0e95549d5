"""torchdiffeq backend: order and accuracy on the closed form, endpoint safety, stats, inputs."""

import sys

import numpy as np
import pytest
import torch

import indiflow as ind
from indiflow.backends import TorchDiffEq
from problems import GaussianProblem, RecordingRegressor

pytest.importorskip("torchdiffeq")


def fitted_slope(method: str, ns: list[int], t_end: float) -> float:
    problem = GaussianProblem.default()
    y = problem.inputs(8)
    exact = problem.exact(y, t_end)
    steps, errors = [], []
    for n in ns:
        grid = ind.TimeGrid(torch.linspace(1.0, t_end, n + 1, dtype=torch.float64))
        sol = ind.solve(problem.field(), TorchDiffEq(method), y, ind.FixedSteps(grid))
        steps.append((1.0 - t_end) / n)
        errors.append((sol.x - exact).abs().max().item())
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("heun2", 2), ("rk4", 4)])
def test_fixed_grid_methods_keep_their_order_on_the_closed_form(method, order):
    # (torchdiffeq's "midpoint" converges with slope 3 on this one-Gaussian problem: its h^3
    # error term cancels for this linear field, so it is left out of the order check.)
    slope = fitted_slope(method, [16, 32, 64], t_end=0.05)
    assert abs(slope - order) < 0.25, slope


def test_fixed_grid_onto_zero_ends_with_the_exact_limit_step():
    problem = GaussianProblem.default()
    rec = RecordingRegressor(problem.regressor())
    field = ind.InDIField(rec)
    y = problem.inputs(6)
    grid = ind.TimeGrid.uniform(10)
    sol = ind.solve(field, TorchDiffEq("rk4"), y, ind.FixedSteps(grid), save_trajectory=True)
    assert torch.equal(sol.ts, torch.tensor(grid.ts, dtype=torch.float64))
    assert sol.xs.shape == (11, *y.shape)
    t_last = grid.ts[-2]
    torch.testing.assert_close(sol.x, problem.regressor()(sol.xs[-2], t_last), rtol=0, atol=0)
    # rk4 (3/8 rule): 4 evaluations on each of the 9 positive steps, 1 for the limit step.
    assert sol.stats == ind.Stats(nfe=37, rows=37 * 6, steps=10, accepted=10, rejected=0)
    times = rec.all_times()
    assert times.min() >= t_last - 1e-15 and times.max() <= 1.0
    assert len(rec.times) == sol.stats.nfe


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
@pytest.mark.parametrize("t_end", [0.0, 0.05])
def test_adaptive_methods_meet_the_tolerance(method, t_end):
    problem = GaussianProblem.default()
    y = problem.inputs(16)
    exact = problem.exact(y, t_end)
    for tol in (1e-5, 1e-7):
        ctrl = ind.Adaptive(rtol=tol, atol=tol, t_end=t_end)
        sol = ind.solve(problem.field(), TorchDiffEq(method), y, ctrl)
        assert (sol.x - exact).abs().max().item() <= 10 * tol
        assert sol.ts[0] == 1.0 and sol.ts[-1] == t_end


@pytest.mark.parametrize("first_step", [None, 0.05])
def test_adaptive_solve_is_endpoint_safe_and_counts_every_call(first_step):
    problem = GaussianProblem.default()
    rec = RecordingRegressor(problem.regressor())
    y = problem.inputs(8)
    ctrl = ind.Adaptive(rtol=1e-6, atol=1e-6, first_step=first_step)
    sol = ind.solve(ind.InDIField(rec), TorchDiffEq("dopri5"), y, ctrl)
    times = rec.all_times()
    assert times.min() > 0 and times.max() <= 1.0
    assert sol.stats.nfe == len(rec.times) and sol.stats.rows == rec.rows
    assert sol.stats.steps == sol.stats.accepted + sol.stats.rejected
    # F(y, 1) is evaluated once: torchdiffeq's first stage reuses the solve's evaluation.
    assert int((torch.stack([t[0] for t in rec.times]) == 1.0).sum()) == 1
    assert sol.ts[-1] == 0.0 and 0.0 < sol.ts[-2] < 0.1
    torch.testing.assert_close(sol.x, problem.exact(y, 0.0), rtol=0, atol=1e-5)


def test_state_dtype_and_shape_are_kept():
    field = ind.InDIField(lambda x, t: 0.5 * x)
    y = torch.randn(2, 3, 4, 4)
    for solver, ctrl in [
        (TorchDiffEq("rk4"), ind.FixedSteps(ind.TimeGrid.uniform(4))),
        (TorchDiffEq("dopri5"), ind.Adaptive(rtol=1e-4, atol=1e-4)),
    ]:
        sol = ind.solve(field, solver, y, ctrl)
        assert sol.x.shape == y.shape and sol.x.dtype == torch.float32


def test_bad_method_and_options_are_refused():
    with pytest.raises(
        ValueError, match=r"unknown or unsupported torchdiffeq method 'rk5'.*dopri5"
    ):
        TorchDiffEq("rk5")
    with pytest.raises(ValueError, match="scipy_solver"):
        TorchDiffEq("scipy_solver")
    with pytest.raises(TypeError, match="method must be a torchdiffeq method name"):
        TorchDiffEq(ind.DormandPrince())
    with pytest.raises(TypeError, match="options must be a dict"):
        TorchDiffEq("rk4", options=[("step_size", 0.1)])
    with pytest.raises(ValueError, match=r"\['step_size'\] are set by indiflow from the grid"):
        TorchDiffEq("rk4", options={"step_size": 0.1})
    with pytest.raises(ValueError, match=r"\['norm'\] are set by indiflow from the controller"):
        TorchDiffEq("dopri5", options={"norm": torch.linalg.norm})


def test_method_and_controller_must_match():
    field = ind.InDIField(lambda x, t: 0.5 * x)
    y = torch.randn(3, 2)
    grid = ind.FixedSteps(ind.TimeGrid.uniform(4))
    with pytest.raises(ValueError, match="'dopri5' chooses its own steps"):
        ind.solve(field, TorchDiffEq("dopri5"), y, grid)
    with pytest.raises(ValueError, match="'rk4' follows a grid"):
        ind.solve(field, TorchDiffEq("rk4"), y, ind.Adaptive())
    with pytest.raises(TypeError, match="TorchDiffEq runs with"):
        ind.solve(field, TorchDiffEq("dopri5"), y, ind.PerSampleAdaptive())
    with pytest.raises(TypeError, match="InDIField"):
        ind.solve(lambda x, t: x, TorchDiffEq("rk4"), y, grid)
    with pytest.raises(ValueError, match="more than max_steps=2"):
        ind.solve(field, TorchDiffEq("rk4"), y, grid, max_steps=2)


def test_missing_torchdiffeq_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchdiffeq", None)
    with pytest.raises(ImportError, match="pip install torchdiffeq"):
        TorchDiffEq("dopri5")
