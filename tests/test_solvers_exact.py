"""Exact single-step oracles for the one-step solvers: values, stage times, counters, fields.

Fast companions of ``test_solvers.py`` (which measures orders over whole solves): every check
here is one step against a textbook formula written out independently of ``indiflow.solvers``.
"""

import pytest
import torch
from butcher_tableaux import TABLEAUX

import indiflow as ind
from indiflow.solvers import StepResult, _lincomb, limit_step
from problems import RecordingRegressor


def nonlinear(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A cheap regressor that depends on both the state and the time."""
    tt = t.reshape(-1, *([1] * (x.dim() - 1)))
    return torch.sin(x) * (1 + tt) + 0.3 * tt * tt


FIELD = ind.InDIField(nonlinear)
X = torch.tensor([[0.7, -1.2], [2.0, 0.1], [-0.4, 0.9]], dtype=torch.float64)

RK = [ind.Heun(), ind.BogackiShampine(), ind.DormandPrince()]
# Evaluations made by step() itself: (without, with) the error estimate.
STEP_NFE = {"Heun": (1, 1), "BogackiShampine": (2, 3), "DormandPrince": (5, 6)}


def textbook(name: str, t: float, s: float, x: torch.Tensor):
    """Main and embedded results of ``k_i = f(t + c_i h, x + h sum_j a_ij k_j)``, ``h = s - t``."""
    c, a, b, b_hat = TABLEAUX[name]
    h, ks = s - t, []
    for c_i, row in zip(c, a, strict=True):
        x_i = x.clone()
        for a_ij, k in zip(row, ks, strict=False):
            x_i = x_i + h * a_ij * k
        ks.append(FIELD(t + c_i * h, x_i))
    main = x + h * sum(w * k for w, k in zip(b, ks, strict=True))
    embedded = x + h * sum(w * k for w, k in zip(b_hat, ks, strict=True))
    return main, embedded, FIELD.denoise(s, main)


def test_declared_orders():
    assert (ind.Euler().order, ind.Euler().error_order) == (1, None)
    assert (ind.Heun().order, ind.Heun().error_order) == (2, 1)
    assert (ind.BogackiShampine().order, ind.BogackiShampine().error_order) == (3, 2)
    assert (ind.DormandPrince().order, ind.DormandPrince().error_order) == (5, 4)


def test_step_result_and_limit_step_fields():
    d = torch.ones(2, 1)
    res = StepResult(x=d, error=None, denoised_next=None, nfe=3)
    assert res.state is None and res.nfe == 3
    lim = limit_step(d)
    assert lim.x is d and lim.error is None and lim.denoised_next is None
    assert lim.nfe == 0 and lim.state is None
    assert limit_step(d, state="kept").state == "kept"


def test_lincomb_float_and_tensor_weights():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b = torch.tensor([-3.0, 0.5], dtype=torch.float64)
    w = torch.tensor([[2.0], [4.0]], dtype=torch.float64)
    assert torch.equal(_lincomb(None, [(3.0, a)]), 3.0 * a)
    assert torch.equal(_lincomb(a, [(3.0, b)]), a + 3.0 * b)
    assert torch.equal(_lincomb(None, [(3.0, a), (-2.0, b)]), 3.0 * a - 2.0 * b)
    assert torch.equal(_lincomb(a, [(w, b)]), a + w * b)
    assert torch.equal(_lincomb(None, [(w, a), (w, b)]), w * a + w * b)
    assert torch.equal(_lincomb(a, []), a)
    with pytest.raises(ValueError, match=r"^a Runge-Kutta combination needs at least one term$"):
        _lincomb(None, [])


def test_euler_step_float_and_tensor_times():
    d = FIELD.denoise(0.8, X)
    res = ind.Euler().step(FIELD, 0.8, 0.3, X, d)
    torch.testing.assert_close(res.x, 0.625 * d + 0.375 * X, rtol=0, atol=1e-15)
    assert res.error is None and res.denoised_next is None and res.nfe == 0 and res.state is None
    t = torch.tensor([0.8, 0.5, 0.4], dtype=torch.float64)
    s = torch.tensor([0.3, 0.25, 0.0], dtype=torch.float64)
    res = ind.Euler().step(FIELD, t, s, X, d, None, True)
    ratio = torch.tensor([[0.625], [0.5], [1.0]], dtype=torch.float64)
    torch.testing.assert_close(res.x, ratio * d + (1 - ratio) * X, rtol=0, atol=1e-15)
    assert res.error is None and res.nfe == 0
    assert torch.equal(res.x[2], d[2])  # s = 0: exactly F(x_t, t)


@pytest.mark.parametrize("solver", RK, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize(("t", "s"), [(1.0, 0.7), (0.3, 0.05)])
def test_step_matches_the_textbook_tableau(solver, t, s):
    name = type(solver).__name__
    main, embedded, f_next = textbook(name, t, s, X)
    d = FIELD.denoise(t, X)
    plain = solver.step(FIELD, t, s, X, d)  # default: no error estimate
    torch.testing.assert_close(plain.x, main, rtol=1e-13, atol=1e-14)
    assert plain.error is None and plain.denoised_next is None and plain.state is None
    assert plain.nfe == STEP_NFE[name][0]
    res = solver.step(FIELD, t, s, X, d, None, True)
    torch.testing.assert_close(res.x, main, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(res.error, main - embedded, rtol=1e-9, atol=1e-14)
    assert res.nfe == STEP_NFE[name][1] and res.state is None
    if name == "Heun":
        assert res.denoised_next is None
    else:  # first same as last: F at the new state, from the step itself
        torch.testing.assert_close(res.denoised_next, f_next, rtol=0, atol=1e-15)


@pytest.mark.parametrize("solver", RK, ids=lambda s: type(s).__name__)
def test_stage_times_and_evaluation_count(solver):
    name = type(solver).__name__
    c = TABLEAUX[name][0]
    t, s = 0.9, 0.4
    for with_error in (False, True):
        rec = RecordingRegressor(nonlinear)
        res = solver.step(ind.InDIField(rec), t, s, X, FIELD.denoise(t, X), None, with_error)
        n_stages = len(c) - (name != "Heun")  # FSAL: the last stage is the next step's first
        expected = [s + (1.0 - c_i) * (t - s) for c_i in c[1:n_stages]]
        if with_error and name != "Heun":
            expected.append(s)
        assert [float(u[0]) for u in rec.times] == expected
        assert res.nfe == len(rec.times) == STEP_NFE[name][with_error]


@pytest.mark.parametrize("solver", RK, ids=lambda s: type(s).__name__)
def test_step_onto_zero_is_the_limit_step_without_evaluations(solver):
    rec = RecordingRegressor(nonlinear)
    d = FIELD.denoise(0.2, X)
    res = solver.step(ind.InDIField(rec), 0.2, 0.0, X, d, None, True)
    assert res.x is d and res.error is None and res.denoised_next is None and res.nfe == 0
    assert rec.times == []


@pytest.mark.parametrize("solver", [ind.Euler(), *RK], ids=lambda s: type(s).__name__)
def test_per_sample_times_equal_float_times(solver):
    t = torch.tensor([0.9, 0.5, 0.3], dtype=torch.float64)
    s = torch.tensor([0.7, 0.45, 0.1], dtype=torch.float64)
    res = solver.step(FIELD, t, s, X, FIELD.denoise(t, X), None, True)
    for i in range(3):
        xi, ti, si = X[i : i + 1], float(t[i]), float(s[i])
        one = solver.step(FIELD, ti, si, xi, FIELD.denoise(ti, xi), None, True)
        torch.testing.assert_close(res.x[i : i + 1], one.x, rtol=0, atol=1e-14)
        if one.error is not None:
            torch.testing.assert_close(res.error[i : i + 1], one.error, rtol=1e-12, atol=1e-15)
