"""Exact oracles for the step controllers: norms, PI law, switch estimate, starting step, checks.

Fast companions of ``test_controllers.py`` and ``test_adaptive_failures.py`` (which run whole
adaptive solves): each check here evaluates one controller formula on hand-picked numbers.
"""

import math
import re

import pytest
import torch

import indiflow as ind
from indiflow.controllers import initial_step, nonfinite_field_error, scaled_rms, widen

UNIT = ind.Adaptive(rtol=0.0, atol=1.0)  # scale 1 everywhere: norms are plain RMS values


def rms(rows: list[list[float]]) -> list[float]:
    return [math.sqrt(sum(v * v for v in row) / len(row)) for row in rows]


def test_widen_promotes_half_precision_only():
    assert widen(torch.ones(2, dtype=torch.float16)).dtype == torch.float32
    assert widen(torch.ones(2, dtype=torch.bfloat16)).dtype == torch.float32
    assert widen(torch.ones(2, dtype=torch.float32)).dtype == torch.float32
    assert widen(torch.ones(2, dtype=torch.float64)).dtype == torch.float64


def test_scaled_rms_per_sample_over_all_entries():
    value = torch.tensor([[[3.0, 0.0], [1.0, -2.0]], [[0.5, 0.5], [0.5, 0.5]]], dtype=torch.float64)
    scale = torch.tensor([[[1.0, 0.0], [2.0, 4.0]], [[0.25, 0.5], [1.0, 2.0]]], dtype=torch.float64)
    got = scaled_rms(value, scale)
    want = rms([[3.0, 0.0, 0.5, -0.5], [2.0, 1.0, 0.5, 0.25]])
    assert got.shape == (2,)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-15, atol=0)


def test_scaled_rms_zero_tolerance_and_nan():
    scale = t64([[0.0, 1.0]])
    assert scaled_rms(t64([[0.0, 2.0]]), scale).tolist() == [pytest.approx(math.sqrt(2.0), 1e-15)]
    assert scaled_rms(t64([[1e-30, 2.0]]), scale).tolist() == [math.inf]
    assert math.isnan(scaled_rms(torch.tensor([[math.nan, 0.0]]), torch.ones(1, 2)).item())
    half = scaled_rms(torch.full((1, 4), 600.0, dtype=torch.float16), torch.ones(1, 4))
    assert half.dtype == torch.float32 and half.tolist() == [600.0]  # 600^2 overflows float16


def test_nonfinite_field_error_message():
    err = nonfinite_field_error("at t = 0.5")
    assert isinstance(err, RuntimeError)
    assert str(err) == (
        "the field returned non-finite values (NaN or inf) at t = 0.5; check the regressor at "
        "that time (and its input scaling)"
    )


def test_fixed_steps_needs_a_time_grid():
    grid = ind.TimeGrid.uniform(3)
    assert ind.FixedSteps(grid).grid is grid
    msg = "FixedSteps needs an indiflow.TimeGrid, e.g. FixedSteps(TimeGrid.uniform(20)), got list"
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        ind.FixedSteps([1.0, 0.0])


def test_adaptive_defaults():
    a = ind.Adaptive()
    assert (a.rtol, a.atol, a.t_end, a.safety) == (1e-3, 1e-6, 0.0, 0.9)
    assert (a.factor_min, a.factor_max, a.min_step, a.max_step) == (0.2, 5.0, 1e-10, 1.0)
    assert (a.first_step, a.min_time_ratio) == (None, 0.1)
    assert (a.switch_safety, a.switch_time_max) == (0.5, 0.05)


