"""Adaptive step control: accuracy against tolerance, cost, stats, the switch onto t = 0."""

import math

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


def test_limit_step_is_never_trusted_above_switch_time_max():
    ctrl = ind.Adaptive(switch_time_max=0.05)
    x = torch.zeros(2, 2, dtype=torch.float64)
    assert ctrl.limit_error(0.06, x, x, 0.5, x) == float("inf")
    assert ctrl.limit_error(0.05, x, x, 0.5, x) == 0.0
    per_sample = ctrl.limit_errors(torch.tensor([0.06, 0.04]), x, x, torch.tensor([0.5, 0.5]), x)
    assert per_sample.tolist() == [float("inf"), 0.0]


def test_switch_waits_for_the_mode_to_commit_near_a_boundary():
    # Four modes, std 0.1: the posterior commits to a mode only once t sigma < ~0.1. Before the
    # cap, single samples near the x1 = 0 boundary switched at t ~ 0.3 with errors near 0.09.
    means = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]], dtype=torch.float64)
    oracle = ind.oracles.PosteriorMean(
        ind.oracles.GaussianMixture(means, 0.1), ind.oracles.LinearDegradation(None, sigma=1.0)
    )
    field = ind.InDIField(oracle)
    g = torch.Generator().manual_seed(0)
    y = 0.3 * torch.randn(16, 2, generator=g, dtype=torch.float64) + torch.tensor([0.0, 1.0])
    ts = torch.cat([torch.logspace(0, -5, 2000, dtype=torch.float64), torch.zeros(1)])
    ref = ind.solve(field, ind.DormandPrince(), y, ind.FixedSteps(ind.TimeGrid(ts))).x
    for i in range(16):
        sol = ind.solve(
            field, ind.BogackiShampine(), y[i : i + 1], ind.Adaptive(rtol=1e-3, atol=1e-3)
        )
        assert sol.ts[-2].item() <= 0.05
        assert (sol.x - ref[i]).abs().max().item() <= 1e-2


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
        ({"switch_time_max": 0.0}, ValueError, "switch_time_max must be > 0"),
        ({"switch_time_max": 1.5}, ValueError, r"switch_time_max must be in \(0, 1\]"),
    ],
)
def test_adaptive_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ind.Adaptive(**kwargs)


def test_fixed_steps_needs_a_grid():
    with pytest.raises(TypeError, match="TimeGrid"):
        ind.FixedSteps([1.0, 0.0])


@pytest.mark.parametrize(
    "controller",
    [ind.Adaptive(rtol=1e-4, atol=1e-4, first_step=0.05), ind.Adaptive(rtol=1e-4, atol=1e-4)],
    ids=["first_step", "heuristic"],
)
def test_stats_count_exactly_the_regressor_calls_made(controller):
    problem = GaussianProblem.default()
    rec = RecordingRegressor(problem.regressor())
    y = problem.inputs(5)
    for solver in ADAPTIVE_SOLVERS:
        rec.times.clear()
        rec.rows = 0
        sol = ind.solve(ind.InDIField(rec), solver, y, controller)
        assert sol.stats.nfe == len(rec.times)
        assert sol.stats.rows == rec.rows == 5 * len(rec.times)


def test_a_given_first_step_is_the_first_attempted_step():
    rec = RecordingRegressor(GaussianProblem.default().regressor())
    ctrl = ind.Adaptive(first_step=0.3, max_step=0.25)
    ind.solve(ind.InDIField(rec), ind.Heun(), GaussianProblem.default().inputs(3), ctrl)
    # No starting-step probe: F at t = 1, then Heun's stage at s = 1 - min(first_step, max_step).
    assert [float(t[0]) for t in rec.times[:2]] == [1.0, 0.75]


def test_switch_time_max_compares_the_same_for_floats_and_tensors():
    # At exactly switch_time_max the limit step is allowed; one ulp above it is not.
    ctrl = ind.Adaptive(rtol=0.0, atol=1.0, switch_time_max=0.05)
    x = torch.zeros(1, 2, dtype=torch.float64)
    den = torch.full((1, 2), 0.5, dtype=torch.float64)
    above = math.nextafter(0.05, 1.0)
    # Estimate t^2 (F - F_prev) / (t_prev^2 - t^2) with F - F_prev = 0.5, t_prev = 0.1.
    expected = 0.05**2 * 0.5 / (0.1**2 - 0.05**2)
    assert ctrl.limit_error(0.05, x, den, 0.1, x) == pytest.approx(expected, rel=1e-14)
    assert ctrl.limit_error(above, x, den, 0.1, x) == math.inf
    t = torch.tensor([0.05, above], dtype=torch.float64)
    got = ctrl.limit_errors(
        t, x.expand(2, 2), den.expand(2, 2), torch.full((2,), 0.1, dtype=torch.float64), x
    )
    assert got[0].item() == pytest.approx(expected, rel=1e-14) and got[1].item() == math.inf
