"""Property-based tests (hypothesis) across grids, solvers and the forward process."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.oracles import GaussianMixture, LinearDegradation, PosteriorMean
from problems import GaussianProblem, constant_regressor

DT = torch.float64

SOLVERS = [ind.Euler(), ind.Heun(), ind.BogackiShampine(), ind.DormandPrince()]
solvers = st.sampled_from(SOLVERS)


@st.composite
def grids(draw, end_at_zero=None):
    inner = draw(
        st.lists(st.floats(0.01, 0.99, allow_nan=False), min_size=0, max_size=12, unique=True)
    )
    if end_at_zero is None:
        end_at_zero = draw(st.booleans())
    ts = sorted({round(v, 6) for v in inner}, reverse=True)
    ts = [1.0, *ts] + ([0.0] if end_at_zero or not ts else [])
    return ind.TimeGrid(ts)


@settings(max_examples=60, deadline=None)
@given(grid=grids(), solver=solvers, seed=st.integers(0, 2**16))
def test_constant_regressor_is_integrated_exactly(grid, solver, seed):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(3, generator=g, dtype=torch.float64)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64)
    sol = ind.solve(ind.InDIField(constant_regressor(c)), solver, y, ind.FixedSteps(grid))
    t = grid.t_end
    torch.testing.assert_close(sol.x, c + t * (y - c), rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(grid=grids(), solver=solvers, seed=st.integers(0, 2**16), batch=st.integers(2, 6))
def test_batch_independence_on_fixed_grids(grid, solver, seed, batch):
    field = GaussianProblem.default().field()
    y = torch.randn(batch, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    full = ind.solve(field, solver, y, ind.FixedSteps(grid)).x
    for i in (0, batch - 1):
        alone = ind.solve(field, solver, y[i : i + 1], ind.FixedSteps(grid)).x
        torch.testing.assert_close(full[i : i + 1], alone, rtol=0, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(grid=grids(), solver=solvers, dtype=st.sampled_from([torch.float32, torch.float64]))
def test_shapes_and_dtypes_kept_and_zero_never_evaluated(grid, solver, dtype):
    seen = []

    def reg(x, t):
        seen.append(t)
        return 0.3 * x

    y = torch.randn(2, 3, 4, dtype=dtype)
    sol = ind.solve(ind.InDIField(reg), solver, y, ind.FixedSteps(grid), save_trajectory=True)
    assert sol.x.shape == y.shape and sol.x.dtype == dtype
    assert sol.xs.shape == (len(grid), *y.shape)
    times = torch.cat(seen)
    assert bool((times > 0).all()) and bool((times <= 1).all())


@settings(max_examples=60, deadline=None)
@given(
    ts=st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=0, max_size=8),
)
def test_grid_validation_accepts_exactly_the_valid_grids(ts):
    valid = (
        len(ts) >= 2
        and all(0.0 <= v <= 1.0 for v in ts)
        and all(b < a for a, b in itertools.pairwise(ts))
    )
    try:
        ind.TimeGrid(ts)
    except ValueError:
        assert not valid
    else:
        assert valid


@settings(max_examples=50, deadline=None)
@given(
    t=st.floats(0.05, 1.0),
    frac=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**16),
)
def test_proposition_4_1_pointwise(t, frac, seed):
    # x_s = (s/t) x_t + (1 - s/t) x for every pair, before any conditioning.
    s = frac * t
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    interp = ind.Interpolant()
    x_t = interp.sample(x, y, t).x_t
    x_s = interp.sample(x, y, s).x_t
    torch.testing.assert_close(x_s, (s / t) * x_t + (1 - s / t) * x, rtol=0, atol=1e-12)


def _prop_4_1_problem() -> tuple[PosteriorMean, torch.Tensor, float]:
    """Four Gaussian modes, unequal weights and widths, a general 2x2 ``H``, ``sigma = 0.8``."""
    means = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]], dtype=DT)
    stds = torch.tensor([0.3, 0.2, 0.4, 0.25], dtype=DT)
    weights = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=DT)
    h = torch.tensor([[0.9, 0.3], [-0.2, 0.5]], dtype=DT)
    sigma = 0.8
    oracle = PosteriorMean(GaussianMixture(means, stds, weights), LinearDegradation(h, sigma))
    return oracle, h, sigma


@pytest.mark.parametrize(("t", "ratio"), [(1.0, 0.5), (0.6, 0.0), (0.6, 0.9), (0.3, 0.3)])
def test_proposition_4_1_conditional_mean_by_monte_carlo(t, ratio):
    """``E[x_s | x_t] = (s/t) x_t + (1 - s/t) E[x | x_t]``, ``s = ratio * t``.

    Left side by Monte Carlo over the forward process, given ``x_t``: prior draws ``x_i``
    weighted by the likelihood of ``x_t``, ``N(x_t; A_t x_i, (t sigma)^2 I)`` with
    ``A_t = (1 - t) I + t H`` (self-normalised importance sampling); the degraded ``y_i`` that
    is consistent with ``(x_i, x_t)`` (``t sigma n_i = x_t - A_t x_i``); and ``x_s`` from
    ``Interpolant.sample(x_i, y_i, s)``. Right side from the exact oracle. The tolerance is
    5 delta-method standard errors, ``sqrt(sum_i w_i^2 (x_s,i - est)^2)``, per coordinate.
    """
    oracle, h, sigma = _prop_4_1_problem()
    s = ratio * t
    g = torch.Generator().manual_seed(0)
    interpolant = ind.Interpolant()
    x0, y0 = oracle.sample_pairs(4, generator=g)
    x_t = interpolant.sample(x0, y0, t).x_t  # conditioning points from the law of x_t
    x = oracle.prior.sample(200_000, generator=g)
    a_t = (1 - t) * torch.eye(2, dtype=DT) + t * h
    weights = torch.softmax(-0.5 * torch.cdist(x_t, x @ a_t.mT).square() / (t * sigma) ** 2, -1)
    assert float((1 / weights.square().sum(-1)).min()) > 5_000  # effective sample size
    estimate, standard_error = [], []
    for w, point in zip(weights, x_t, strict=True):
        y = (point - (1 - t) * x) / t  # H x + sigma n, given x and x_t
        x_s = interpolant.sample(x, y, s).x_t
        mean = w @ x_s
        estimate.append(mean)
        standard_error.append((w.square()[:, None] * (x_s - mean).square()).sum(0).sqrt())
    estimate, standard_error = torch.stack(estimate), torch.stack(standard_error)
    tolerance = 5 * standard_error + 1e-12

    expected = (s / t) * x_t + (1 - s / t) * oracle(x_t, t)
    assert bool(((estimate - expected).abs() <= tolerance).all()), (estimate, expected)
    # The check has power: the prior mean in place of E[x | x_t] is rejected.
    prior_mean = oracle.prior.weights @ oracle.prior.means
    wrong = (s / t) * x_t + (1 - s / t) * prior_mean
    assert bool(((estimate - wrong).abs() > tolerance).any())


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), eps=st.floats(0.0, 1.0))
def test_interpolant_endpoints_with_noise(seed, eps):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    for noise in (ind.ConstantNoise(eps), ind.BrownianNoise(eps)):
        interp = ind.Interpolant(noise)
        torch.testing.assert_close(interp.sample(x, y, 0.0, generator=g).x_t, x)
        at_one = interp.sample(x, y, 1.0, generator=g).x_t
        assert at_one.shape == y.shape
        if eps == 0.0:
            torch.testing.assert_close(at_one, y)
