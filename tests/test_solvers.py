"""Order, exactness and endpoint-safety tests for the one-step solvers."""

import math

import pytest
import torch
from butcher_tableaux import TABLEAUX

import indiflow as ind
from problems import GaussianProblem, RecordingRegressor, algorithm1, constant_regressor

SOLVERS = [ind.Euler(), ind.Heun(), ind.BogackiShampine(), ind.DormandPrince()]
FINE = [16, 32, 64, 128]


def fitted_slope(solver, t_end: float, ns=FINE) -> float:
    """Least-squares slope of log(max error) against log(step) over uniform grids on [1, t_end]."""
    problem = GaussianProblem.default()
    field = problem.field()
    y = problem.inputs(32)
    exact = problem.exact(y, t_end)
    logs_h, logs_e = [], []
    for n in ns:
        grid = ind.TimeGrid(torch.linspace(1.0, t_end, n + 1, dtype=torch.float64))
        x = ind.solve(field, solver, y, ind.FixedSteps(grid)).x
        logs_h.append(math.log((1.0 - t_end) / n))
        logs_e.append(math.log((x - exact).abs().max().item()))
    mh, me = sum(logs_h) / len(logs_h), sum(logs_e) / len(logs_e)
    num = sum((a - mh) * (b - me) for a, b in zip(logs_h, logs_e, strict=True))
    return num / sum((a - mh) ** 2 for a in logs_h)


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_declared_order_away_from_zero(solver):
    ns = FINE if solver.order < 5 else [32, 48, 64, 96]  # DP5: asymptotic yet above rounding
    assert abs(fitted_slope(solver, 0.05, ns) - solver.order) <= 0.25


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_order_down_to_zero_is_capped_at_two_by_the_limit_step(solver):
    # The limit step x(0) ≈ F(x_h, h) has error h^2/2 |x''(0)|, so the full solve is of order
    # min(order, 2).
    assert abs(fitted_slope(solver, 0.0) - min(solver.order, 2)) <= 0.25


def test_euler_reproduces_algorithm1():
    problem = GaussianProblem.default()
    reg = problem.regressor()
    y = problem.inputs(64)
    for n in (1, 3, 20, 57):
        x = ind.solve(ind.InDIField(reg), ind.Euler(), y, ind.FixedSteps(ind.TimeGrid.uniform(n))).x
        torch.testing.assert_close(x, algorithm1(reg, y, n), rtol=0, atol=1e-12)


def test_euler_step_is_the_convex_combination():
    x = torch.randn(3, 2, dtype=torch.float64)
    d = torch.randn(3, 2, dtype=torch.float64)
    res = ind.Euler().step(ind.InDIField(lambda a, t: a), 0.8, 0.3, x, d)
    torch.testing.assert_close(res.x, (0.5 / 0.8) * d + (1 - 0.5 / 0.8) * x, rtol=0, atol=1e-15)
    assert res.nfe == 0 and res.error is None
    onto_zero = ind.Euler().step(ind.InDIField(lambda a, t: a), 0.8, 0.0, x, d)
    assert torch.equal(onto_zero.x, d)


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_final_step_onto_zero_returns_exact_limit(solver):
    rec = RecordingRegressor(lambda x, t: 0.5 * x)
    y = torch.randn(4, 2, dtype=torch.float64)
    grid = ind.FixedSteps(ind.TimeGrid([1.0, 0.5, 0.0]))
    sol = ind.solve(ind.InDIField(rec), solver, y, grid, save_trajectory=True)
    # The last evaluation is F(x_0.5, 0.5) and the returned state is exactly that value.
    assert float(rec.times[-1][0]) == 0.5
    assert torch.equal(sol.x, 0.5 * sol.xs[-2])
    assert torch.min(rec.all_times()) > 0


@pytest.mark.parametrize("solver", SOLVERS[1:], ids=lambda s: type(s).__name__)
def test_embedded_error_estimate_has_the_declared_order(solver):
    problem = GaussianProblem.default()
    field = problem.field()
    y = problem.inputs(8)
    t = 0.6
    x = problem.exact(y, t)
    d = field.denoise(t, x)
    sizes = [0.04, 0.02, 0.01]
    errs = []
    for h in sizes:
        res = solver.step(field, t, t - h, x, d, None, True)
        errs.append(res.error.abs().max().item())
    slope = math.log(errs[0] / errs[-1]) / math.log(sizes[0] / sizes[-1])
    assert abs(slope - (solver.error_order + 1)) <= 0.3


