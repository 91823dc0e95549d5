"""Exact oracles for the exponential multistep solvers: integrals, weights, every step branch.

Fast companions of ``test_multistep.py`` (orders over whole solves). The reference here fits the
polynomial in ``tau = u^2`` through the stored values by a Vandermonde solve and integrates
``s ∫_s^t p(u^2) / u^2 du`` term by term, independently of the Newton form in the library.
"""

import re

import numpy as np
import pytest
import torch

import indiflow as ind
from indiflow.multistep import (
    MultistepState,
    exponential_update,
    interpolation_weights,
    multistep_step,
    newton_integrals,
)
from problems import RecordingRegressor


def nonlinear(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    tt = t.reshape(-1, *([1] * (x.dim() - 1)))
    return torch.cos(x) * (1 + tt) - 0.2 * tt


FIELD = ind.InDIField(nonlinear)
GEN = torch.Generator().manual_seed(7)
X = torch.randn(3, 2, generator=GEN, dtype=torch.float64)
F = [torch.randn(3, 2, generator=GEN, dtype=torch.float64) for _ in range(5)]


def integral_of_poly(coeffs: list[float], t: float, s: float) -> float:
    """``s ∫_s^t q(u^2) / u^2 du`` for ``q(tau) = sum_m coeffs[m] tau^m`` (exact antiderivative)."""
    if s == 0.0:
        return coeffs[0]
    total = coeffs[0] * (1 / s - 1 / t)
    for m, c in enumerate(coeffs[1:], start=1):
        total += c * (t ** (2 * m - 1) - s ** (2 * m - 1)) / (2 * m - 1)
    return s * total


def reference_update(t, s, x, nodes, values):
    """``(s/t) x + s ∫_s^t p(u^2) / u^2 du`` with ``p`` fitted through ``(nodes^2, values)``."""
    taus = torch.tensor([u * u for u in nodes], dtype=torch.float64)
    vander = taus[:, None] ** torch.arange(len(nodes), dtype=torch.float64)
    stacked = torch.stack(list(values)).reshape(len(nodes), -1)
    coeffs = torch.linalg.solve(vander, stacked)  # (degree + 1, entries)
    out = (s / t) * x.reshape(-1).clone()
    for j in range(out.numel()):
        out[j] += integral_of_poly(coeffs[:, j].tolist(), t, s)
    return out.reshape(x.shape)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize(("t", "s"), [(0.7, 0.55), (0.3, 0.0)])
def test_newton_integrals_are_the_basis_integrals(n, t, s):
    taus = [t * t, 0.85**2, 0.95**2, 1.0][:n]
    got = newton_integrals(t, s, taus)
    assert len(got) == n
    for j in range(n):
        coeffs = np.atleast_1d(np.poly(taus[:j]))[
            ::-1
        ].tolist()  # w_j(tau) = prod_{i<j} (tau - tau_i)
        assert got[j] == pytest.approx(integral_of_poly(coeffs, t, s), rel=1e-12, abs=1e-15)


def test_newton_integrals_reject_five_nodes():
    with pytest.raises(ValueError, match=r"^at most 4 interpolation nodes are supported, got 5$"):
        newton_integrals(0.5, 0.4, [0.25, 0.3, 0.4, 0.5, 0.6])


def test_interpolation_weights_single_node_and_constant_reproduction():
    assert interpolation_weights(0.8, 0.6, [0.8]) == [pytest.approx(0.25, rel=1e-15)]
    for k in (2, 3, 4):
        nodes = [0.8, 0.9, 0.95, 1.0][:k]
        # A constant F integrates to F (1 - s/t); a linear one in tau to the exact integral.
        assert sum(interpolation_weights(0.8, 0.6, nodes)) == pytest.approx(0.25, rel=1e-12)
        w = interpolation_weights(0.8, 0.6, nodes)
        lin = sum(wi * (1 + 2 * u * u) for wi, u in zip(w, nodes, strict=True))
        assert lin == pytest.approx(integral_of_poly([1.0, 2.0], 0.8, 0.6), rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize(("t", "s"), [(0.7, 0.55), (0.3, 0.0), (0.2, 0.05)])
def test_exponential_update_matches_the_reference(k, t, s):
    nodes = [t, t + 0.1, t + 0.25, t + 0.3][:k]
    got = exponential_update(t, s, X, nodes, F[:k])
    want = reference_update(t, s, X, nodes, F[:k])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_exponential_update_rejects_unpaired_nodes_and_values():
    with pytest.raises(ValueError, match="zip"):
        exponential_update(0.7, 0.55, X, [0.7, 0.8], F[:3])
    with pytest.raises(ValueError, match="zip"):
        exponential_update(0.7, 0.55, X, [0.7, 0.8, 0.9], F[:2])


def test_state_and_corrector_checks():
    assert MultistepState().times == () and MultistepState().denoised == ()
    msg = (
        "an exponential multistep solver needs the state it returned at the previous step "
        "(a MultistepState or None at the start), got str"
    )
    d = FIELD.denoise(0.5, X)
    with pytest.raises(TypeError, match=f"^{re.escape(msg)}$"):
        ind.ExpMultistep2().step(FIELD, 0.5, 0.4, X, d, "state")
    for cls in (ind.ExpMultistep2, ind.ExpMultistep3, ind.ExpMultistep4):
        with pytest.raises(TypeError, match=r"^corrector must be a bool, got int$"):
            cls(corrector=1)


def test_declared_orders_and_defaults():
    solvers = [ind.ExpMultistep2(), ind.ExpMultistep3(), ind.ExpMultistep4()]
    assert [(m.order, m.error_order, m.corrector) for m in solvers] == [
        (2, 1, False),
        (3, 2, True),
        (4, 3, True),
    ]
    with pytest.raises(TypeError):
        ind.ExpMultistep3(order=2)


SOLVERS = {2: ind.ExpMultistep2, 3: ind.ExpMultistep3, 4: ind.ExpMultistep4}
T, S = 0.7, 0.55
HISTORY = (0.8, 0.9, 1.0)  # earlier accepted times, most recent first


def memory(m: int) -> MultistepState:
    return MultistepState(HISTORY[:m], tuple(F[1 : m + 1]))


def run_step(order, corrector, m, s=S, with_error=True):
    rec = RecordingRegressor(nonlinear)
    solver = SOLVERS[order](corrector=corrector)
    res = solver.step(ind.InDIField(rec), T, s, X, F[0], memory(m), with_error)
    return res, rec


def check_kept_state(res, order, m):
    times, values = (T, *HISTORY[:m]), (F[0], *F[1 : m + 1])
    assert res.state.times == times[: order - 1]
    assert len(res.state.denoised) == min(order - 1, m + 1)
    assert all(a is b for a, b in zip(res.state.denoised, values, strict=False))


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("m", [1, 3])
def test_predictor_only_step_extrapolates_the_history(order, m):
    res, rec = run_step(order, False, m)
    k = min(order, m + 1)
    nodes, values = (T, *HISTORY)[:k], F[:k]
    want = reference_update(T, S, X, nodes, values)
    lower = reference_update(T, S, X, nodes[:-1], values[:-1])
    torch.testing.assert_close(res.x, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(res.error, want - lower, rtol=1e-8, atol=1e-12)
    assert res.nfe == 0 and res.denoised_next is None and rec.times == []
    check_kept_state(res, order, m)
    plain, _ = run_step(order, False, m, with_error=False)
    assert plain.error is None and torch.equal(plain.x, res.x)


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("m", [0, 1, 3])
def test_predict_evaluate_correct_step(order, m):
    res, rec = run_step(order, True, m)
    n_pred = min(order - 1, m + 1)
    x_pred = reference_update(T, S, X, (T, *HISTORY)[:n_pred], F[:n_pred])
    at_s = nonlinear(x_pred, torch.full((3,), S, dtype=torch.float64))
    n_hist = min(order - 2, m)
    nodes = (T, S, *HISTORY[:n_hist])
    want = reference_update(T, S, X, nodes, (F[0], at_s, *F[1 : n_hist + 1]))
    assert [float(u[0]) for u in rec.times] == [S] and res.nfe == 1
    torch.testing.assert_close(res.denoised_next, at_s, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(res.x, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(res.error, want - x_pred, rtol=1e-8, atol=1e-12)
    check_kept_state(res, order, m)
    plain, _ = run_step(order, True, m, with_error=False)
    assert plain.error is None and torch.equal(plain.x, res.x)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_start_up_step_of_the_predictor_only_variant(order):
    # No history: Euler predictor, F at s, 2-node correction.
    res, rec = run_step(order, False, 0)
    x_pred = reference_update(T, S, X, (T,), F[:1])
    at_s = nonlinear(x_pred, torch.full((3,), S, dtype=torch.float64))
    want = reference_update(T, S, X, (T, S), (F[0], at_s))
    assert [float(u[0]) for u in rec.times] == [S] and res.nfe == 1
    torch.testing.assert_close(res.x, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(res.error, want - x_pred, rtol=1e-8, atol=1e-12)
    assert res.state.times == (T,)
    default = SOLVERS[order](corrector=False).step(FIELD, T, S, X, F[0])  # state=None, no error
    assert default.error is None
    torch.testing.assert_close(default.x, res.x, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("corrector", [False, True])
@pytest.mark.parametrize("m", [0, 1, 3])
def test_step_onto_zero_extrapolates_to_tau_zero(order, corrector, m):
    res, rec = run_step(order, corrector, m, s=0.0)
    k = min(order, m + 1)
    want = reference_update(T, 0.0, X, (T, *HISTORY)[:k], F[:k])
    torch.testing.assert_close(res.x, want, rtol=1e-10, atol=1e-12)
    assert res.error is None and res.denoised_next is None and res.nfe == 0 and rec.times == []
    check_kept_state(res, order, m)


@pytest.mark.parametrize("corrector", [False, True])
def test_per_sample_times_equal_float_times(corrector):
    t = torch.tensor([0.7, 0.5, 0.3], dtype=torch.float64)
    s = torch.tensor([0.55, 0.45, 0.1], dtype=torch.float64)
    prev = torch.tensor([0.8, 0.6, 0.5], dtype=torch.float64)
    state = MultistepState((prev,), (F[1],))
    res = multistep_step(3, corrector, FIELD, t, s, X, F[0], state, True)
    for i in range(3):
        row = slice(i, i + 1)
        one_state = MultistepState((float(prev[i]),), (F[1][row],))
        one = multistep_step(
            3, corrector, FIELD, float(t[i]), float(s[i]), X[row], F[0][row], one_state, True
        )
        torch.testing.assert_close(res.x[row], one.x, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(res.error[row], one.error, rtol=1e-9, atol=1e-14)
