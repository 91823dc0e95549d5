"""Tests of the exponential multistep solvers (indiflow/multistep.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.multistep import (
    MultistepState,
    exponential_update,
    interpolation_weights,
    newton_integrals,
)

MEAN = torch.tensor([0.5, -0.3], dtype=torch.float64)
COV = torch.tensor([[0.08, 0.03], [0.03, 0.3]], dtype=torch.float64)
EIGVALS, EIGVECS = torch.linalg.eigh(COV)

SOLVERS = {
    "ms2": ind.ExpMultistep2(),
    "ms2-pec": ind.ExpMultistep2(corrector=True),
    "ms3": ind.ExpMultistep3(),
    "ms3-ab": ind.ExpMultistep3(corrector=False),
    "ms4": ind.ExpMultistep4(),
    "ms4-ab": ind.ExpMultistep4(corrector=False),
}


def gaussian_regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact ``F = mu + C (C + t^2 I)^{-1} (x - mu)`` for ``N(MEAN, COV)``, ``H = I``, sigma 1."""
    gain = EIGVALS / (EIGVALS + t[:, None] ** 2)
    return MEAN + ((x_t - MEAN) @ EIGVECS * gain) @ EIGVECS.mT


def gaussian_exact(y: torch.Tensor, t: float) -> torch.Tensor:
    """Closed-form ``x(t) = mu + (C + t^2 I)^{1/2} (C + I)^{-1/2} (y - mu)``."""
    gain = ((EIGVALS + t * t) / (EIGVALS + 1.0)).sqrt()
    return MEAN + ((y - MEAN) @ EIGVECS * gain) @ EIGVECS.mT