@pytest.mark.parametrize("solver", SOLVERS[2:], ids=lambda s: type(s).__name__)
def test_first_same_as_last_stage_is_f_at_new_state(solver):
    field = GaussianProblem.default().field()
    x = torch.randn(5, 2, dtype=torch.float64)
    res = solver.step(field, 0.9, 0.7, x, field.denoise(0.9, x), None, True)
    torch.testing.assert_close(res.denoised_next, field.denoise(0.7, res.x), rtol=0, atol=1e-15)


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_evaluations_per_step(solver):
    rec = RecordingRegressor(constant_regressor(torch.zeros(2, dtype=torch.float64)))
    y = torch.randn(3, 2, dtype=torch.float64)
    grid = ind.TimeGrid([1.0, 0.8, 0.6, 0.4])  # three steps, none onto 0
    sol = ind.solve(ind.InDIField(rec), solver, y, ind.FixedSteps(grid))
    per_step = {1: 1, 2: 2, 3: 3, 5: 6}[solver.order]
    assert sol.stats.nfe == len(rec.times) == 3 * per_step


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_per_sample_times(solver):
    # Per-sample (B,) times give the same result as running each sample with its own float times.
    field = GaussianProblem.default().field()
    x = torch.randn(3, 2, dtype=torch.float64)
    t = torch.tensor([0.9, 0.5, 0.3], dtype=torch.float64)
    s = torch.tensor([0.7, 0.45, 0.1], dtype=torch.float64)
    res = solver.step(field, t, s, x, field.denoise(t, x), None, False)
    for i in range(3):
        xi = x[i : i + 1]
        ti, si = float(t[i]), float(s[i])
        one = solver.step(field, ti, si, xi, field.denoise(ti, xi), None, False)
        torch.testing.assert_close(res.x[i : i + 1], one.x, rtol=0, atol=1e-14)


def embedded_pair(name, field, t, s, x):
    """Main and embedded results of the textbook k-form ``k_i = f(t + c_i h, x + h sum a k)``."""
    c, a, b, b_hat = TABLEAUX[name]
    h, ks = s - t, []
    for c_i, row in zip(c, a, strict=True):
        x_i = x + h * sum((a_ij * k for a_ij, k in zip(row, ks, strict=False)), torch.zeros_like(x))
        ks.append(field(t + c_i * h, x_i))
    main = x + h * sum(w * k for w, k in zip(b, ks, strict=True))
    embedded = x + h * sum(w * k for w, k in zip(b_hat, ks, strict=True))
    return main, embedded


@pytest.mark.parametrize("solver", SOLVERS[1:], ids=lambda s: type(s).__name__)
@pytest.mark.parametrize(("t", "s"), [(1.0, 0.9), (0.6, 0.45), (0.08, 0.05)])
def test_embedded_error_is_main_minus_embedded_result(solver, t, s):
    field = GaussianProblem.default().field()
    x = GaussianProblem.default().inputs(6, seed=2)
    res = solver.step(field, t, s, x, field.denoise(t, x), None, True)
    main, embedded = embedded_pair(type(solver).__name__, field, t, s, x)
    torch.testing.assert_close(res.x, main, rtol=1e-13, atol=1e-14)
    assert res.error.abs().max() > 1e-9  # far above the rounding of the difference below
    torch.testing.assert_close(res.error, main - embedded, rtol=1e-9, atol=1e-14)


def fixed_step_nodes(name):
    """The nodes ``c`` of the stages a fixed-grid step evaluates.

    With no error estimate wanted, a first-same-as-last pair skips its final stage: the one whose
    row of ``A`` is the main weights ``b``, i.e. the field at the new state.
    """
    c, a, b, _ = TABLEAUX[name]
    fsal = a[-1] == b[:-1] and b[-1] == 0
    return c[:-1] if fsal else c


# Stages evaluated on a fixed grid (no error estimate, so no first-same-as-last stage).
STAGE_C = {name: fixed_step_nodes(name) for name in TABLEAUX}


@pytest.mark.parametrize("solver", SOLVERS[1:], ids=lambda s: type(s).__name__)
def test_stage_times_stay_positive_when_the_step_ends_far_below_rounding(solver):
    # t + c (s - t) rounds to exactly 0 for c = 1 and s = 1e-17; stages are measured from s.
    c = torch.tensor([0.25, -0.5], dtype=torch.float64)
    rec = RecordingRegressor(constant_regressor(c))
    y = torch.randn(3, 2, dtype=torch.float64)
    sol = ind.solve(ind.InDIField(rec), solver, y, ind.FixedSteps(ind.TimeGrid([1.0, 1e-17])))
    seen = [float(t[0]) for t in rec.times]
    assert seen == [1e-17 + (1.0 - c_i) * (1.0 - 1e-17) for c_i in STAGE_C[type(solver).__name__]]
    assert min(seen) > 0 and torch.isfinite(sol.x).all()
    if isinstance(solver, ind.BogackiShampine):
        # No stage near s, so no rounding amplified by h / t_i (see solvers.py): exact.
        torch.testing.assert_close(sol.x, c + 1e-17 * (y - c), rtol=0, atol=1e-15)
