"""The per-sample loop and control, exactly: the loop driven by a scripted controller (every
decision chosen by the test), ``_assemble`` on hand-made records, exact messages, and the
vectorised control laws on inputs chosen at their boundaries."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import torch

import indiflow as ind
from indiflow.controllers import initial_step
from indiflow.per_sample import Decision, _assemble, solve_per_sample

F64 = torch.float64
A = 0.5  # the regressor F(x, t) = A x: dx/dt = (1 - A) x / t, a Heun step is known exactly
LINEAR = ind.InDIField(lambda x, t: A * x)


def heun(x: torch.Tensor, t: float, s: float) -> torch.Tensor:
    """One textbook Heun step of ``dx/dt = (1 - A) x / t`` from ``t`` to ``s``."""
    k1 = (1 - A) * x / t
    k2 = (1 - A) * (x + (s - t) * k1) / s
    return x + (s - t) / 2 * (k1 + k2)


def idx(values: Sequence[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def times(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def decision(
    stepping: Sequence[int] = (),
    starts: Sequence[float] = (),
    ends: Sequence[float] = (),
    *,
    accepted: Sequence[int] = (),
    rejected: Sequence[int] = (),
    ended: Sequence[int] = (),
    evaluated: Sequence[int] = (),
    denoised: torch.Tensor | None = None,
    switched: Sequence[int] = (),
) -> Decision:
    return Decision(
        accepted=idx(accepted),
        rejected=idx(rejected),
        ended=idx(ended),
        evaluated=idx(evaluated),
        denoised=denoised,
        switched=idx(switched),
        stepping=idx(stepping),
        starts=times(starts),
        ends=times(ends),
        failure=None,
    )


class ScriptedControl:
    """Answers ``begin`` and each ``decide`` with the next scripted ``Decision``."""

    def __init__(self, script: Sequence[Decision], t: torch.Tensor) -> None:
        self.script, self.t, self.steps = iter(script), t, []

    def begin(self, field: object, y: torch.Tensor, denoised: torch.Tensor) -> Decision:
        return next(self.script)

    def decide(self, x: torch.Tensor, denoised: torch.Tensor, step: object, field: object):
        self.steps.append(step)
        return next(self.script)


@dataclass(frozen=True)
class Scripted:
    """A controller for ``solve_per_sample`` whose decisions are fixed in advance."""

    script: tuple[Decision, ...]
    t_end: float
    t: tuple[float, ...]

    def start(self, y: torch.Tensor, error_order: int) -> ScriptedControl:
        return ScriptedControl(self.script, times(self.t))


# --------------------------------------------------------------------------------------------
# The loop under a scripted controller


def test_a_finished_sample_is_not_counted_against_max_steps_after_its_limit_step():
    # Sample 0 steps 1 -> 0.5 and takes the limit step (2 steps); sample 1 steps 1 -> 0.5 ->
    # 0.3 = t_end (2 steps). With max_steps = 2 both finish: the finished sample 0 is done.
    y = torch.tensor([[1.0, -2.0], [0.5, 4.0]], dtype=F64)
    x_half = heun(y, 1.0, 0.5)
    at_half = A * x_half  # F at the accepted states, handed over by the controller
    script = (
        decision([0, 1], [1.0, 1.0], [0.5, 0.5]),
        decision(
            [1], [0.5], [0.3], accepted=[0, 1], evaluated=[0, 1], denoised=at_half, switched=[0]
        ),
        decision(accepted=[0], ended=[1]),
    )
    ctrl = Scripted(script, t_end=0.3, t=(0.5, 0.3))
    sol = solve_per_sample(LINEAR, ind.Heun(), y, ctrl, save_trajectory=True, max_steps=2)
    assert torch.equal(sol.x[0], at_half[0])
    torch.testing.assert_close(sol.x[1], heun(x_half[1], 0.5, 0.3), rtol=1e-14, atol=0)
    # calls: F(y, 1), the two Heun steps (one evaluation each), the controller's evaluation.
    assert (sol.stats.nfe, sol.stats.rows, sol.stats.steps) == (4, 7, 4)
    assert (sol.stats.accepted, sol.stats.rejected) == (4, 0)
    assert sol.sample_nfe.tolist() == [3, 4] and sol.sample_accepted.tolist() == [2, 2]
    assert sol.sample_rejected.tolist() == [0, 0]
    assert sol.ts.dtype == F64 and sol.ts.tolist() == [1.0, 0.3]  # 0.3 is not a float32
    (ts0, xs0), (ts1, xs1) = sol.trajectories
    assert ts0.dtype == ts1.dtype == F64
    assert ts0.tolist() == [1.0, 0.5, 0.0] and ts1.tolist() == [1.0, 0.5, 0.3]
    assert torch.equal(xs0[0], y[0]) and torch.equal(xs0[2], at_half[0])
    torch.testing.assert_close(xs0[1], x_half[0], rtol=1e-14, atol=0)
    assert torch.equal(xs1[2], sol.x[1])


def test_max_steps_counts_rejected_attempts():
    # One sample, two rejected attempts from t = 1: the second reaches max_steps = 2.
    y = torch.tensor([[1.0, 3.0]], dtype=F64)
    script = (
        decision([0], [1.0], [0.5]),
        decision([0], [1.0], [0.75], rejected=[0]),
        decision([0], [1.0], [0.9], rejected=[0]),
        decision(accepted=[0], ended=[0]),
    )
    ctrl = Scripted(script, t_end=0.9, t=(1.0,))
    with pytest.raises(RuntimeError) as info:
        solve_per_sample(LINEAR, ind.Heun(), y, ctrl, max_steps=2)
    assert str(info.value) == (
        "sample 0 reached max_steps=2 at t = 1 before t_end = 0.9; raise max_steps or loosen "
        "rtol/atol"
    )
    sol = solve_per_sample(LINEAR, ind.Heun(), y, ctrl, max_steps=3)
    assert sol.sample_rejected.tolist() == [2] and sol.sample_accepted.tolist() == [1]
    assert (sol.stats.nfe, sol.stats.steps) == (4, 3)
    torch.testing.assert_close(sol.x, heun(y, 1.0, 0.9), rtol=1e-14, atol=0)


def test_a_non_finite_final_state_raises_even_if_the_controller_accepted_it():
    def regressor(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.where(t.reshape(-1, 1) < 0.75, torch.nan, A * x)

    y = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    script = (decision([0, 1], [1.0, 1.0], [0.5, 0.5]), decision(accepted=[0, 1], ended=[0, 1]))
    ctrl = Scripted(script, t_end=0.5, t=(0.5, 0.5))
    with pytest.raises(RuntimeError) as info:
        solve_per_sample(ind.InDIField(regressor), ind.Heun(), y, ctrl)
    assert str(info.value) == (
        "the field returned non-finite values (NaN or inf) at the last step of some sample; "
        "check the regressor at small t"
    )


@dataclass(frozen=True)
class NoEstimate:
    """Heun whose step drops its error estimate."""

    order: int = 2
    error_order: int = 1

    def step(self, *args: object) -> object:
        return dataclasses.replace(ind.Heun().step(*args), error=None)


@dataclass(frozen=True)
class CarriesState(NoEstimate):
    """Heun whose step carries a multistep memory."""

    def step(self, *args: object) -> object:
        return dataclasses.replace(ind.Heun().step(*args), state=("history",))


@pytest.mark.parametrize("solver", [NoEstimate(), CarriesState()], ids=lambda s: type(s).__name__)
def test_a_step_without_estimate_or_with_a_memory_is_refused(solver):
    y = torch.tensor([[1.0, 2.0]], dtype=F64)
    with pytest.raises(TypeError) as info:
        ind.solve(LINEAR, solver, y, ind.PerSampleAdaptive(first_step=0.25))
    assert str(info.value) == (
        f"{type(solver).__name__} is not a one-step solver with an error estimate; "
        "PerSampleAdaptive supports Heun, BogackiShampine and DormandPrince"
    )


def test_the_solution_ts_are_float64_start_and_t_end():
    y = torch.tensor([[1.0, 2.0]], dtype=torch.float32)
    sol = ind.solve(LINEAR, ind.Heun(), y, ind.PerSampleAdaptive(t_end=0.3, first_step=0.25))
    assert sol.ts.dtype == F64 and sol.ts.tolist() == [1.0, 0.3]


# --------------------------------------------------------------------------------------------
# _assemble on hand-made records


def test_assemble_groups_rows_by_sample_in_recorded_order_in_float64_times_and_y_dtype():
    y = torch.tensor([[1.0], [2.0]], dtype=torch.float32)
    records = [
        (idx([1]), times([0.2]), torch.tensor([[5.0]], dtype=F64)),
        (idx([0, 1]), times([0.1, 0.05]), torch.tensor([[3.0], [4.0]], dtype=F64)),
    ]
    (ts0, xs0), (ts1, xs1) = _assemble(y, 0.3, records)
    assert ts0.dtype == ts1.dtype == F64 and xs0.dtype == xs1.dtype == torch.float32
    assert ts0.tolist() == [0.3, 0.1] and ts1.tolist() == [0.3, 0.2, 0.05]
    assert xs0.tolist() == [[1.0], [3.0]] and xs1.tolist() == [[2.0], [5.0], [4.0]]


# --------------------------------------------------------------------------------------------
# PerSampleAdaptive: messages and the vectorised laws at their boundaries


def test_atol_relative_messages_are_exact():
    with pytest.raises(TypeError) as info:
        ind.PerSampleAdaptive(atol_relative=1)
    assert str(info.value) == "atol_relative must be a bool, got int"
    y = torch.tensor([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]], dtype=F64)
    with pytest.raises(ValueError) as info:
        ind.PerSampleAdaptive(atol_relative=True).input_units(y)
    assert str(info.value) == (
        "atol_relative=True measures atol in units of RMS(y_i), but sample 1 of y is all zeros; "
        "use atol_relative=False or give every sample a nonzero input"
    )


def test_limit_errors_measure_x_denoised_and_their_change_in_units():
    # ||t^2 (F - F_prev) / (t_prev^2 - t^2) / u|| in the RMS norm scaled by
    # atol + rtol max(|x| / u, |F| / u); |x| > |F| so the state sets the scale.
    ctrl = ind.PerSampleAdaptive(rtol=0.1, atol=0.01, switch_time_max=1.0)
    t, t_prev = times([0.2, 0.5]), times([0.4, 0.9])
    x = torch.tensor([[3.0, -4.0], [5.0, 2.0]], dtype=F64)
    den = torch.tensor([[0.5, -1.0], [1.5, 0.25]], dtype=F64)
    den_prev = torch.tensor([[0.25, -0.5], [1.0, 1.0]], dtype=F64)
    units = times([2.0, 4.0])
    got = ctrl.limit_errors(t, x, den, t_prev, den_prev, units)
    expected = []
    for i in range(2):
        u, ti, tp = float(units[i]), float(t[i]), float(t_prev[i])
        total = 0.0
        for j in range(2):
            change = ti**2 * (float(den[i, j]) - float(den_prev[i, j])) / (tp**2 - ti**2) / u
            scale = 0.01 + 0.1 * max(abs(float(x[i, j])), abs(float(den[i, j]))) / u
            total += (change / scale) ** 2
        expected.append((total / 2) ** 0.5)
    torch.testing.assert_close(got, times(expected), rtol=1e-14, atol=0)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_next_steps_at_an_error_norm_of_exactly_one_use_the_pi_law(order):
    # err = 1 is accepted: PI law safety err^(-0.7/k) err_prev^(0.4/k) = safety err_prev^(0.4/k)
    # with a previous error, safety without one; never factor_max, never the err > 1 cap.
    # A previous error of 4 never comes from a solve (only accepted errors are remembered), but
    # next_steps is Adaptive.next_step's twin for every input: a factor above 1 is kept.
    ctrl = ind.PerSampleAdaptive(safety=0.9, factor_min=0.2, factor_max=5.0, max_step=10.0)
    k = order + 1
    h, err = times([0.1] * 4), times([1.0] * 4)
    err_prev = times([0.5, float("nan"), 1e-3, 4.0])
    got = ctrl.next_steps(h, err, err_prev, order)
    factors = [0.9 * 0.5 ** (0.4 / k), 0.9, 0.9 * 1e-3 ** (0.4 / k), 0.9 * 4.0 ** (0.4 / k)]
    torch.testing.assert_close(got, 0.1 * times(factors), rtol=1e-14, atol=0)
    assert factors[3] > 1.0
    for i, prev in enumerate([0.5, None, 1e-3, 4.0]):
        assert float(got[i]) == pytest.approx(ctrl.base.next_step(0.1, 1.0, prev, order), rel=1e-14)


def test_propose_ends_snap_to_t_end_strictly_below_a_thousandth_of_the_step_above_it():
    # Row 0: s = t - h equals t_end + 1e-3 h exactly (kept); row 1: s = 0.5002 is below it
    # (snapped to t_end); row 2: s = t_end.
    ctrl = ind.PerSampleAdaptive(t_end=0.5)
    t, h = times([0.75025, 1.0, 1.0]), times([0.25, 0.4998, 0.5])
    assert float(t[0] - h[0]) == 0.5 + 1e-3 * 0.25
    got = ctrl.propose_ends(t, h)
    assert got.tolist() == [0.75025 - 0.25, 0.5, 0.5]
    assert got.tolist() == [
        ctrl.base.propose_end(float(a), float(b)) for a, b in zip(t, h, strict=True)
    ]


def nan_where(bad: torch.Tensor):
    """A regressor ``A x`` that returns NaN in the rows where ``bad(x, t)`` holds."""

    def regressor(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.where(bad(x, t).reshape(-1, 1), torch.nan, A * x)

    return regressor


def raised(regressor, y: torch.Tensor, ctrl: ind.PerSampleAdaptive) -> str:
    with pytest.raises(RuntimeError) as info:
        ind.solve(ind.InDIField(regressor), ind.Heun(), y, ctrl)
    return str(info.value)


CHECK = "; check the regressor at that time (and its input scaling)"
NONFINITE = "the field returned non-finite values (NaN or inf) for sample "


def test_non_finite_field_messages_name_the_sample_and_where():
    y = torch.tensor([[1.0, 2.0], [3.0, 4.0], [-1.0, 0.5]], dtype=F64)
    # F(y, 1) is NaN for sample 1: the starting-step heuristic refuses it.
    start = nan_where(lambda x, t: (t == 1.0) & (x[:, 0] == 3.0))
    assert raised(start, y, ind.PerSampleAdaptive()) == f"{NONFINITE}1 at the start, t = 1{CHECK}"
    # F is NaN below t = 1 for sample 2: the heuristic's probe evaluation refuses it.
    probe = nan_where(lambda x, t: (t < 1.0) & (x[:, 0] < 0))
    assert raised(probe, y, ind.PerSampleAdaptive()) == (
        f"{NONFINITE}2 in the starting-step probe from t = 1{CHECK}"
    )
    # With a first step, the NaN appears in sample 2's first step from 1 to 0.75.
    assert raised(probe, y, ind.PerSampleAdaptive(first_step=0.25)) == (
        f"{NONFINITE}2 in the step from t = 1 to s = 0.75{CHECK}"
    )


def starting_steps(ctrl: ind.PerSampleAdaptive, x0, deriv0, deriv1, order: int = 1):
    """``initial_steps`` from ``t0 = 1`` with a probe returning ``deriv1``; also the probe's
    arguments and the scalar rule per row (its probe returns that row of ``deriv1``)."""
    seen = []

    def probe(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        seen.append((t, x))
        return deriv1

    t0 = torch.ones(x0.shape[0], dtype=F64)
    got = ctrl.initial_steps(t0, x0, deriv0, probe, order, None)
    scalar = [
        initial_step(
            ctrl.base,
            1.0,
            x0[i : i + 1],
            deriv0[i : i + 1],
            lambda t, x, i=i: deriv1[i : i + 1],
            order,
        )
        for i in range(x0.shape[0])
    ]
    return got, seen, scalar


def test_starting_steps_at_the_thresholds_of_the_heuristic():
    # One entry per sample, atol = 1, rtol = 0: d0 = |x0|, d1 = |f0|, d2 = |f1 - f0| / h0 (the
    # RMS of one entry is exact: sqrt(v^2) = |v|). k = 2: h1 = (0.01 / max(d1, d2))^(1/2).
    ctrl = ind.PerSampleAdaptive(rtol=0.0, atol=1.0)
    x0 = times([1e-5, 1.0, 0.0, 1.0, 1.0, 0.0]).reshape(-1, 1)
    f0 = times([1.0, 1e-5, 1e-15, 0.25, 1.0, 1.0]).reshape(-1, 1)
    f1 = f0.clone()
    f1[4] = 1.02  # d2 = 0.02 / 0.01 = 2 > d1
    got, seen, scalar = starting_steps(ctrl, x0, f0, f1)
    h0 = [1e-7, 0.5, 1e-6, 0.04, 0.01, 1e-6]  # 0.01 d0 / d1; 1e-6 when d0 = 0; at most t0 / 2
    d2 = (1.02 - 1.0) / 0.01
    expected = [
        100 * 1e-7,  # d0 = 1e-5 is usable; h1 = 0.1
        0.9,  # d1 = 1e-5 is usable; (1 - min_time_ratio) t0 < 100 h0, h1 = sqrt(1000)
        1e-6,  # max(d1, d2) = 1e-15: h1 = max(1e-6, 1e-3 h0)
        (0.01 / 0.25) ** 0.5,  # max(d1, d2) = 0.25 < 1: the power law
        (0.01 / d2) ** 0.5,
        100 * 1e-6,  # d0 = 0: h0 = 1e-6, h1 = 0.1
    ]
    torch.testing.assert_close(got, times(expected), rtol=1e-14, atol=0)
    assert got.tolist() == pytest.approx(scalar, rel=1e-14)
    ((t_probe, x_probe),) = seen
    torch.testing.assert_close(t_probe, 1.0 - times(h0), rtol=1e-15, atol=0)
    torch.testing.assert_close(x_probe, x0 - times(h0).reshape(-1, 1) * f0, rtol=1e-15, atol=0)


def test_starting_steps_with_an_infinite_d1_fall_back_to_the_small_probe():
    # atol = 0 and an entry of x0 at 0 with f0 != 0 there: d1 = inf, h0 = 1e-6, h1 = 1e-6.
    ctrl = ind.PerSampleAdaptive(rtol=1.0, atol=0.0)
    x0, f0 = times([[0.0, 1.0]]), times([[1.0, 0.0]])
    got, _, scalar = starting_steps(ctrl, x0, f0, f0)
    assert got.tolist() == [1e-6] == scalar


def test_starting_step_thresholds_apply_to_float64_norms_of_float32_states():
    # float32(1e-5) < 1e-5: below the threshold in float64 (as for the scalar rule), although
    # it equals 1e-5 once the threshold is rounded to float32.
    ctrl = ind.PerSampleAdaptive(rtol=0.0, atol=1.0)
    x0 = torch.tensor([[1e-5], [1.0]], dtype=torch.float32)
    f0 = torch.tensor([[1.0], [1e-5]], dtype=torch.float32)
    got, _, scalar = starting_steps(ctrl, x0, f0, f0)
    small = float(torch.tensor(1e-5, dtype=torch.float32))
    expected = [100 * 1e-6, 100 * 1e-6]  # h0 = 1e-6; h1 = 0.1 and (0.01 / small)^(1/2)
    assert small < 1e-5 and got.dtype == F64
    assert got.tolist() == expected and got.tolist() == pytest.approx(scalar, rel=1e-14)


def test_a_step_size_equal_to_min_step_is_allowed_and_a_smaller_one_is_the_failure():
    ctrl = ind.PerSampleAdaptive(min_step=1e-3, first_step=1e-3)
    y = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    control = ctrl.start(y, 1)
    assert control.begin(LINEAR, y, LINEAR.denoise(1.0, y)).failure is None
    ctrl = ind.PerSampleAdaptive(min_step=1e-3, first_step=5e-4)
    control = ctrl.start(y, 1)
    failure = control.begin(LINEAR, y, LINEAR.denoise(1.0, y)).failure
    assert str(failure) == (
        "the step size of sample 0 fell to 0.0005 < min_step=0.001 at t = 1; loosen rtol/atol "
        "or lower min_step"
    )


def planned(ctrl: ind.PerSampleAdaptive, **state: torch.Tensor) -> Decision:
    """``_plan`` of a control whose per-sample memory is set to ``state`` (``F`` at the
    states: ``state["denoised"]``, else ones)."""
    y = torch.ones(len(state["t"]), 1, dtype=F64)
    den = state.pop("denoised", y)
    control = ctrl.start(y, 1)
    for name, value in state.items():
        setattr(control, name, value)
    rows, empty = torch.arange(y.shape[0]), idx([])
    return control._plan((empty, empty, empty, empty, None), rows, y, den)


def test_the_failure_names_the_first_sample_strictly_below_min_step():
    ctrl = ind.PerSampleAdaptive(min_step=1e-3, t_end=0.1)
    d = planned(ctrl, t=times([0.5, 0.5]), h=times([1e-3, 5e-4]))
    assert str(d.failure) == (
        "the step size of sample 1 fell to 0.0005 < min_step=0.001 at t = 0.5; loosen rtol/atol "
        "or lower min_step"
    )


def test_the_limit_step_is_taken_at_an_estimate_equal_to_switch_safety():
    # t = 0.25, t_prev = 0.75: t^2 / (t_prev^2 - t^2) = 1/8 exactly; F - F_prev = 4 against a
    # scale of atol = 1: the estimate is 0.5 = switch_safety, which passes.
    ctrl = ind.PerSampleAdaptive(rtol=0.0, atol=1.0, switch_safety=0.5, switch_time_max=0.5)
    state = {"t": times([0.25]), "t_prev": times([0.75]), "h": times([0.1])}
    state["denoised_prev"] = torch.zeros(1, 1, dtype=F64)
    den = torch.full((1, 1), 4.0, dtype=F64)
    limit = ctrl.limit_errors(state["t"], den, den, state["t_prev"], state["denoised_prev"], None)
    assert limit.tolist() == [0.5]
    d = planned(ctrl, denoised=den, **state)
    assert d.switched.tolist() == [0] and d.stepping.numel() == 0
