"""Failure and precision paths of adaptive control: non-finite fields, float16, zero tolerances,
empty batches, and times that round to 0 in the state's dtype."""

import math
from dataclasses import dataclass

import pytest
import torch

import indiflow as ind
from indiflow.backends import TorchDiffEq
from indiflow.controllers import initial_step, scaled_rms
from indiflow.solvers import StepResult
from problems import RecordingRegressor

F64 = torch.float64
MEAN, VAR = 0.3, 0.05


def shrink(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Elementwise Gaussian posterior mean ``mu + v / (v + t^2) (x - mu)`` (``sigma = 1``)."""
    tt = t.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    return MEAN + VAR / (VAR + tt * tt) * (x - MEAN)


def shrink_exact(y: torch.Tensor) -> torch.Tensor:
    """``x(0)`` of ``shrink``: ``mu + sqrt(v / (v + 1)) (y - mu)``."""
    return MEAN + math.sqrt(VAR / (VAR + 1.0)) * (y - MEAN)


def inputs(n: int = 8, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=F64).to(dtype)


def nan_below(t_bad: float):
    """``shrink``, but NaN wherever ``t < t_bad`` (``t_bad > 1``: NaN everywhere)."""

    def regressor(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = shrink(x, t)
        return torch.where(t.reshape(-1, 1) < t_bad, torch.full_like(out, math.nan), out)

    return regressor


ADAPTIVE = [
    ("Adaptive", ind.Heun(), ind.Adaptive),
    ("PerSampleAdaptive", ind.Heun(), ind.PerSampleAdaptive),
    ("dopri5", TorchDiffEq("dopri5"), ind.Adaptive),
]


@pytest.mark.parametrize(("name", "solver", "controller"), ADAPTIVE, ids=[a[0] for a in ADAPTIVE])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_field_at_the_start_is_a_runtime_error_naming_it(name, solver, controller, bad):
    rec = RecordingRegressor(lambda x, t: torch.full_like(x, bad))
    with pytest.raises(RuntimeError, match=r"non-finite values.*at the start, t = 1\b"):
        ind.solve(ind.InDIField(rec), solver, inputs(), controller())
    assert len(rec.times) == 1  # raised before the probe, never evaluated at a NaN time


@pytest.mark.parametrize(("name", "solver", "controller"), ADAPTIVE, ids=[a[0] for a in ADAPTIVE])
def test_non_finite_probe_of_the_starting_step_is_named(name, solver, controller):
    rec = RecordingRegressor(nan_below(1.0))  # finite at t = 1 only
    with pytest.raises(RuntimeError, match=r"non-finite values.*starting-step probe from t = 1"):
        ind.solve(ind.InDIField(rec), solver, inputs(), controller())
    assert len(rec.times) == 2


def test_non_finite_field_with_a_first_step_names_the_first_step():
    field = ind.InDIField(nan_below(2.0))
    with pytest.raises(RuntimeError, match=r"in the step from t = 1 to s = 0\.8"):
        ind.solve(field, ind.Heun(), inputs(), ind.Adaptive(first_step=0.2))
    with pytest.raises(RuntimeError, match=r"for sample 0 in the step from t = 1 to s = 0\.8"):
        ind.solve(field, ind.Heun(), inputs(), ind.PerSampleAdaptive(first_step=0.2))


def test_starting_step_guards_raise_before_evaluating_at_a_bad_time():
    ctrl = ind.Adaptive()
    x = inputs(3)
    probes = []

    def deriv_at(t: float, x_: torch.Tensor) -> torch.Tensor:
        probes.append(t)
        return torch.full_like(x_, math.nan)

    bad = x.clone()
    bad[1, 0] = math.nan
    with pytest.raises(RuntimeError, match="at the start, t = 1"):
        initial_step(ctrl, 1.0, x, bad, deriv_at, 1)
    assert probes == []
    # The probe's NaN is caught although max(d1, nan) would be d1 in Python.
    with pytest.raises(RuntimeError, match="starting-step probe"):
        initial_step(ctrl, 1.0, x, x, deriv_at, 1)
    assert len(probes) == 1 and 0 < probes[0] < 1
    per_sample = ind.PerSampleAdaptive()
    t0 = torch.ones(3, dtype=F64)
    with pytest.raises(RuntimeError, match="for sample 1 at the start, t = 1"):
        per_sample.initial_steps(t0, x, bad, lambda t, x_: x_, 1, None)
    with pytest.raises(RuntimeError, match="for sample 0 in the starting-step probe"):
        per_sample.initial_steps(t0, x, x, deriv_at, 1, None)


def test_scaled_rms_widens_and_defines_zero_over_zero():
    value = torch.tensor([[3000.0, 0.0], [1.0, math.nan]], dtype=torch.float16)
    scale = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float16)
    got = scaled_rms(value, scale)
    assert got.dtype == torch.float32
    # 3000^2 overflows float16 (max 65504); 0 / 0 counts 0; 1 / 0 is inf; NaN stays NaN.
    assert got[0].item() == pytest.approx(3000.0 / math.sqrt(2), rel=1e-6)
    assert torch.isnan(got[1])
    assert scaled_rms(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])).item() == math.inf


def test_float16_error_norm_equals_the_float64_norm():
    ctrl = ind.Adaptive(rtol=1e-3, atol=1e-6)
    x = torch.tensor([[0.5, -2.0, 0.001]], dtype=torch.float16)
    error = torch.tensor([[0.25, -0.125, 0.0625]], dtype=torch.float16)  # ratios up to 500
    got = ctrl.error_norm(error, x, x)
    expected = ctrl.error_norm(error.double(), x.double(), x.double())
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=0)


SOLVER_CONTROLLERS = [
    (ind.Heun(), ind.Adaptive),
    (ind.DormandPrince(), ind.PerSampleAdaptive),
    (TorchDiffEq("dopri5"), ind.Adaptive),
]


@pytest.mark.parametrize(
    ("solver", "controller"), SOLVER_CONTROLLERS, ids=["Heun", "DP-per-sample", "dopri5"]
)
def test_float16_adaptive_solves_keep_the_semantics_of_float32(solver, controller):
    y = 1.5 * inputs(16)
    # Default tolerances: errors of a few hundred times atol = 1e-6 overflowed float16 squares.
    half = ind.solve(ind.InDIField(shrink), solver, y.half(), controller())
    assert half.x.dtype == torch.float16
    # The float16 state rounds (eps 1e-3) at each of ~100 steps: about 1e-2 whatever rtol.
    assert (half.x.double() - shrink_exact(y)).abs().max() <= 0.05
    loose = controller(rtol=1e-2, atol=1e-3)
    half = ind.solve(ind.InDIField(shrink), solver, y.half(), loose)
    single = ind.solve(ind.InDIField(shrink), solver, y.float(), loose)
    assert (half.x.double() - shrink_exact(y)).abs().max() <= 10 * loose.rtol
    assert half.stats.nfe <= 2 * single.stats.nfe


def to_zero(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``shrink`` with mean 0: an entry at 0 stays exactly 0."""
    return VAR / (VAR + t.reshape(-1, 1) ** 2) * x


def test_zero_tolerance_entries_that_stay_at_zero_are_not_blamed_on_the_field():
    # atol = 0 and an entry exactly 0 that F keeps at 0: its error and scale are both 0.
    y = torch.tensor([[0.0, 1.0], [0.0, -2.0]], dtype=F64)
    exact = math.sqrt(VAR / (VAR + 1.0)) * y
    for ctrl in (ind.Adaptive(rtol=1e-5, atol=0.0), ind.PerSampleAdaptive(rtol=1e-5, atol=0.0)):
        sol = ind.solve(ind.InDIField(to_zero), ind.BogackiShampine(), y, ctrl)
        assert torch.equal(sol.x[:, 0], torch.zeros(2, dtype=F64))
        assert (sol.x - exact).abs().max() <= 10 * 1e-5
    # An entry at 0 that does move: infinite starting norms, yet the solve runs and is accurate.
    y = torch.tensor([[0.0, 1.0]], dtype=F64)
    for ctrl in (ind.Adaptive(rtol=1e-4, atol=0.0), ind.PerSampleAdaptive(rtol=1e-4, atol=0.0)):
        sol = ind.solve(ind.InDIField(shrink), ind.BogackiShampine(), y, ctrl)
        assert (sol.x - shrink_exact(y)).abs().max() <= 10 * 1e-4


@dataclass(frozen=True)
class ZeroScaleError:
    """Euler with a made-up finite error estimate of 1e-3 on entries where the state is 0."""

    order: int = 1
    error_order: int = 1

    def step(self, field, t, s, x, denoised, state=None, with_error=False) -> StepResult:
        x_new = ind.Euler().step(field, t, s, x, denoised).x
        error = torch.where(x_new == 0, 1e-3, 0.0) if with_error else None
        return StepResult(x=x_new, error=error, denoised_next=None, nfe=0)


@pytest.mark.parametrize("controller", [ind.Adaptive, ind.PerSampleAdaptive])
def test_an_error_beyond_any_tolerance_is_a_rejection_not_a_field_failure(controller):
    # A finite error against a zero scale (atol = 0, x = x_new = 0) reads inf: every step is
    # rejected and shrunk by factor_min until min_step, and no field failure is reported.
    y = torch.tensor([[0.0, 1.0]], dtype=F64)
    ctrl = controller(rtol=1e-3, atol=0.0, first_step=0.1, min_step=1e-4)
    with pytest.raises(
        RuntimeError, match=r"step size.*fell to 3\.2e-05 < min_step=0\.0001 at t = 1\b"
    ):
        ind.solve(ind.InDIField(to_zero), ZeroScaleError(), y, ctrl)


EMPTY_CASES = [
    ("Euler-fixed", ind.Euler(), ind.FixedSteps(ind.TimeGrid.uniform(4))),
    ("Heun-grid-to-0.2", ind.Heun(), ind.FixedSteps(ind.TimeGrid([0.9, 0.5, 0.2]))),
    ("ExpMultistep3-fixed", ind.ExpMultistep3(), ind.FixedSteps(ind.TimeGrid.uniform(4))),
    ("Heun-adaptive", ind.Heun(), ind.Adaptive()),
    ("DP-adaptive-t_end", ind.DormandPrince(), ind.Adaptive(t_end=0.1)),
    ("BS3-per-sample", ind.BogackiShampine(), ind.PerSampleAdaptive()),
    ("rk4-fixed", TorchDiffEq("rk4"), ind.FixedSteps(ind.TimeGrid.uniform(4))),
    ("dopri5-adaptive", TorchDiffEq("dopri5"), ind.Adaptive()),
]


@pytest.mark.parametrize(("name", "solver", "ctrl"), EMPTY_CASES, ids=[c[0] for c in EMPTY_CASES])
@pytest.mark.parametrize("shape", [(0, 2), (0, 3, 4, 4)])
def test_an_empty_batch_returns_an_empty_result_without_calling_the_regressor(
    name, solver, ctrl, shape
):
    rec = RecordingRegressor(shrink)
    y = torch.empty(shape, dtype=torch.float32)
    for save in (False, True):
        sol = ind.solve(ind.InDIField(rec), solver, y, ctrl, save_trajectory=save)
        fixed = isinstance(ctrl, ind.FixedSteps)
        start, end = (ctrl.grid.ts[0], ctrl.grid.ts[-1]) if fixed else (1.0, ctrl.t_end)
        assert sol.x.shape == shape and sol.x.dtype == y.dtype
        assert sol.ts.tolist() == [start, end] and sol.ts.dtype == F64
        assert sol.stats == ind.Stats(nfe=0, rows=0, steps=0, accepted=0, rejected=0)
        if save and not isinstance(sol, ind.PerSampleSolution):
            assert sol.xs.shape == (2, *shape)
        else:
            assert sol.xs is None
        if isinstance(sol, ind.PerSampleSolution):
            assert sol.sample_nfe.shape == sol.sample_accepted.shape == (0,)
            assert sol.trajectories == (() if save else None)
    assert rec.times == []


def test_an_empty_batch_still_checks_its_arguments():
    y = torch.empty(0, 2)
    with pytest.raises(TypeError, match="solver object"):
        ind.solve(ind.InDIField(shrink), "heun", y, ind.Adaptive())
    with pytest.raises(ValueError, match="Euler has no error estimate"):
        ind.solve(ind.InDIField(shrink), ind.Euler(), y, ind.PerSampleAdaptive())
    with pytest.raises(ValueError, match="chooses its own steps"):
        ind.solve(
            ind.InDIField(shrink), TorchDiffEq("dopri5"), y, ind.FixedSteps(ind.TimeGrid.uniform(2))
        )


@pytest.mark.parametrize("solver", [ind.Euler(), TorchDiffEq("rk4")], ids=["Euler", "rk4"])
def test_a_grid_node_that_rounds_to_zero_in_the_state_dtype_is_refused_up_front(solver):
    grid = ind.FixedSteps(ind.TimeGrid.log_uniform(10, 1e-8))
    rec = RecordingRegressor(shrink)
    with pytest.raises(ValueError, match=r"ts\[9\] = 1e-08 rounds to 0 in torch\.float16"):
        ind.solve(ind.InDIField(rec), solver, inputs(4, torch.float16), grid)
    assert rec.times == []
    # float32 and bfloat16 (float32's exponent range) keep 1e-8 positive: nothing at t = 0.
    for dtype in (torch.float32, torch.bfloat16):
        sol = ind.solve(ind.InDIField(rec), solver, inputs(4, dtype), grid)
        assert torch.isfinite(sol.x).all() and rec.all_times().min() > 0
