"""``StepControl``: the per-sample controller's decisions, driven directly with made-up steps,
and the loop's one question per round."""

import math
from dataclasses import dataclass

import pytest
import torch

import indiflow as ind
from indiflow.per_sample import check_arguments, scatter_rows, solve_per_sample, split
from indiflow.per_sample_adaptive import StepControl
from indiflow.solvers import StepResult

F64 = torch.float64
VAR = 0.05


def shrink(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Elementwise Gaussian posterior mean with mean 0: ``v / (v + t^2) x``."""
    return VAR / (VAR + t.reshape(-1, 1).to(x.dtype) ** 2) * x


FIELD = ind.InDIField(shrink)
Y = torch.tensor([[1.0, -2.0], [0.5, 0.25], [-1.0, 3.0]], dtype=F64)


def started(ctrl: ind.PerSampleAdaptive, y: torch.Tensor = Y, order: int = 2):
    control = ctrl.start(y, order)
    return control, control.begin(FIELD, y, FIELD.denoise(1.0, y))


def made_step(x_new: torch.Tensor, error: torch.Tensor, fsal: bool) -> StepResult:
    """A step's result with a chosen error; ``fsal``: it carries ``F`` at the new states."""
    return StepResult(x=x_new, error=error, denoised_next=x_new * 0.5 if fsal else None, nfe=1)


def test_begin_with_a_first_step_plans_every_sample_without_evaluating():
    control, d = started(ind.PerSampleAdaptive(first_step=0.3, max_step=0.2))
    assert isinstance(control, StepControl)
    assert d.stepping.tolist() == [0, 1, 2] and d.failure is None and d.denoised is None
    for empty in (d.accepted, d.rejected, d.ended, d.evaluated, d.switched):
        assert empty.numel() == 0
    torch.testing.assert_close(d.starts, torch.ones(3, dtype=F64), rtol=0, atol=0)
    torch.testing.assert_close(d.ends, torch.full((3,), 0.8, dtype=F64), rtol=0, atol=1e-15)


def test_begin_without_a_first_step_uses_the_heuristic_and_reports_its_evaluation():
    ctrl = ind.PerSampleAdaptive(rtol=1e-4, atol=1e-4)
    control, d = started(ctrl, order=3)
    assert d.evaluated.tolist() == [0, 1, 2] and d.denoised is None
    ones = torch.ones(3, dtype=F64)
    deriv = FIELD.derivative(1.0, Y, FIELD.denoise(1.0, Y))
    h = ctrl.initial_steps(ones, Y, deriv, FIELD, 3, None)
    assert torch.equal(d.ends, ctrl.propose_ends(ones, h))
    assert torch.equal(control.h, h)


def test_decide_accepts_at_an_error_norm_of_one_and_rejects_just_above():
    ctrl = ind.PerSampleAdaptive(rtol=0.0, atol=0.5, first_step=0.2)
    control, _ = started(ctrl)
    error = torch.tensor([[0.5, 0.5], [0.5, 0.5 + 1e-9], [0.0, 0.0]], dtype=F64)
    x_new = 0.9 * Y
    out = control.decide(Y, FIELD.denoise(1.0, Y), made_step(x_new, error, True), FIELD)
    assert out.accepted.tolist() == [0, 2] and out.rejected.tolist() == [1]
    assert out.ended.numel() == 0 and out.evaluated.numel() == 0 and out.denoised is None
    torch.testing.assert_close(control.t, torch.tensor([0.8, 1.0, 0.8], dtype=F64))
    err = ctrl.error_norms(error, Y, x_new, None)
    assert err[0] == 1.0 and err[1] > 1.0
    h = ctrl.next_steps(torch.full((3,), 0.2, dtype=F64), err, torch.full((3,), math.nan), 2)
    torch.testing.assert_close(control.h, h, rtol=1e-12, atol=0)
    assert control.h[2] == pytest.approx(0.2 * ctrl.factor_max)
    assert out.stepping.tolist() == [0, 1, 2] and out.switched.numel() == 0
    assert torch.equal(out.starts, control.t)
    assert torch.equal(out.ends, ctrl.propose_ends(control.t, control.h))
    # PI memory: the accepted samples remember their error and the time they left.
    assert control.err_prev[0] == 1.0 and math.isnan(float(control.err_prev[1]))
    assert control.t_prev.tolist()[::2] == [1.0, 1.0]
    assert torch.equal(control.denoised_prev[[0, 2]], FIELD.denoise(1.0, Y)[[0, 2]])


def test_without_first_same_as_last_the_control_evaluates_f_at_accepted_states_only():
    control, _ = started(ind.PerSampleAdaptive(rtol=0.0, atol=0.5, first_step=0.2))
    error = torch.tensor([[0.1, 0.1], [5.0, 5.0], [0.1, 0.1]], dtype=F64)
    x_new = 0.9 * Y
    out = control.decide(Y, FIELD.denoise(1.0, Y), made_step(x_new, error, False), FIELD)
    assert out.evaluated.tolist() == [0, 2]
    s = torch.full((2,), 0.8, dtype=F64)
    torch.testing.assert_close(out.denoised, shrink(x_new[[0, 2]], s), rtol=1e-15, atol=0)


def test_an_accepted_step_onto_t_end_ends_the_sample_and_is_not_evaluated_again():
    # first_step 0.3 from 1 would stop 0.05 short of t_end = 0.75: the step ends at t_end.
    control, d = started(ind.PerSampleAdaptive(rtol=0.0, atol=0.5, first_step=0.3, t_end=0.75))
    torch.testing.assert_close(d.ends, torch.full((3,), 0.75, dtype=F64), rtol=0, atol=0)
    error = torch.tensor([[0.1, 0.1], [5.0, 5.0], [0.1, 0.1]], dtype=F64)
    out = control.decide(Y, FIELD.denoise(1.0, Y), made_step(0.9 * Y, error, False), FIELD)
    assert out.ended.tolist() == [0, 2] and out.evaluated.numel() == 0
    assert out.stepping.tolist() == [1] and out.switched.numel() == 0


def test_a_step_just_above_t_end_keeps_the_sample_running():
    control, _ = started(ind.PerSampleAdaptive(rtol=0.0, atol=0.5, first_step=0.2, t_end=0.5))
    error = torch.zeros(3, 2, dtype=F64)
    out = control.decide(Y, FIELD.denoise(1.0, Y), made_step(0.9 * Y, error, False), FIELD)
    assert out.ended.numel() == 0 and out.evaluated.tolist() == [0, 1, 2]
    assert out.stepping.tolist() == [0, 1, 2]


def test_the_limit_step_is_taken_where_its_estimated_error_passes():
    # switch_time_max = 1: the estimate is trusted everywhere. F unchanged since the last
    # accepted time: estimated limit error 0, switch; F changed a lot: keep stepping.
    ctrl = ind.PerSampleAdaptive(rtol=0.0, atol=1e-3, first_step=0.2, switch_time_max=1.0)
    control, _ = started(ctrl)
    den = FIELD.denoise(1.0, Y)
    x_new = 0.9 * Y
    den_next = den.clone()
    den_next[1] += 1.0
    step = StepResult(x=x_new, error=torch.zeros_like(Y), denoised_next=den_next, nfe=1)
    out = control.decide(Y, den, step, FIELD)
    assert out.switched.tolist() == [0, 2] and out.stepping.tolist() == [1]
    assert torch.equal(out.starts, torch.tensor([0.8], dtype=F64))
    # Without a previous accepted time there is no estimate: the first round never switches.
    assert started(ctrl)[1].switched.numel() == 0


def test_a_step_size_below_min_step_is_returned_as_the_failure_not_raised():
    _, d = started(ind.PerSampleAdaptive(min_step=1e-3, first_step=5e-4))
    assert isinstance(d.failure, RuntimeError)
    assert str(d.failure).startswith(
        "the step size of sample 0 fell to 0.0005 < min_step=0.001 at t = 1;"
    )
    assert d.stepping.tolist() == [0, 1, 2]


def test_a_step_with_nan_raises_naming_the_sample_and_a_zero_scale_error_is_a_rejection():
    control, _ = started(ind.PerSampleAdaptive(rtol=1e-3, atol=0.0, first_step=0.2))
    x_new = 0.9 * Y
    x_new[1, 1] = math.nan
    bad = made_step(x_new, torch.full_like(Y, 1e-6), True)
    with pytest.raises(RuntimeError, match=r"for sample 1 in the step from t = 1 to s = 0\.8\b"):
        control.decide(Y, FIELD.denoise(1.0, Y), bad, FIELD)
    # x = x_new = 0 in one entry, atol = 0: a finite error there reads inf, a rejection.
    y = torch.tensor([[0.0, 1.0], [0.5, 1.0]], dtype=F64)
    control, _ = started(ind.PerSampleAdaptive(rtol=1e-3, atol=0.0, first_step=0.2), y)
    error = torch.tensor([[1e-3, 0.0], [0.0, 0.0]], dtype=F64)
    out = control.decide(y, FIELD.denoise(1.0, y), made_step(0.9 * y, error, True), FIELD)
    assert out.rejected.tolist() == [0] and out.accepted.tolist() == [1]
    assert control.h[0] == pytest.approx(0.2 * 0.2)  # factor_min


@dataclass
class CountingSolver:
    """Delegates to ``inner`` and counts its steps."""

    inner: object
    steps: int = 0

    @property
    def order(self) -> int:
        return self.inner.order

    @property
    def error_order(self) -> int:
        return self.inner.error_order

    def step(self, *args: object) -> StepResult:
        self.steps += 1
        return self.inner.step(*args)


class CountingControl(StepControl):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.asked = {"begin": 0, "decide": 0}

    def begin(self, *args: object):
        self.asked["begin"] += 1
        return super().begin(*args)

    def decide(self, *args: object):
        self.asked["decide"] += 1
        return super().decide(*args)


@dataclass(frozen=True)
class CountingAdaptive(ind.PerSampleAdaptive):
    def start(self, y: torch.Tensor, error_order: int) -> StepControl:
        control = CountingControl(self, y, error_order)
        object.__setattr__(self, "last", control)
        return control


@pytest.mark.parametrize("solver", [ind.Heun(), ind.DormandPrince()], ids=["Heun", "DP5"])
def test_the_loop_asks_the_controller_once_per_round(solver):
    counting, ctrl = CountingSolver(solver), CountingAdaptive(rtol=1e-4, atol=1e-4)
    y = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    sol = ind.solve(FIELD, counting, y, ctrl)
    assert ctrl.last.asked == {"begin": 1, "decide": counting.steps}
    assert counting.steps < sol.stats.steps  # rounds step several samples at once


@pytest.mark.parametrize("t_end", [0.0, 0.2])
def test_max_steps_bounds_each_sample_attempts_limit_step_included(t_end):
    ctrl = ind.PerSampleAdaptive(rtol=1e-5, atol=1e-5, t_end=t_end)
    y = torch.tensor([[0.01, 0.0], [3.0, -2.0], [0.5, 0.5]], dtype=F64)
    sol = ind.solve(FIELD, ind.Heun(), y, ctrl)
    most = int((sol.sample_accepted + sol.sample_rejected).max())
    again = ind.solve(FIELD, ind.Heun(), y, ctrl, max_steps=most)
    assert torch.equal(again.x, sol.x)
    first = int((sol.sample_accepted + sol.sample_rejected).argmax())
    with pytest.raises(RuntimeError, match=rf"sample {first} reached max_steps={most - 1} at t"):
        ind.solve(FIELD, ind.Heun(), y, ctrl, max_steps=most - 1)


# --------------------------------------------------------------------------------------------
# The loop's helpers and argument checks, exactly


def test_split_keeps_batch_order_on_both_sides():
    mask = torch.rand(5000, generator=torch.Generator().manual_seed(0)) < 0.5
    true, false = split(mask)
    assert torch.equal(true, mask.nonzero().flatten())
    assert torch.equal(false, (~mask).nonzero().flatten())


def test_scatter_rows_writes_in_the_target_dtype_out_of_place():
    target = torch.zeros(3, dtype=torch.float64)
    out = scatter_rows(target, torch.tensor([2, 0]), torch.tensor([1.5, 2.5]))
    assert out.dtype == torch.float64 and out.tolist() == [2.5, 0.0, 1.5]
    assert target.tolist() == [0.0, 0.0, 0.0]


class _StepWithoutOrder:
    def step(self) -> None:
        """A ``step`` but no ``order``: not a solver."""


class _NoErrorOrder(_StepWithoutOrder):
    order = 2


def test_check_arguments_messages():
    wrong = _StepWithoutOrder()
    with pytest.raises(TypeError) as info:
        check_arguments(wrong)
    assert str(info.value) == (
        "solver must be a solver object such as ind.Heun() or ind.DormandPrince() (not a "
        f"string or a class), got {wrong!r}"
    )
    for solver, name in ((ind.Euler(), "Euler"), (_NoErrorOrder(), "_NoErrorOrder")):
        with pytest.raises(ValueError) as info:
            check_arguments(solver)
        assert str(info.value) == (
            f"{name} has no error estimate, so it cannot be used with PerSampleAdaptive; use a "
            "solver with an embedded estimate such as ind.Heun(), ind.BogackiShampine() or "
            "ind.DormandPrince()"
        )


def test_solve_per_sample_defaults_and_counter_dtypes():
    # Called directly: no trajectories unless asked; the per-sample counters are int64.
    y = torch.tensor([[0.3, -0.2], [1.0, 0.5]], dtype=torch.float64)
    field = ind.InDIField(lambda x, t: 0.5 * x)
    out = solve_per_sample(field, ind.Heun(), y, ind.PerSampleAdaptive(rtol=1e-2, atol=1e-4))
    assert out.trajectories is None
    counters = (out.sample_nfe, out.sample_accepted, out.sample_rejected)
    assert [c.dtype for c in counters] == [torch.int64] * 3
