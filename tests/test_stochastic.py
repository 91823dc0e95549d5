"""Stochastic InDI: Algorithm 1 identity, noise std per schedule, endpoint safety, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind


def _pairs(b: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 2, generator=g, dtype=torch.float64)
    return x, x + torch.randn(b, 2, generator=g, dtype=torch.float64)


def _smooth(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x_t) * (1 - 0.5 * t[:, None])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "grid",
    [ind.TimeGrid.uniform(10), ind.TimeGrid.power(7, 2.0), ind.TimeGrid((1.0, 0.6, 0.3))],
    ids=["uniform", "power", "ends-above-0"],
)
def test_without_noise_it_is_solve_euler_bit_for_bit(dtype, grid) -> None:
    _, y = _pairs(32)
    y = y.to(dtype)
    out = ind.sample_stochastic(_smooth, y, grid, None, save_trajectory=True)
    ref = ind.solve(
        ind.InDIField(_smooth), ind.Euler(), y, ind.FixedSteps(grid), save_trajectory=True
    )
    assert torch.equal(out.x, ref.x) and torch.equal(out.xs, ref.xs)
    assert torch.equal(out.ts, ref.ts) and out.stats == ref.stats


def test_without_noise_it_is_algorithm_1() -> None:
    """The paper's loop written out: the same convex combination, to rounding (ten steps)."""
    _, y = _pairs(32)
    out = ind.sample_stochastic(_smooth, y, ind.TimeGrid.uniform(10), None)
    x = y.clone()
    n = 10
    for i in range(n, 0, -1):
        t, d = i / n, 1 / n
        x = (d / t) * _smooth(x, torch.full((32,), t, dtype=x.dtype)) + (1 - d / t) * x
    torch.testing.assert_close(out.x, x, rtol=1e-14, atol=1e-15)


def test_constant_noise_only_perturbs_the_start() -> None:
    """ConstantNoise adds eps * eta at t = 1 and nothing afterwards."""
    _, y = _pairs(16)
    grid = ind.TimeGrid.power(7, 2.0)
    out = ind.sample_stochastic(
        _smooth, y, grid, ind.ConstantNoise(0.4), generator=torch.Generator().manual_seed(1)
    )
    eta = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    ref = ind.solve(ind.InDIField(_smooth), ind.Euler(), y + 0.4 * eta, ind.FixedSteps(grid))
    assert torch.equal(out.x, ref.x)


@pytest.mark.parametrize(
    "noise", [ind.ConstantNoise(0.5), ind.BrownianNoise(0.7), ind.BrownianNoise(0.2)]
)
def test_noise_std_follows_the_schedule_with_the_true_x(noise) -> None:
    """With F returning the true x, x_t - (1 - t) x - t y has std t * eps_t at every grid time."""
    b = 40_000
    x, y = _pairs(b)
    grid = ind.TimeGrid.power(8, 1.5)
    sol = ind.sample_stochastic(
        lambda x_t, t: x, y, grid, noise, torch.Generator().manual_seed(0), save_trajectory=True
    )
    for t, x_t in zip(grid.ts, sol.xs, strict=True):
        residual = x_t - (1 - t) * x - t * y
        expected = float(noise.std(t))
        assert abs(float(residual.mean())) < 0.02 * max(expected, 1e-3)
        # The std estimate of 2 * b Gaussian draws has relative error ~ 1 / sqrt(4 b) = 0.25%.
        assert float(residual.std()) == pytest.approx(expected, rel=0.015, abs=1e-12)
    torch.testing.assert_close(sol.x, x, rtol=0, atol=0)  # the step onto 0 adds nothing


def test_brownian_increments_are_the_bridge_steps() -> None:
    """Correlation of the noise at s and t is the Brownian one: cov = eps0^2 s (for s < t)."""
    b = 40_000
    x, y = _pairs(b)
    noise = ind.BrownianNoise(0.8)
    grid = ind.TimeGrid.uniform(4)
    g = torch.Generator().manual_seed(2)
    sol = ind.sample_stochastic(lambda x_t, t: x, y, grid, noise, g, save_trajectory=True)
    r = [xt - (1 - t) * x - t * y for t, xt in zip(grid.ts, sol.xs, strict=True)]
    # x_s = (s/t) x_t + independent bridge noise, so Cov(r_s, r_t) = (s/t) Var r_t = eps0^2 s.
    cov = float((r[1] * r[2]).mean())  # t = 0.75, s = 0.5
    assert cov == pytest.approx(0.64 * 0.5, rel=0.03)