def inputs(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return MEAN + 1.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def fitted_slope(solver: object, t_end: float, ns: tuple[int, ...]) -> float:
    y, field = inputs(), ind.InDIField(gaussian_regressor)
    errors = []
    for n in ns:
        ts = [1.0 - (1.0 - t_end) * i / n for i in range(n)] + [t_end]
        x = ind.solve(field, solver, y, ind.FixedSteps(ind.TimeGrid(ts))).x
        errors.append(float((x - gaussian_exact(y, t_end)).abs().max()))
    return float(np.polyfit(-np.log(ns), np.log(errors), 1)[0])


def quadrature(t: float, s: float, taus: list[float], j: int) -> float:
    """``s ∫_s^t w_j(u^2) / u^2 du`` by 40-point Gauss-Legendre (the integrand is smooth)."""
    nodes, weights = np.polynomial.legendre.leggauss(40)
    u = 0.5 * (t - s) * nodes + 0.5 * (t + s)
    basis = np.prod([u * u - tau for tau in taus[:j]], axis=0) if j else np.ones_like(u)
    return float(s * 0.5 * (t - s) * np.sum(weights * basis / (u * u)))


@settings(max_examples=40, deadline=None)
@given(
    t=st.floats(0.05, 1.0),
    ratio=st.floats(0.05, 0.999),
    spread=st.lists(st.floats(1.01, 3.0), min_size=3, max_size=3),
)
def test_newton_integrals_match_quadrature(t: float, ratio: float, spread: list[float]) -> None:
    s = ratio * t
    nodes = [t, min(1.0, t * spread[0])]
    nodes += [min(1.0, nodes[-1] * spread[1]) + 1e-3, min(1.0, nodes[-1] * spread[2]) + 2e-3]
    taus = [u * u for u in nodes]
    for j, b in enumerate(newton_integrals(t, s, taus)):
        assert b == pytest.approx(quadrature(t, s, taus, j), rel=1e-9, abs=1e-13)


def test_newton_integrals_at_zero_are_the_basis_at_zero() -> None:
    taus = [0.04, 0.09, 0.25, 0.64]
    expected = [1.0, -0.04, 0.04 * 0.09, -0.04 * 0.09 * 0.25]
    assert newton_integrals(0.2, 0.0, taus) == pytest.approx(expected, rel=1e-14)


def test_weights_integrate_polynomials_in_t_squared_exactly() -> None:
    t, s, nodes = 0.4, 0.25, [0.4, 0.55, 0.7]
    values = [2.0 - 3.0 * u**2 + 5.0 * u**4 for u in nodes]
    exact = s * (2.0 * (1 / s - 1 / t) - 3.0 * (t - s) + 5.0 * (t**3 - s**3) / 3)
    weights = interpolation_weights(t, s, nodes)
    assert sum(w * v for w, v in zip(weights, values, strict=True)) == pytest.approx(exact)


def test_too_many_nodes_raise() -> None:
    with pytest.raises(ValueError, match="at most 4"):
        newton_integrals(0.5, 0.4, [0.25, 0.36, 0.49, 0.64, 0.81])


@pytest.mark.parametrize("name", SOLVERS)
def test_constant_regressor_is_exact(name: str) -> None:
    c = torch.tensor([0.3, -1.2], dtype=torch.float64)
    field = ind.InDIField(lambda x_t, t: c.expand_as(x_t))
    y = inputs()
    grid = ind.TimeGrid([1.0, 0.9, 0.55, 0.5, 0.2, 0.03, 0.0])
    for controller in (ind.FixedSteps(grid), ind.Adaptive(rtol=1e-6, atol=1e-6)):
        sol = ind.solve(field, SOLVERS[name], y, controller, save_trajectory=True)
        for t, x in zip(sol.ts.tolist(), sol.xs, strict=True):
            torch.testing.assert_close(x, c + t * (y - c), rtol=0, atol=1e-11)


@pytest.mark.parametrize("name", SOLVERS)
def test_regressor_linear_in_t_squared_is_exact_down_to_zero(name: str) -> None:
    a = torch.tensor([0.3, -1.2], dtype=torch.float64)
    b = torch.tensor([-0.7, 2.0], dtype=torch.float64)
    field = ind.InDIField(lambda x_t, t: (a + b * t[:, None] ** 2).expand_as(x_t))
    y = inputs()

    def exact(t: float) -> torch.Tensor:  # x_s/s = x_1 + ∫_s^1 (a + b u^2)/u^2 du
        return t * (y + a * (1 / t - 1) + b * (1 - t)) if t > 0 else a.expand_as(y)

    sol = ind.solve(field, SOLVERS[name], y, ind.FixedSteps(ind.TimeGrid.power(7, 2.0)), True)
    for t, x in zip(sol.ts.tolist(), sol.xs, strict=True):
        torch.testing.assert_close(x, exact(t), rtol=0, atol=1e-13)


@pytest.mark.parametrize(("name", "order"), [("ms2", 2), ("ms2-pec", 2), ("ms3", 3), ("ms3-ab", 3)])
def test_order_away_from_zero(name: str, order: int) -> None:
    slope = fitted_slope(SOLVERS[name], 0.05, (16, 32, 64, 128))
    assert abs(slope - order) <= 0.25, slope


@pytest.mark.parametrize(
    ("name", "order"), [("ms2", 2), ("ms3", 3), ("ms3-ab", 3), ("ms4", 4), ("ms4-ab", 4)]
)
def test_order_kept_down_to_zero(name: str, order: int) -> None:
    # The final step extrapolates F in t^2 (error O(t_last^4) or O(t_last^6) here), so the
    # order of the interior steps survives; the RK solvers drop to 2 on the same problem.
    slope = fitted_slope(SOLVERS[name], 0.0, (16, 32, 64, 128))
    # ExpMultistep4's corrector measures 4.2-4.4 here (also on 32-256 steps): errors falling
    # faster than the declared order are allowed a little more room above it.
    assert order - 0.25 <= slope <= order + (0.5 if name == "ms4" else 0.25), slope


def test_predictor_corrector_of_order_two_loses_order_near_zero() -> None:
    # Documented: its Euler predictor's O(h^2) error enters the corrector with O(1) weights where
    # steps are as long as t itself, giving about h^2 log(1/h) there (fitted slope ~1.6).
    slope = fitted_slope(SOLVERS["ms2-pec"], 0.0, (16, 32, 64, 128))
    assert 1.3 <= slope <= 1.85, slope


@pytest.mark.parametrize(("nodes", "order"), [(2, 4), (3, 6)])
def test_final_step_extrapolation_order(nodes: int, order: int) -> None:
    # For H = I, F(x(t), t) is a smooth function of t^2: extrapolating k exact values at
    # h, 2h, ... to 0 errs by O(h^(2k)).
    y = inputs()
    solver = ind.ExpMultistep2() if nodes == 2 else ind.ExpMultistep3()
    errors, hs = [], [0.04, 0.02, 0.01]
    for h in hs:
        times = [h * (i + 1) for i in range(nodes)]
        values = [gaussian_regressor(gaussian_exact(y, u), torch.full((16,), u)) for u in times]
        state = MultistepState(tuple(times[1:]), tuple(values[1:]))
        field = ind.InDIField(gaussian_regressor)
        result = solver.step(field, h, 0.0, gaussian_exact(y, h), values[0], state, False)
        assert result.nfe == 0
        errors.append(float((result.x - gaussian_exact(y, 0.0)).abs().max()))
    slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.3, slope


@pytest.mark.parametrize("name", SOLVERS)
def test_never_evaluated_at_or_below_zero(name: str) -> None:
    seen: list[torch.Tensor] = []

    def recording(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t.clone())
        return gaussian_regressor(x_t, t)

    field = ind.InDIField(recording)
    for controller in (ind.FixedSteps(ind.TimeGrid.uniform(9)), ind.Adaptive(rtol=1e-4)):
        sol = ind.solve(field, SOLVERS[name], inputs(), controller)
        assert sol.ts[-1] == 0.0
    assert float(torch.cat(seen).min()) > 0.0


@pytest.mark.parametrize("name", SOLVERS)
def test_adaptive_meets_tolerance(name: str) -> None:
    y = inputs()
    sol = ind.solve(ind.InDIField(gaussian_regressor), SOLVERS[name], y, ind.Adaptive(1e-6, 1e-6))
    assert float((sol.x - gaussian_exact(y, 0.0)).abs().max()) < 1e-4
    assert sol.stats.nfe == sol.stats.steps + 1  # one evaluation per attempted step + start


@pytest.mark.parametrize("name", SOLVERS)
def test_one_evaluation_per_step_on_fixed_grids(name: str) -> None:
    sol = ind.solve(
        ind.InDIField(gaussian_regressor),
        SOLVERS[name],
        inputs(),
        ind.FixedSteps(ind.TimeGrid.uniform(8)),
    )
    assert sol.stats.nfe == 8


def test_error_estimate_is_the_order_difference() -> None:
    field, y = ind.InDIField(gaussian_regressor), inputs()
    f1 = gaussian_regressor(y, torch.ones(16, dtype=torch.float64))
    first = ind.ExpMultistep2().step(field, 1.0, 0.8, y, f1, None, True)
    assert first.nfe == 1 and first.denoised_next is not None and first.error is not None
    f2 = gaussian_regressor(first.x, torch.full((16,), 0.8, dtype=torch.float64))
    second = ind.ExpMultistep2().step(field, 0.8, 0.6, first.x, f2, first.state, True)
    euler = ind.Euler().step(field, 0.8, 0.6, first.x, f2).x
    torch.testing.assert_close(second.error, second.x - euler)
    assert second.nfe == 0


def test_per_sample_times_match_float_times() -> None:
    field, y = ind.InDIField(gaussian_regressor), inputs()
    solver, ones = ind.ExpMultistep3(), torch.ones(16, dtype=torch.float64)
    x_f, x_v, state_f, state_v = y, y, None, None
    for t, s in ((1.0, 0.7), (0.7, 0.4), (0.4, 0.2), (0.2, 0.1)):
        r_f = solver.step(field, t, s, x_f, field.denoise(t, x_f), state_f, True)
        r_v = solver.step(
            field, t * ones, s * ones, x_v, field.denoise(t * ones, x_v), state_v, True
        )
        torch.testing.assert_close(r_v.x, r_f.x, rtol=1e-13, atol=1e-14)
        x_f, x_v, state_f, state_v = r_f.x, r_v.x, r_f.state, r_v.state


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 12), batch=st.integers(1, 5), pec=st.booleans())
def test_shapes_dtype_and_batch_independence(n: int, batch: int, pec: bool) -> None:
    y = inputs(batch, seed=n).float().reshape(batch, 2, 1)

    def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        flat = gaussian_regressor(x_t.double().reshape(-1, 2), t.double()).reshape(x_t.shape)
        return flat.to(x_t.dtype)

    field, grid = ind.InDIField(regressor), ind.FixedSteps(ind.TimeGrid.power(n, 2.0))
    sol = ind.solve(field, ind.ExpMultistep3(corrector=pec), y, grid)
    assert sol.x.shape == y.shape and sol.x.dtype == torch.float32
    alone = ind.solve(field, ind.ExpMultistep3(corrector=pec), y[:1], grid).x
    torch.testing.assert_close(alone, sol.x[:1])


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="corrector must be a bool"):
        ind.ExpMultistep3(corrector="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="corrector must be a bool"):
        ind.ExpMultistep2(corrector=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="corrector must be a bool"):
        ind.ExpMultistep4(corrector=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="MultistepState"):
        y = inputs()
        ind.ExpMultistep2().step(ind.InDIField(gaussian_regressor), 1.0, 0.5, y, y, (1.0,), False)
    with pytest.raises(TypeError, match="unexpected keyword"):
        ind.ExpMultistep2(order=3)  # type: ignore[call-arg]


def test_update_matches_euler_with_one_node() -> None:
    y, f = inputs(), inputs(seed=1)
    expected = ind.Euler().step(ind.InDIField(gaussian_regressor), 0.6, 0.25, y, f).x
    torch.testing.assert_close(exponential_update(0.6, 0.25, y, [0.6], [f]), expected)
    assert math.isclose(float(interpolation_weights(0.6, 0.0, [0.6])[0]), 1.0)


def _lower_order_result(nodes: int, field, t, s, x, denoised, state):
    """The explicit ``nodes``-node extrapolation on the same history, by another solver."""
    if nodes == 1:
        return ind.Euler().step(field, t, s, x, denoised).x
    lower = {2: ind.ExpMultistep2(corrector=False), 3: ind.ExpMultistep3(corrector=False)}[nodes]
    return lower.step(field, t, s, x, denoised, state, False).x


@pytest.mark.parametrize("name", SOLVERS)
def test_error_estimate_is_main_minus_the_embedded_lower_order_result(name: str) -> None:
    # Embedded result: the predictor of a predict-evaluate-correct step (order - 1 nodes, at most
    # the history), else the explicit extrapolation through one node fewer than the main one.
    solver = SOLVERS[name]
    field, x, state = ind.InDIField(gaussian_regressor), inputs(), None
    for t, s in ((1.0, 0.8), (0.8, 0.6), (0.6, 0.45), (0.45, 0.3), (0.3, 0.2)):
        denoised = field.denoise(t, x)
        history = 0 if state is None else len(state.times)
        result = solver.step(field, t, s, x, denoised, state, True)
        if solver.corrector or history == 0:
            nodes = min(solver.order - 1, history + 1) if solver.corrector else 1
        else:
            nodes = min(solver.order, history + 1) - 1
        embedded = _lower_order_result(nodes, field, t, s, x, denoised, state)
        assert result.error.abs().max() > 1e-7
        torch.testing.assert_close(result.error, result.x - embedded, rtol=1e-12, atol=1e-15)
        x, state = result.x, result.state