BAD = [
    ({"rtol": -1.0}, ValueError, "rtol must be >= 0, got -1.0"),
    ({"atol": -1.0}, ValueError, "atol must be >= 0, got -1.0"),
    ({"rtol": 0.0, "atol": 0.0}, ValueError, "rtol and atol cannot both be 0; set a positive "),
    ({"t_end": "0"}, TypeError, "t_end must be a real number, got str: '0'"),
    ({"t_end": 1.0}, ValueError, "t_end must be in [0, 1), got 1.0"),
    ({"t_end": -0.5}, ValueError, "t_end must be in [0, 1), got -0.5"),
    ({"safety": 0.0}, ValueError, "safety must be > 0, got 0.0"),
    ({"safety": 1.5}, ValueError, "safety must be in (0, 1], got 1.5"),
    ({"factor_min": 0.0}, ValueError, "factor_min must be > 0, got 0.0"),
    ({"factor_min": 1.0}, ValueError, "factor_min must be in (0, 1), got 1.0"),
    ({"factor_max": 0.0}, ValueError, "factor_max must be > 0, got 0.0"),
    ({"factor_max": 1.0}, ValueError, "factor_max must be > 1, got 1.0"),
    ({"max_step": 0.0}, ValueError, "max_step must be > 0, got 0.0"),
    ({"min_step": 0.0}, ValueError, "min_step must be > 0, got 0.0"),
    ({"min_step": 0.5, "max_step": 0.5}, ValueError, "max_step (0.5) must be larger than "),
    ({"first_step": 0.0}, ValueError, "first_step must be > 0, got 0.0"),
    ({"min_time_ratio": 0.0}, ValueError, "min_time_ratio must be > 0, got 0.0"),
    ({"min_time_ratio": 1.0}, ValueError, "min_time_ratio must be in (0, 1), got 1.0"),
    ({"switch_safety": 0.0}, ValueError, "switch_safety must be > 0, got 0.0"),
    ({"switch_time_max": 0.0}, ValueError, "switch_time_max must be > 0, got 0.0"),
    ({"switch_time_max": 1.5}, ValueError, "switch_time_max must be in (0, 1], got 1.5"),
]


@pytest.mark.parametrize(("kwargs", "kind", "message"), BAD, ids=[str(b[0]) for b in BAD])
def test_adaptive_rejects_bad_settings(kwargs, kind, message):
    with pytest.raises(kind, match=f"^{re.escape(message)}"):
        ind.Adaptive(**kwargs)


def test_adaptive_max_min_step_message_names_both():
    msg = "max_step (0.5) must be larger than min_step (0.75)"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        ind.Adaptive(min_step=0.75, max_step=0.5)


def test_adaptive_accepts_boundary_settings():
    a = ind.Adaptive(
        rtol=0.0, t_end=0.0, safety=1.0, factor_min=0.999, factor_max=1.001, first_step=0.25,
        min_time_ratio=0.999, switch_time_max=1.0, min_step=0.5, max_step=0.5000001,
    )  # fmt: skip
    assert (a.safety, a.switch_time_max, a.first_step) == (1.0, 1.0, 0.25)
    assert ind.Adaptive(atol=0.0).atol == 0.0
    assert ind.Adaptive(t_end=0.999).t_end == 0.999


def test_error_norm_scales_by_the_larger_state():
    a = ind.Adaptive(rtol=0.5, atol=1.0)
    err = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[2.0, -6.0]], dtype=torch.float64)
    x_new = torch.tensor([[-4.0, 2.0]], dtype=torch.float64)
    # scales 1 + 0.5 * max(|x|, |x_new|) = (3, 4)
    assert a.error_norm(err, x, x_new).tolist() == pytest.approx(rms([[1.0, 0.25]]), rel=1e-15)
    half = a.error_norm(err.half(), x.half(), x_new.half())
    assert half.dtype == torch.float32 and half.tolist() == pytest.approx(rms([[1.0, 0.25]]))