def test_step_noise_std_matches_its_formula() -> None:
    noise = ind.BrownianNoise(0.3)
    for t, s in [(1.0, 0.5), (0.4, 0.1), (0.2, 0.19)]:
        direct = s * math.sqrt(noise.eps_at(s) ** 2 - noise.eps_at(t) ** 2)
        assert ind.step_noise_std(noise, t, s) == pytest.approx(direct, rel=1e-12)
    assert ind.step_noise_std(noise, 0.3, 0.0) == 0.0
    assert ind.step_noise_std(ind.ConstantNoise(1.0), 0.5, 0.2) == 0.0
    assert ind.step_noise_std(None, 0.5, 0.2) == 0.0
    assert ind.start_noise_std(ind.BrownianNoise(0.3)) == pytest.approx(0.3)
    assert ind.start_noise_std(ind.ConstantNoise(0.2)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"needs 0 <= s < t <= 1"):
        ind.step_noise_std(noise, 0.2, 0.3)


@given(
    n=st.integers(1, 12),
    rho=st.floats(0.5, 3.0),
    brownian=st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_regressor_never_sees_t_outside_half_open_unit(n: int, rho: float, brownian: bool) -> None:
    seen: list[torch.Tensor] = []

    def recording(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t.clone())
        return 0.5 * x_t

    noise = ind.BrownianNoise(0.3) if brownian else ind.ConstantNoise(0.3)
    sol = ind.sample_stochastic(recording, torch.ones(3, 2), ind.TimeGrid.power(n, rho), noise)
    ts = torch.cat(seen)
    assert bool(((ts > 0) & (ts <= 1)).all())
    assert len(seen) == n == sol.stats.nfe == sol.stats.steps == sol.stats.accepted
    assert sol.stats.rejected == 0 and sol.stats.rows == 3 * n


def test_generator_reproducibility_and_trajectory_shape() -> None:
    _, y = _pairs(8)
    grid, noise = ind.TimeGrid.uniform(5), ind.BrownianNoise(0.5)

    def run(seed: int) -> ind.Solution:
        g = torch.Generator().manual_seed(seed)
        return ind.sample_stochastic(_smooth, y, grid, noise, g, save_trajectory=True)

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert a.xs is not None and a.xs.shape == (6, 8, 2)
    torch.testing.assert_close(a.xs[-1], a.x, rtol=0, atol=0)
    torch.testing.assert_close(a.ts, torch.tensor(grid.ts, dtype=torch.float64))
    assert run(0).xs is not None and ind.sample_stochastic(_smooth, y, grid, noise).xs is None


def test_grid_ending_above_zero_returns_the_state_there() -> None:
    x, y = _pairs(20_000)
    grid = ind.TimeGrid((1.0, 0.6, 0.3))
    sol = ind.sample_stochastic(lambda x_t, t: x, y, grid, ind.BrownianNoise(0.5))
    residual = sol.x - 0.7 * x - 0.3 * y
    assert float(residual.std()) == pytest.approx(0.5 * math.sqrt(0.3), rel=0.03)


def test_state_keeps_dtype_and_gradients_flow() -> None:
    y = torch.ones(4, 2, dtype=torch.float32, requires_grad=True)
    sol = ind.sample_stochastic(_smooth, y, ind.TimeGrid.uniform(3), ind.BrownianNoise(0.1))
    assert sol.x.dtype == torch.float32
    sol.x.sum().backward()
    assert y.grad is not None and bool(y.grad.abs().sum() > 0)


def test_accepts_an_indi_field() -> None:
    _, y = _pairs(4)
    grid = ind.TimeGrid.uniform(3)
    a = ind.sample_stochastic(ind.InDIField(_smooth), y, grid, None)
    b = ind.sample_stochastic(_smooth, y, grid, None)
    assert torch.equal(a.x, b.x)


def test_bad_arguments_are_rejected() -> None:
    y = torch.ones(4, 2)
    grid = ind.TimeGrid.uniform(3)
    with pytest.raises(ValueError, match=r"grid starts at 0.5"):
        ind.sample_stochastic(_smooth, y, ind.TimeGrid((0.5, 0.0)), None)
    with pytest.raises(TypeError, match=r"grid must be an indiflow.TimeGrid"):
        ind.sample_stochastic(_smooth, y, [1.0, 0.0], None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"noise must be None, indiflow.ConstantNoise"):
        ind.sample_stochastic(_smooth, y, grid, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"field must be an indiflow.InDIField or a regressor"):
        ind.sample_stochastic("net", y, grid, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator"):
        ind.sample_stochastic(_smooth, y, grid, None, generator=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"y must have at least 2 dimension"):
        ind.sample_stochastic(_smooth, torch.ones(4), grid, None)
    with pytest.raises(ValueError, match=r"y holds NaN or infinite values"):
        ind.sample_stochastic(_smooth, torch.full((4, 2), math.nan), grid, None)
    with pytest.raises(TypeError, match=r"save_trajectory must be a bool"):
        ind.sample_stochastic(_smooth, y, grid, None, save_trajectory=1)  # type: ignore[arg-type]


def test_non_finite_regressor_output_names_the_time() -> None:
    def bad(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.where(t[:, None] < 0.6, torch.full_like(x_t, math.nan), x_t)

    with pytest.raises(RuntimeError, match=r"non-finite values .* at t = 0.5 "):
        ind.sample_stochastic(bad, torch.ones(2, 2), ind.TimeGrid.uniform(4), None)
