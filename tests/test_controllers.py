"""Adaptive step control: accuracy against tolerance, cost, stats, the switch onto t = 0."""

import pytest
import torch

import indiflow as ind
from problems import GaussianProblem, RecordingRegressor

ADAPTIVE_SOLVERS = [ind.Heun(), ind.BogackiShampine(), ind.DormandPrince()]


@pytest.mark.parametrize("solver", ADAPTIVE_SOLVERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("t_end", [0.0, 0.05])
def test_error_tracks_tolerance_and_cost_grows(solver, t_end):
    problem = GaussianProblem.default()
    field = problem.field()
    y = problem.inputs(32)
    exact = problem.exact(y, t_end)
    tols = [1e-3, 1e-5, 1e-7] if solver.order > 2 else [1e-3, 1e-4, 1e-5]
    nfes = []
    for tol in tols:
        sol = ind.solve(field, solver, y, ind.Adaptive(rtol=tol, atol=tol, t_end=t_end))
        err = (sol.x - exact).abs().max().item()
        assert err <= 10 * tol, (tol, err)
        assert sol.ts[-1].item() == t_end
        s = sol.stats
        assert s.steps == s.accepted + s.rejected
        assert s.accepted == len(sol.ts) - 1
        assert s.rows == s.nfe * y.shape[0]
        nfes.append(s.nfe)
    assert nfes[0] < nfes[1] < nfes[2]


def test_nfe_counts_every_regressor_call_and_never_touches_zero():
    problem = GaussianProblem.default()
    rec = RecordingRegressor(problem.regressor())
    y = problem.inputs(16)
    for solver in ADAPTIVE_SOLVERS:
        rec.times.clear()
        sol = ind.solve(ind.InDIField(rec), solver, y, ind.Adaptive(rtol=1e-5, atol=1e-5))
        assert sol.stats.nfe == len(rec.times)
        times = rec.all_times()
        assert times.min() > 0 and times.max() <= 1


def test_switch_onto_zero_happens_at_small_time_and_meets_tolerance():
    problem = GaussianProblem.default()
    y = problem.inputs(32)
    for tol in (1e-4, 1e-6):
        sol = ind.solve(problem.field(), ind.DormandPrince(), y, ind.Adaptive(rtol=tol, atol=tol))
        t_switch = sol.ts[-2].item()
        assert 0 < t_switch < 0.2
        assert (sol.x - problem.exact(y, 0.0)).abs().max().item() <= 10 * tol


def test_rejections_happen_with_an_oversized_first_step():
    problem = GaussianProblem.default()
    ctrl = ind.Adaptive(rtol=1e-6, atol=1e-6, first_step=0.5)
    sol = ind.solve(problem.field(), ind.BogackiShampine(), problem.inputs(8), ctrl)
    assert sol.stats.rejected >= 1
    assert sol.stats.steps == sol.stats.accepted + sol.stats.rejected


def test_pi_controller_limits_growth_and_shrink():
    ctrl = ind.Adaptive(factor_min=0.2, factor_max=5.0)
    assert ctrl.next_step(0.1, 0.0, None, 4) == pytest.approx(0.5)
    assert ctrl.next_step(0.1, 1e12, None, 4) == pytest.approx(0.02)
    assert ctrl.next_step(0.1, 2.0, 0.5, 4) < 0.1
    assert ctrl.next_step(0.9, 1e-9, 0.5, 4) == ctrl.max_step


def test_error_norm_is_per_sample_rms():
    ctrl = ind.Adaptive(rtol=0.0, atol=0.5)
    err = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    x = torch.zeros(2, 2)
    torch.testing.assert_close(ctrl.error_norm(err, x, x), torch.tensor([2.0, 2.0 * 2**0.5]))


def test_min_step_and_max_steps_raise_runtime_errors_naming_the_knob():
    problem = GaussianProblem.default()
    y = problem.inputs(4)
    with pytest.raises(RuntimeError, match="max_steps=3"):
        ind.solve(problem.field(), ind.Heun(), y, ind.Adaptive(rtol=1e-8, atol=1e-8), max_steps=3)
    ctrl = ind.Adaptive(rtol=1e-12, atol=1e-12, min_step=1e-3, first_step=2e-3)
    with pytest.raises(RuntimeError, match="min_step"):
        ind.solve(problem.field(), ind.Heun(), y, ctrl)


def test_adaptive_without_error_estimate_is_rejected():
    with pytest.raises(ValueError, match="Euler has no error estimate"):
        ind.solve(ind.InDIField(lambda x, t: x), ind.Euler(), torch.ones(2, 2), ind.Adaptive())


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"rtol": -1.0}, ValueError, "rtol must be >= 0"),
        ({"rtol": 0.0, "atol": 0.0}, ValueError, "cannot both be 0"),
        ({"atol": "1e-3"}, TypeError, "atol must be a real number"),
        ({"t_end": 1.0}, ValueError, r"t_end must be in \[0, 1\)"),
        ({"safety": 1.5}, ValueError, "safety"),
        ({"factor_min": 1.5}, ValueError, "factor_min"),
        ({"factor_max": 0.5}, ValueError, "factor_max must be > 1"),
        ({"min_step": 1.0, "max_step": 0.5}, ValueError, "must be larger than min_step"),
        ({"first_step": 0.0}, ValueError, "first_step must be > 0"),
        ({"min_time_ratio": 1.0}, ValueError, "min_time_ratio"),
    ],
)
def test_adaptive_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ind.Adaptive(**kwargs)


def test_fixed_steps_needs_a_grid():
    with pytest.raises(TypeError, match="TimeGrid"):
        ind.FixedSteps([1.0, 0.0])