@pytest.mark.parametrize(
    ("h", "err", "err_prev", "order", "want"),
    [
        (0.1, 0.0, None, 1, 0.1 * 5.0),  # zero error: the largest growth
        (0.3, 0.0, 0.5, 1, 1.0),  # capped by max_step
        (0.1, 0.25, None, 1, 0.1 * (0.9 * 0.25 ** (-1.0 / 2))),
        (0.1, 0.25, None, 2, 0.1 * (0.9 * 0.25 ** (-1.0 / 3))),
        (0.1, 4.0, 0.5, 1, 0.1 * (0.9 * 4.0 ** (-1.0 / 2))),  # rejected: no PI memory
        (0.1, 1.5, 0.5, 1, 0.1 * (0.9 * 1.5 ** (-1.0 / 2))),
        (0.1, 1.0, 2.0, 1, 0.1 * (0.9 * 2.0 ** (0.4 / 2))),  # err = 1 is not capped at growth 1
        (0.1, 0.5, 0.8, 1, 0.1 * (0.9 * 0.5 ** (-0.7 / 2) * 0.8 ** (0.4 / 2))),
        (0.1, 0.5, 0.8, 3, 0.1 * (0.9 * 0.5 ** (-0.7 / 4) * 0.8 ** (0.4 / 4))),
        (0.1, 1.0, 0.8, 1, 0.1 * (0.9 * 1.0 ** (-0.7 / 2) * 0.8 ** (0.4 / 2))),  # err = 1 kept
        (0.01, 1e-6, 1e-12, 1, 0.01 * (0.9 * 1e-6 ** (-0.7 / 2) * 1e-10 ** (0.4 / 2))),
        (0.1, 1e-9, None, 1, 0.1 * 5.0),  # growth clamped at factor_max
        (0.1, 1e6, None, 1, 0.1 * 0.2),  # shrink clamped at factor_min
    ],
)
def test_next_step_pi_law(h, err, err_prev, order, want):
    assert ind.Adaptive().next_step(h, err, err_prev, order) == want


def test_next_step_uses_the_configured_factors():
    a = ind.Adaptive(safety=0.5, factor_min=0.1, factor_max=3.0, max_step=0.2)
    assert a.next_step(0.05, 0.0, None, 1) == 0.05 * 3.0
    assert a.next_step(0.1, 0.0, None, 1) == 0.2
    assert a.next_step(0.1, 0.16, None, 1) == 0.1 * (0.5 * 0.16 ** (-1.0 / 2))
    assert a.next_step(0.1, 1e8, None, 1) == 0.1 * 0.1


def test_limit_errors_quadratic_model():
    f_prev = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    f = torch.tensor([[1.3, 1.4], [0.0, 0.9]], dtype=torch.float64)
    x = torch.zeros(2, 2, dtype=torch.float64)
    # t^2 / (t_prev^2 - t^2) = 0.0016 / 0.0048 = 1/3
    want = torch.tensor(rms([[0.1, -0.2], [0.0, 0.3]]), dtype=torch.float64)
    torch.testing.assert_close(
        UNIT.limit_errors(0.04, x, f, 0.08, f_prev), want, rtol=1e-12, atol=0
    )
    assert UNIT.limit_error(0.04, x, f, 0.08, f_prev) == pytest.approx(rms([[0.0, 0.3]])[0], 1e-12)
    assert UNIT.limit_errors(0.05, x, f, 0.08, f_prev).isfinite().all()  # at the threshold
    assert UNIT.limit_errors(0.0500001, x, f, 0.08, f_prev).tolist() == [math.inf, math.inf]
    assert UNIT.limit_error(0.06, x, f, 0.08, f_prev) == math.inf
    t = torch.tensor([0.04, 0.06], dtype=torch.float64)
    t_prev = torch.tensor([0.08, 0.1], dtype=torch.float64)
    got = UNIT.limit_errors(t, x, f, t_prev, f_prev)
    assert got[1].item() == math.inf
    at_threshold = torch.tensor([0.05, 0.05], dtype=torch.float64)
    assert UNIT.limit_errors(at_threshold, x, f, t_prev, f_prev).isfinite().all()
    torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=0)
    assert (
        ind.Adaptive(atol=1.0, rtol=0.0, switch_time_max=0.07)
        .limit_errors(t, x, f, t_prev, f_prev)[1]
        .isfinite()
    )


def test_limit_errors_scale_by_the_limit_value():
    a = ind.Adaptive(atol=1.0, rtol=1.0)
    f_prev = torch.tensor([[0.0]], dtype=torch.float64)
    f = torch.tensor([[3.0]], dtype=torch.float64)
    x = torch.tensor([[-1.0]], dtype=torch.float64)
    # error 3 * 1/3 = 1, scale 1 + max(|x|, |F|) = 4
    assert a.limit_errors(0.04, x, f, 0.08, f_prev).tolist() == pytest.approx([0.25], rel=1e-12)


def test_propose_end():
    a = ind.Adaptive(t_end=0.5)
    assert a.propose_end(0.8, 0.2) == 0.8 - 0.2
    assert a.propose_end(0.8, 0.2999) == 0.5  # would leave a sliver of 1e-4 < 3e-4
    assert a.propose_end(0.8, 0.2995) == 0.8 - 0.2995  # a gap of 5e-4 > 2.995e-4 is kept
    assert a.propose_end(0.8, 0.4) == 0.5
    # A gap of exactly 1e-3 h is kept: the sliver test is strict.
    assert a.propose_end(0.5 + 1e-3 * 0.25 + 0.25, 0.25) == 0.5 + 1e-3 * 0.25
    b = ind.Adaptive()
    assert b.propose_end(0.5, 0.1) == 0.5 - 0.1
    assert b.propose_end(0.5, 0.48) == 0.1 * 0.5
    assert ind.Adaptive(min_time_ratio=0.5).propose_end(0.5, 0.48) == 0.25


class Probe:
    """``deriv_at`` that records its calls and returns a fixed value."""

    def __init__(self, value: list[list[float]]) -> None:
        self.value = torch.tensor(value, dtype=torch.float64)
        self.calls: list[tuple[float, torch.Tensor]] = []

    def __call__(self, t: float, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((t, x))
        return self.value


def t64(value: list[list[float]]) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def test_initial_step_probe_and_curvature_term():
    # d0 = 2, d1 = 4: h0 = 0.005; d2 = 0.5 / 0.005 = 100; h1 = (1e-4)^(1/2) = 0.01.
    probe = Probe([[4.5]])
    h = initial_step(UNIT, 1.0, t64([[2.0]]), t64([[4.0]]), probe, 1)
    assert h == pytest.approx(0.01, rel=1e-12)
    assert len(probe.calls) == 1
    assert probe.calls[0][0] == 1.0 - 0.005
    torch.testing.assert_close(probe.calls[0][1], t64([[2.0 - 0.02]]), rtol=0, atol=1e-15)


def test_initial_step_derivative_term_and_order():
    # d2 = 0: h1 = (0.01 / d1)^(1 / (order + 1)) with d1 = 4.
    same = Probe([[4.0]])
    assert initial_step(UNIT, 1.0, t64([[2.0]]), t64([[4.0]]), same, 1) == (0.01 / 4) ** 0.5
    assert initial_step(UNIT, 1.0, t64([[2.0]]), t64([[4.0]]), same, 2) == (0.01 / 4) ** (1 / 3)


def test_initial_step_small_state_norm_uses_the_default_probe():
    # d0 = d1 = 0.5 (above 1e-5): h0 = 0.01, so 100 h0 = 1 > h1 = (0.01 / 0.5)^(1/2).
    probe = Probe([[0.5]])
    assert initial_step(UNIT, 1.0, t64([[0.5]]), t64([[0.5]]), probe, 1) == pytest.approx(0.02**0.5)
    assert probe.calls[0][0] == 1.0 - 0.01
    # d0 = 0: probe 1e-6, then h = 100 h0 = 1e-4.
    zero = Probe([[0.5]])
    assert initial_step(UNIT, 1.0, t64([[0.0]]), t64([[0.5]]), zero, 1) == pytest.approx(1e-4)
    assert zero.calls[0][0] == 1.0 - 1e-6


def test_initial_step_zero_derivative():
    # d1 = d2 = 0: h0 = 1e-6 and h1 = max(1e-6, 1e-9) = 1e-6.
    probe = Probe([[0.0]])
    assert initial_step(UNIT, 1.0, t64([[2.0]]), t64([[0.0]]), probe, 1) == 1e-6
    assert probe.calls[0][0] == 1.0 - 1e-6


def test_initial_step_infinite_norms_against_zero_tolerance():
    a = ind.Adaptive(rtol=1.0, atol=0.0)
    x0 = t64([[0.0, 2.0]])
    # d0 = sqrt(0.5), d1 = sqrt(2): h0 = 0.005; the probe changes the entry with zero scale, so
    # d2 = inf and h1 = max(1e-6, 1e-3 h0) = 5e-6.
    probe = Probe([[1.0, 4.0]])
    assert initial_step(a, 1.0, x0, t64([[0.0, 4.0]]), probe, 1) == pytest.approx(5e-6)
    assert probe.calls[0][0] == pytest.approx(0.995, abs=1e-15)
    # d1 = inf: probe 1e-6; h1 = 1e-6.
    inf_probe = Probe([[1.0, 4.0]])
    assert initial_step(a, 1.0, x0, t64([[1.0, 4.0]]), inf_probe, 1) == 1e-6
    assert inf_probe.calls[0][0] == 1.0 - 1e-6


def test_initial_step_caps():
    same = Probe([[4.0]])
    # t0 = 0.004: h0 = min(0.005, 0.002); h = min(0.2, 0.05, 1, 0.9 * 0.004).
    assert initial_step(UNIT, 0.004, t64([[2.0]]), t64([[4.0]]), same, 1) == 0.9 * 0.004
    assert same.calls[0][0] == 0.004 - 0.002
    capped = ind.Adaptive(rtol=0.0, atol=1.0, max_step=0.003)
    assert initial_step(capped, 1.0, t64([[2.0]]), t64([[4.0]]), same, 1) == 0.003
    ratio = ind.Adaptive(rtol=0.0, atol=1.0, min_time_ratio=0.5)
    assert initial_step(ratio, 0.08, t64([[2.0]]), t64([[4.0]]), same, 1) == 0.5 * 0.08


def test_initial_step_reports_non_finite_values():
    msg = (
        "the field returned non-finite values (NaN or inf) at the start, t = 0.75; check the "
        "regressor at that time (and its input scaling)"
    )
    probe = Probe([[1.0]])
    with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
        initial_step(UNIT, 0.75, t64([[2.0]]), t64([[math.nan]]), probe, 1)
    assert probe.calls == []
    msg = (
        "the field returned non-finite values (NaN or inf) in the starting-step probe from "
        "t = 1 to 0.995; check the regressor at that time (and its input scaling)"
    )
    with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
        initial_step(UNIT, 1.0, t64([[2.0]]), t64([[4.0]]), Probe([[math.inf]]), 1)


def test_initial_step_norm_thresholds_are_inclusive():
    # d0 = 1e-5 exactly (sqrt(x^2) == x): the probe is 0.01 d0 / d1 = 1e-4, not 1e-6.
    probe = Probe([[1e-3]])
    assert initial_step(UNIT, 1.0, t64([[1e-5]]), t64([[1e-3]]), probe, 1) == 100 * (
        0.01 * 1e-5 / 1e-3
    )
    assert probe.calls[0][0] == 1.0 - 0.01 * 1e-5 / 1e-3
    # d1 = 1e-5 exactly: probe 0.01 / 1e-5, capped at t0 / 2.
    probe = Probe([[1e-5]])
    assert initial_step(UNIT, 1.0, t64([[1.0]]), t64([[1e-5]]), probe, 1) == 0.9
    assert probe.calls[0][0] == 0.5
    # max(d1, d2) = 1e-15 exactly: no curvature information, h1 = max(1e-6, 1e-3 h0) = 1e-6.
    probe = Probe([[1e-15]])
    assert initial_step(UNIT, 1.0, t64([[1.0]]), t64([[1e-15]]), probe, 1) == 1e-6


def test_initial_step_scale_adds_relative_and_absolute_tolerances():
    # sc = 1 + 1 * |3| = 4: d0 = 0.75, d1 = 2, h0 = 0.00375; d2 = 0, h1 = (0.01 / 2)^(1/2).
    a = ind.Adaptive(rtol=1.0, atol=1.0)
    probe = Probe([[8.0]])
    assert initial_step(a, 1.0, t64([[3.0]]), t64([[8.0]]), probe, 1) == (0.01 / 2.0) ** 0.5
    assert probe.calls[0][0] == 1.0 - 0.01 * 0.75 / 2.0
