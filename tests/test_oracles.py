"""Exact oracles (indiflow.oracles): mixture priors, degradations, posterior means, trajectories.

The posterior mean is checked against self-normalised importance sampling with the exact
Gaussian likelihood, against Tweedie's formula with an autograd score of the exact marginal,
and against ``A_t^{-1} x_t`` where ``x_t`` is noise-free; the log marginal against SciPy; the
closed-form trajectory against its ODE and a SciPy integration.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.oracles import (
    GaussianMixture,
    LinearDegradation,
    PosteriorMean,
    gaussian_posterior_mean,
    gaussian_trajectory,
)
from indiflow.oracles._spectral import psd_spectrum, spectral_rtol
from indiflow.oracles.posterior import _no_density

DT = torch.float64
SIGMA = 0.6
H_GENERAL = [[0.8, 0.3], [-0.4, 0.6]]


def make_prior(kind: str, dtype: torch.dtype = DT) -> GaussianMixture:
    """Three components in 2D: full covariances, isotropic stds, or Dirac modes."""
    means = torch.tensor([[1.0, 0.5], [-1.0, 1.0], [0.2, -1.2]], dtype=dtype)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=dtype)
    if kind == "full":
        covs = torch.tensor(
            [[[0.3, 0.1], [0.1, 0.2]], [[0.1, -0.05], [-0.05, 0.4]], [[0.25, 0.0], [0.0, 0.05]]],
            dtype=dtype,
        )
    elif kind == "iso":
        covs = torch.tensor([0.3, 0.5, 0.2], dtype=dtype)
    else:
        covs = 0.0
    return GaussianMixture(means, covs, weights)


def make_h(kind: str) -> torch.Tensor | None:
    return {"identity": None, "erase": torch.diag(torch.tensor([1.0, 0.0], dtype=DT))}.get(
        kind, torch.tensor(H_GENERAL, dtype=DT)
    )


NOISES = {"none": None, "constant": ind.ConstantNoise(0.3), "brownian": ind.BrownianNoise(0.3)}


def a_matrix(h: torch.Tensor | None, t: float) -> torch.Tensor:
    eye = torch.eye(2, dtype=DT)
    return eye if h is None else (1 - t) * eye + t * h


def r_squared(sigma: float, noise: object, t: float) -> float:
    eps_t = 0.0 if noise is None else float(noise.eps_at(t))
    return t * t * (sigma * sigma + eps_t * eps_t)


# --------------------------------------------------------------------------------------------
# Posterior mean against Monte Carlo


@pytest.mark.parametrize("prior_kind", ["full", "iso", "dirac"])
@pytest.mark.parametrize("h_kind", ["identity", "erase", "general"])
@pytest.mark.parametrize("noise_kind", list(NOISES))
def test_posterior_mean_matches_importance_sampling(prior_kind, h_kind, noise_kind):
    """SNIS with prior proposals and the exact likelihood ``N(x_t; A_t x, r_t^2 I)``.

    The estimate's standard error is the delta-method one, ``sqrt(sum_i w_i^2 (x_i - est)^2)``;
    a 5-SE band fails with probability ~1e-6 per coordinate if the oracle is right. The 1e-12
    floor covers the rounding of the 40 000-term weighted sum where one mode takes all weight.
    """
    g = torch.Generator().manual_seed(1)
    prior, h, noise = make_prior(prior_kind), make_h(h_kind), NOISES[noise_kind]
    pm = PosteriorMean(prior, LinearDegradation(h, SIGMA), noise)
    for t in (0.4, 1.0):
        a, r2 = a_matrix(h, t), r_squared(SIGMA, noise, t)
        # Query points drawn from the actual law of x_t, so that the proposal covers them.
        x0 = prior.sample(3, generator=g)
        x_t = x0 @ a.mT + math.sqrt(r2) * torch.randn(3, 2, generator=g, dtype=DT)
        xs = prior.sample(40_000, generator=g)
        log_w = -0.5 * torch.cdist(x_t, xs @ a.mT).square() / r2
        w = torch.softmax(log_w, dim=-1)
        est = w @ xs
        se = ((w.square()[:, :, None] * (xs - est[:, None]).square()).sum(1)).sqrt()
        assert float((1 / w.square().sum(-1)).min()) > 200  # enough effective samples
        err = (pm(x_t, t) - est).abs()
        assert bool((err <= 5 * se + 1e-12).all()), (t, err, se)


@pytest.mark.parametrize("h", [H_GENERAL, [[2.0, 0.0], [0.5, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
def test_noise_free_posterior_mean_inverts_a_t(h):
    """``sigma = 0``, no noise, positive-definite ``C_k``: ``x = A_t^{-1} x_t`` exactly."""
    h = torch.tensor(h, dtype=DT)
    pm = PosteriorMean(make_prior("full"), LinearDegradation(h, 0.0))
    x = make_prior("full").sample(20, generator=torch.Generator().manual_seed(0))
    for t in (0.3, 0.7, 1.0):
        torch.testing.assert_close(pm(x @ a_matrix(h, t).mT, t), x, rtol=0, atol=1e-10)


def test_cholesky_path_agrees_with_eigen_path_near_identity():
    """``H = I`` uses C_k's eigenbasis; ``H = I + 1e-13`` the batched Cholesky path."""
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(3), dtype=DT)
    t = torch.linspace(0.01, 1.0, 16, dtype=DT)
    for kind, noise in itertools.product(["full", "iso", "dirac"], NOISES.values()):
        exact = PosteriorMean(make_prior(kind), LinearDegradation(None, SIGMA), noise)
        near = torch.diag(torch.tensor([1.0, 1.0 + 1e-13], dtype=DT))
        other = PosteriorMean(make_prior(kind), LinearDegradation(near, SIGMA), noise)
        torch.testing.assert_close(other(x, t), exact(x, t), rtol=0, atol=1e-9)
        torch.testing.assert_close(
            other.log_marginal(x, t), exact.log_marginal(x, t), rtol=0, atol=1e-9
        )


def test_per_sample_times_match_scalar_times():
    pm = PosteriorMean(make_prior("full"), LinearDegradation(make_h("general"), SIGMA))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=DT)
    t = torch.tensor([0.1, 0.3, 0.5, 0.9, 1.0], dtype=DT)
    rows = torch.cat([pm(x[i : i + 1], float(t[i])) for i in range(5)])
    torch.testing.assert_close(pm(x, t), rows, rtol=0, atol=1e-14)
    torch.testing.assert_close(pm.weights(x, t).sum(-1), torch.ones(5, dtype=DT))


# --------------------------------------------------------------------------------------------
# Exact densities: Tweedie and SciPy


@pytest.mark.parametrize("prior_kind", ["full", "iso", "dirac"])
@pytest.mark.parametrize("noise_kind", list(NOISES))
def test_tweedie_with_autograd_score(prior_kind, noise_kind):
    """``H = I``: ``E[x | x_t] = x_t + r_t^2 grad log p_t(x_t)``."""
    noise = NOISES[noise_kind]
    pm = PosteriorMean(make_prior(prior_kind), LinearDegradation(None, SIGMA), noise)
    x = 1.5 * torch.randn(8, 2, generator=torch.Generator().manual_seed(5), dtype=DT)
    for t in (0.05, 0.5, 1.0):
        xr = x.clone().requires_grad_(True)
        (score,) = torch.autograd.grad(pm.log_marginal(xr, t).sum(), xr)
        tweedie = x + r_squared(SIGMA, noise, t) * score
        torch.testing.assert_close(pm(x, t), tweedie, rtol=0, atol=1e-10)


@pytest.mark.parametrize("prior_kind", ["full", "iso", "dirac"])
@pytest.mark.parametrize("h_kind", ["identity", "erase", "general"])
def test_log_marginal_matches_scipy(prior_kind, h_kind):
    prior, h, noise = make_prior(prior_kind), make_h(h_kind), NOISES["brownian"]
    pm = PosteriorMean(prior, LinearDegradation(h, SIGMA), noise)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(6), dtype=DT)
    for t in (0.2, 1.0):
        a, r2 = a_matrix(h, t).numpy(), r_squared(SIGMA, noise, t)
        logs = [
            math.log(float(prior.weights[k]))
            + scipy.stats.multivariate_normal(
                a @ prior.means[k].numpy(), a @ prior.covs[k].numpy() @ a.T + r2 * np.eye(2)
            ).logpdf(x.numpy())
            for k in range(3)
        ]
        expected = scipy.special.logsumexp(np.stack(logs), axis=0)
        np.testing.assert_allclose(pm.log_marginal(x, t).numpy(), expected, rtol=0, atol=1e-10)


def test_mixture_log_prob_matches_scipy():
    prior = make_prior("full")
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(7), dtype=DT)
    logs = [
        math.log(float(prior.weights[k]))
        + scipy.stats.multivariate_normal(prior.means[k], prior.covs[k]).logpdf(x.numpy())
        for k in range(3)
    ]
    expected = scipy.special.logsumexp(np.stack(logs), axis=0)
    np.testing.assert_allclose(prior.log_prob(x).numpy(), expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Closed-form Gaussian trajectory

MEAN = torch.tensor([0.5, -0.3], dtype=DT)
COVS = {
    "full": torch.tensor([[0.08, 0.03], [0.03, 0.3]], dtype=DT),
    "rank-1": torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=DT),
}


@pytest.mark.parametrize("cov_kind", list(COVS))
def test_trajectory_starts_at_y_and_solves_the_ode(cov_kind):
    cov, sigma = COVS[cov_kind], 1.2
    y = MEAN + torch.randn(4, 2, generator=torch.Generator().manual_seed(8), dtype=DT)
    F = gaussian_posterior_mean(MEAN, cov, sigma)
    torch.testing.assert_close(gaussian_trajectory(y, 1.0, MEAN, cov, sigma), y, rtol=0, atol=1e-14)
    h = 1e-5
    for t in (0.1, 0.5, 0.9):
        x = gaussian_trajectory(y, t, MEAN, cov, sigma)
        slope = (
            gaussian_trajectory(y, t + h, MEAN, cov, sigma)
            - gaussian_trajectory(y, t - h, MEAN, cov, sigma)
        ) / (2 * h)
        torch.testing.assert_close(slope, (x - F(x, t)) / t, rtol=0, atol=1e-8)
    # Limit at t = 0: F(x(t), t) = x(t) - t x'(t) = x(0) + O(t^2).
    x0 = gaussian_trajectory(y, 0.0, MEAN, cov, sigma)
    t_small = 1e-6
    f_small = F(gaussian_trajectory(y, t_small, MEAN, cov, sigma), t_small)
    torch.testing.assert_close(f_small, x0, rtol=0, atol=1e-9)


def test_trajectory_matches_numerical_integration():
    cov, sigma = COVS["full"], 1.0
    y = MEAN + torch.randn(3, 2, generator=torch.Generator().manual_seed(9), dtype=DT)
    F = gaussian_posterior_mean(MEAN, cov, sigma)

    def rhs(t: float, x: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(x).reshape(3, 2)
        return ((xt - F(xt, t)) / t).reshape(-1).numpy()

    sol = scipy.integrate.solve_ivp(
        rhs, (1.0, 0.05), y.reshape(-1).numpy(), method="DOP853", rtol=1e-12, atol=1e-12
    )
    expected = gaussian_trajectory(y, 0.05, MEAN, cov, sigma).reshape(-1).numpy()
    np.testing.assert_allclose(sol.y[:, -1], expected, rtol=0, atol=1e-9)


def test_trajectory_per_sample_times_and_shapes():
    cov = COVS["full"]
    y = torch.randn(4, 1, 2, generator=torch.Generator().manual_seed(10), dtype=DT)
    t = torch.tensor([0.0, 0.2, 0.7, 1.0], dtype=DT)
    out = gaussian_trajectory(y, t, MEAN, cov, 0.8)
    assert out.shape == y.shape
    for i in range(4):
        row = gaussian_trajectory(y[i : i + 1], float(t[i]), MEAN, cov, 0.8)
        torch.testing.assert_close(out[i : i + 1], row, rtol=0, atol=1e-14)
    out32 = gaussian_trajectory(y.float(), t, MEAN, cov, 0.8)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, out.float(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Covariance forms: (K,) stds and a scalar std become covariances std^2 I


@pytest.mark.parametrize(("k", "d"), [(3, 2), (2, 3), (3, 3), (1, 1)])
def test_k_standard_deviations_become_variances_times_identity(k, d):
    """``covs[k] = std_k^2 I_D`` exactly, for K < D, K > D and K = D (no K / D mix-up)."""
    std = torch.tensor([0.3, 0.5, 0.2], dtype=DT)[:k]
    means = torch.arange(k * d, dtype=DT).reshape(k, d)
    prior = GaussianMixture(means, std)
    expected = torch.stack([torch.diag(torch.full((d,), float(s) ** 2, dtype=DT)) for s in std])
    assert prior.covs.shape == (k, d, d)
    assert torch.equal(prior.covs, expected)
    scalar = GaussianMixture(means, 0.3)
    assert torch.equal(scalar.covs, torch.diag(torch.full((d,), 0.3**2, dtype=DT)).expand(k, d, d))
    assert not bool(prior.degenerate.any())


def test_k_standard_deviations_follow_the_dtype_of_the_means():
    means = torch.zeros(2, 2, dtype=torch.float32)
    prior = GaussianMixture(means, torch.tensor([0.5, 2.0], dtype=DT))
    assert prior.covs.dtype == torch.float32
    assert torch.equal(prior.covs[1], torch.diag(torch.tensor([4.0, 4.0])))


def test_zero_standard_deviations_are_dirac_modes():
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=DT)
    prior = GaussianMixture(means, torch.tensor([0.0, 0.4], dtype=DT))
    assert torch.equal(prior.covs[0], torch.zeros(2, 2, dtype=DT))
    assert prior.degenerate.tolist() == [True, False]
    assert torch.equal(GaussianMixture(means, 0.0).covs, torch.zeros(2, 2, 2, dtype=DT))


def test_k_standard_deviations_give_the_same_law_as_their_covariances():
    """The density against SciPy with variance ``std^2``, and samples / posterior means equal to
    those of the mixture given the explicit covariances."""
    std = torch.tensor([0.3, 0.5, 0.2], dtype=DT)
    iso = make_prior("iso")
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(8), dtype=DT)
    logs = [
        math.log(float(iso.weights[k]))
        + scipy.stats.multivariate_normal(iso.means[k].numpy(), float(std[k]) ** 2).logpdf(x)
        for k in range(3)
    ]
    expected = scipy.special.logsumexp(np.stack(logs), axis=0)
    np.testing.assert_allclose(iso.log_prob(x).numpy(), expected, rtol=0, atol=1e-12)
    covs = std.square()[:, None, None] * torch.eye(2, dtype=DT)
    explicit = GaussianMixture(iso.means, covs, iso.weights)
    draw = [p.sample(50, generator=torch.Generator().manual_seed(9)) for p in (iso, explicit)]
    assert torch.equal(*draw)
    degradation = LinearDegradation(make_h("general"), SIGMA)
    a, b = (PosteriorMean(p, degradation)(x, 0.4) for p in (iso, explicit))
    assert torch.equal(a, b)


# --------------------------------------------------------------------------------------------
# Sampling


@pytest.mark.parametrize("prior_kind", ["full", "iso", "dirac"])
def test_mixture_samples_have_the_mixture_moments(prior_kind):
    """Mean ``sum pi_k mu_k``, covariance ``sum pi_k (C_k + mu_k mu_k^T) - m m^T``, 5-SE bands."""
    prior, n = make_prior(prior_kind), 100_000
    x = prior.sample(n, generator=torch.Generator().manual_seed(11))
    pi, mu = prior.weights, prior.means
    mean = pi @ mu
    second = (pi[:, None, None] * (prior.covs + mu[:, :, None] * mu[:, None, :])).sum(0)
    cov = second - mean[:, None] * mean[None, :]
    d = x - mean
    torch.testing.assert_close(x.mean(0), mean, rtol=0, atol=float(5 * d.std(0).max() / n**0.5))
    prods = d[:, :, None] * d[:, None, :]
    se = prods.std(0) / n**0.5
    assert bool(((prods.mean(0) - cov).abs() <= 5 * se).all())


def test_sampling_is_reproducible_and_keeps_dtype():
    prior = make_prior("full", torch.float32)
    a = prior.sample(10, generator=torch.Generator().manual_seed(12))
    b = prior.sample(10, generator=torch.Generator().manual_seed(12))
    assert a.dtype == torch.float32 and a.shape == (10, 2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    pm = PosteriorMean(prior, LinearDegradation(make_h("general").float(), 0.5))
    x1, y1 = pm.sample_pairs(10, generator=torch.Generator().manual_seed(13))
    x2, y2 = pm.sample_pairs(10, generator=torch.Generator().manual_seed(13))
    torch.testing.assert_close((x1, y1), (x2, y2), rtol=0, atol=0)


def test_degradation_applies_h_plus_noise():
    h = make_h("general")
    x = make_prior("full").sample(50_000, generator=torch.Generator().manual_seed(14))
    torch.testing.assert_close(LinearDegradation(h, 0.0).apply(x), x @ h.mT, rtol=0, atol=0)
    y = LinearDegradation(h, 0.7).apply(x, generator=torch.Generator().manual_seed(15))
    resid = y - x @ h.mT
    se_mean, se_std = 0.7 / 50_000**0.5, 0.7 / (2 * 50_000) ** 0.5
    assert bool((resid.mean(0).abs() <= 5 * se_mean).all())
    assert bool(((resid.std(0) - 0.7).abs() <= 5 * se_std).all())
    images = torch.randn(3, 1, 4, 4, dtype=DT)
    assert LinearDegradation(None, 0.1).apply(images).shape == images.shape
    torch.testing.assert_close(LinearDegradation(None, 0.0).apply(images), images)


def test_dtype_and_device_follow_x_t():
    pm = PosteriorMean(make_prior("full", torch.float32), LinearDegradation(None, SIGMA))
    x = torch.randn(4, 2, 1, generator=torch.Generator().manual_seed(16), dtype=DT)
    out = pm(x, 0.5)
    assert out.dtype == DT and out.shape == x.shape and out.device == x.device
    pm64 = PosteriorMean(
        make_prior("full").to(torch.float32).to(DT), LinearDegradation(None, SIGMA)
    )
    torch.testing.assert_close(out, pm64(x, 0.5), rtol=0, atol=1e-12)
    assert pm(x.float(), 0.5).dtype == torch.float32


def test_cache_filled_under_inference_mode_serves_autograd():
    with torch.inference_mode():
        pm = PosteriorMean(make_prior("full"), LinearDegradation(make_h("general"), SIGMA))
        x = torch.zeros(3, 2, dtype=DT)
        expected = pm(x, 0.5)
    xr = torch.zeros(3, 2, dtype=DT, requires_grad=True)
    out = pm(xr, 0.5)
    torch.autograd.grad(out.sum() + pm.log_marginal(xr, 0.5).sum(), xr)
    torch.testing.assert_close(out.detach(), expected, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# float32 stability


@pytest.mark.parametrize("prior_kind", ["full", "iso", "dirac"])
@pytest.mark.parametrize("h_kind", ["identity", "erase", "general"])
@pytest.mark.parametrize("noise_kind", list(NOISES))
def test_float32_far_inputs_and_small_t(prior_kind, h_kind, noise_kind):
    """No NaN far from the modes (|x| ~ 1e3) at t = 1e-4; float32 agrees with float64."""
    h = make_h(h_kind)
    noise = NOISES[noise_kind]
    pm64 = PosteriorMean(make_prior(prior_kind), LinearDegradation(h, SIGMA), noise)
    pm32 = PosteriorMean(
        make_prior(prior_kind, torch.float32),
        LinearDegradation(None if h is None else h.float(), SIGMA),
        noise,
    )
    x = torch.tensor([[1e3, 3e2], [-7e2, 1e3], [0.9, 0.6], [-3.0, 0.1]], dtype=DT)
    for t in (1e-4, 1e-2, 1.0):
        out32, out64 = pm32(x.float(), t), pm64(x, t)
        assert bool(torch.isfinite(out32).all())
        assert bool(torch.isfinite(pm32.log_marginal(x.float(), t)).all())
        scale = x.abs().amax(-1, keepdim=True).clamp_min(1.0)
        assert bool(((out32.double() - out64).abs() <= 1e-4 * scale).all()), (t, out32, out64)


def test_dirac_modes_far_away_snap_to_the_nearest_mode_in_float32():
    prior = make_prior("dirac", torch.float32)
    pm = PosteriorMean(prior, LinearDegradation(None, 0.5))
    x = prior.means * 1e3
    torch.testing.assert_close(pm(x, 1e-4), prior.means, rtol=0, atol=0)
    torch.testing.assert_close(pm(x, 1.0), prior.means, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Errors


def test_mixture_rejects_bad_inputs():
    means = torch.zeros(2, 2, dtype=DT)
    with pytest.raises(TypeError, match=r"means must be a torch.Tensor"):
        GaussianMixture([[0.0, 0.0]], 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        GaussianMixture(torch.zeros(2, 2, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match=r"shape \(K, D\).*mean\[None\]"):
        GaussianMixture(torch.zeros(2, dtype=DT), 1.0)
    with pytest.raises(ValueError, match="means holds NaN"):
        GaussianMixture(torch.full((2, 2), math.nan, dtype=DT), 1.0)
    with pytest.raises(TypeError, match="covs must be a float std"):
        GaussianMixture(means, "1.0")
    with pytest.raises(TypeError, match="covs must be a float std"):
        GaussianMixture(means, True)
    with pytest.raises(ValueError, match=r"covs \(a scalar std\) must be >= 0"):
        GaussianMixture(means, -0.1)
    with pytest.raises(ValueError, match=r"\(K,\) standard deviations must be >= 0"):
        GaussianMixture(means, torch.tensor([0.1, -0.1], dtype=DT))
    with pytest.raises(ValueError, match=r"covs must be a scalar std.*got shape \(2, 2\)"):
        GaussianMixture(means, torch.ones(2, 2, dtype=DT))
    with pytest.raises(ValueError, match="covs holds NaN"):
        GaussianMixture(means, torch.tensor([0.1, math.inf], dtype=DT))
    asym = torch.tensor([[[1.0, 0.5], [0.0, 1.0]]] * 2, dtype=DT)
    with pytest.raises(ValueError, match=r"covs\[0\] is not symmetric"):
        GaussianMixture(means, asym)
    indefinite = torch.stack([torch.eye(2, dtype=DT), torch.diag(torch.tensor([1.0, -0.1]))])
    with pytest.raises(ValueError, match=r"covs\[1\] is not positive semi-definite.*-0.1"):
        GaussianMixture(means, indefinite.to(DT))
    with pytest.raises(ValueError, match="weights must all be > 0"):
        GaussianMixture(means, 1.0, torch.tensor([1.0, 0.0], dtype=DT))
    with pytest.raises(ValueError, match=r"weights must have shape \(K,\) = \(2,\)"):
        GaussianMixture(means, 1.0, torch.ones(3, dtype=DT))
    with pytest.raises(TypeError, match=r"weights must be a torch.Tensor"):
        GaussianMixture(means, 1.0, [0.5, 0.5])


def test_mixture_methods_reject_bad_inputs():
    prior = make_prior("full")
    with pytest.raises(ValueError, match="n must be >= 1"):
        prior.sample(0)
    with pytest.raises(TypeError, match="n must be an int"):
        prior.sample(2.0)
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator"):
        prior.sample(2, generator=0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, D\) = \(B, 2\)"):
        prior.log_prob(torch.zeros(3, 3, dtype=DT))
    with pytest.raises(ValueError, match=r"log_prob is undefined: component 0 .* no density"):
        make_prior("dirac").log_prob(torch.zeros(3, 2, dtype=DT))


def test_degradation_rejects_bad_inputs():
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        LinearDegradation(None, -1.0)
    with pytest.raises(TypeError, match="sigma must be a real number"):
        LinearDegradation(None, "0.1")
    with pytest.raises(ValueError, match=r"H must be a square \(D, D\) matrix"):
        LinearDegradation(torch.ones(2, 3, dtype=DT), 0.1)
    with pytest.raises(ValueError, match="H must have at least 2 dimension"):
        LinearDegradation(torch.ones(2, dtype=DT), 0.1)
    with pytest.raises(TypeError, match="H must be a floating-point tensor"):
        LinearDegradation(torch.eye(2, dtype=torch.int64), 0.1)
    with pytest.raises(ValueError, match="H holds NaN"):
        LinearDegradation(torch.full((2, 2), math.nan, dtype=DT), 0.1)
    with pytest.raises(ValueError, match=r"x must have shape \(B, D\) = \(B, 2\)"):
        LinearDegradation(torch.eye(2, dtype=DT), 0.1).apply(torch.zeros(4, 3, dtype=DT))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        LinearDegradation(None, 0.1).apply([1.0, 2.0])


def test_posterior_mean_rejects_bad_construction():
    prior, deg = make_prior("full"), LinearDegradation(None, SIGMA)
    with pytest.raises(TypeError, match=r"prior must be an indiflow\.oracles\.GaussianMixture"):
        PosteriorMean("prior", deg)
    with pytest.raises(TypeError, match=r"degradation must be an indiflow.oracles.Linear"):
        PosteriorMean(prior, 0.5)
    with pytest.raises(TypeError, match=r"noise must be None, indiflow.ConstantNoise"):
        PosteriorMean(prior, deg, 0.1)
    with pytest.raises(ValueError, match=r"H has shape \(3, 3\) but the prior lives in D = 2"):
        PosteriorMean(prior, LinearDegradation(torch.eye(3, dtype=DT), 0.1))
    for noise in (None, ind.ConstantNoise(0.0), ind.BrownianNoise(0.0)):
        with pytest.raises(ValueError, match=r"no density for any t: component 0 .* sigma > 0"):
            PosteriorMean(make_prior("dirac"), LinearDegradation(None, 0.0), noise)
    rank1 = torch.tensor([[[1.0, 1.0], [1.0, 1.0]]] * 3, dtype=DT)
    with pytest.raises(ValueError, match=r"no density for any t: component 0 .* rank-deficient"):
        PosteriorMean(GaussianMixture(prior.means, rank1), LinearDegradation(None, 0.0))
    # Noise from either source gives x_t a density: these are fine.
    PosteriorMean(make_prior("dirac"), LinearDegradation(None, 0.0), ind.BrownianNoise(0.1))
    PosteriorMean(make_prior("dirac"), LinearDegradation(None, 0.1))


def test_posterior_mean_rejects_bad_calls():
    pm = PosteriorMean(make_prior("full"), LinearDegradation(make_h("general"), SIGMA))
    x = torch.zeros(3, 2, dtype=DT)
    for t in (0.0, -0.5, 1.5, torch.tensor([0.5, 0.0, 0.5], dtype=DT)):
        with pytest.raises(ValueError, match=r"t must lie in \(0, 1\]"):
            pm(x, t)
    with pytest.raises(ValueError, match="t must be finite"):
        pm(x, math.nan)
    with pytest.raises(ValueError, match=r"t must lie in \(0, 1\]"):
        pm(x, torch.tensor([0.5, math.nan, 0.5], dtype=DT))
    with pytest.raises(TypeError, match="t must be a real number"):
        pm(x, "0.5")
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(B,\) = \(3,\)"):
        pm(x, torch.full((2,), 0.5, dtype=DT))
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, D\) = \(B, 2\)"):
        pm(torch.zeros(3, 3, dtype=DT), 0.5)
    with pytest.raises(ValueError, match="x_t must have at least 2 dimension"):
        pm(torch.zeros(2, dtype=DT), 0.5)
    with pytest.raises(ValueError, match="x_t holds NaN"):
        pm(torch.full((3, 2), math.nan, dtype=DT), 0.5)
    with pytest.raises(ValueError, match="at least one sample"):
        pm(torch.zeros(0, 2, dtype=DT), 0.5)
    with pytest.raises(TypeError, match="n must be an int"):
        pm.sample_pairs(1.5)


@pytest.mark.parametrize(
    ("h", "t"), [([[1.0, 0.0], [0.0, 0.0]], 1.0), ([[1.0, 0.0], [0.0, -1.0]], 0.5)]
)
def test_singular_a_t_without_noise_has_no_density_at_that_t(h, t):
    pm = PosteriorMean(make_prior("full"), LinearDegradation(torch.tensor(h, dtype=DT), 0.0))
    x = torch.zeros(2, 2, dtype=DT)
    pm(x, 0.25)  # A_t is invertible here
    with pytest.raises(ValueError, match=f"no density at t = {t:g}: .*r_t\\^2 = 0.*sigma > 0"):
        pm(x, t)


def test_trajectory_rejects_bad_inputs():
    cov, y = COVS["full"], torch.zeros(2, 2, dtype=DT)
    for t in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
            gaussian_trajectory(y, t, MEAN, cov, 1.0)
    with pytest.raises(ValueError, match=r"mean must have shape \(D,\)"):
        gaussian_trajectory(y, 0.5, MEAN[None], cov, 1.0)
    with pytest.raises(ValueError, match=r"cov must be a \(D, D\) = \(2, 2\)"):
        gaussian_trajectory(y, 0.5, MEAN, torch.ones(3, 3, dtype=DT), 1.0)
    with pytest.raises(TypeError, match=r"cov must be a torch.Tensor"):
        gaussian_trajectory(y, 0.5, MEAN, 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gaussian_trajectory(y, 0.5, MEAN, cov, -1.0)
    with pytest.raises(ValueError, match=r"cov\[0\] is not positive semi-definite"):
        gaussian_trajectory(y, 0.5, MEAN, -cov, 1.0)
    with pytest.raises(ValueError, match="cov is singular and sigma = 0"):
        gaussian_trajectory(y, 0.5, MEAN, COVS["rank-1"], 0.0)
    with pytest.raises(ValueError, match=r"y must have shape \(B, D\) = \(B, 2\)"):
        gaussian_trajectory(torch.zeros(2, 3, dtype=DT), 0.5, MEAN, cov, 1.0)


# --------------------------------------------------------------------------------------------
# Properties


@st.composite
def problems(draw):
    """A random mixture (full covariances), degradation, noise schedule, batch and times."""
    k, d = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    means = 2 * torch.randn(k, d, generator=g, dtype=DT)
    factor = torch.randn(k, d, d, generator=g, dtype=DT) * draw(st.sampled_from([0.0, 0.3, 1.0]))
    covs = factor @ factor.mT
    weights = torch.rand(k, generator=g, dtype=DT) + 0.05
    h = None if draw(st.booleans()) else torch.randn(d, d, generator=g, dtype=DT)
    sigma = draw(st.floats(0.1, 2.0))
    noise = draw(st.sampled_from([None, ind.ConstantNoise(0.2), ind.BrownianNoise(0.2)]))
    x = 3 * torch.randn(5, d, generator=g, dtype=DT)
    t = torch.rand(5, generator=g, dtype=DT) * 0.99 + 0.01
    return means, covs, weights, h, sigma, noise, x, t


@settings(max_examples=40, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_posterior_mean_is_invariant_to_component_order(problem, rnd):
    means, covs, weights, h, sigma, noise, x, t = problem
    perm = list(range(means.shape[0]))
    rnd.shuffle(perm)
    deg = LinearDegradation(h, sigma)
    a = PosteriorMean(GaussianMixture(means, covs, weights), deg, noise)
    b = PosteriorMean(GaussianMixture(means[perm], covs[perm], weights[perm]), deg, noise)
    torch.testing.assert_close(a(x, t), b(x, t), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a.weights(x, t)[:, perm], b.weights(x, t), rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_dirac_posterior_mean_stays_in_the_box_of_the_modes(problem):
    """With Dirac modes ``E[x | x_t]`` is a convex combination of the modes."""
    means, _, weights, h, sigma, noise, x, t = problem
    pm = PosteriorMean(GaussianMixture(means, 0.0, weights), LinearDegradation(h, sigma), noise)
    out = pm(x, t)
    torch.testing.assert_close(out, pm.weights(x, t) @ means, rtol=0, atol=1e-12)
    assert bool((out >= means.amin(0) - 1e-12).all() and (out <= means.amax(0) + 1e-12).all())


@settings(max_examples=40, deadline=None)
@given(problems(), st.floats(-3.0, 3.0), st.floats(0.25, 4.0))
def test_posterior_mean_is_affine_equivariant(problem, shift, scale):
    """Moving the prior by ``c`` and ``x_t`` by ``A_t c`` moves ``E[x | x_t]`` by ``c``; scaling
    the prior, ``sigma``, the noise and ``x_t`` by ``a`` scales it by ``a``."""
    means, covs, weights, h, sigma, noise, x, t = problem
    d = means.shape[1]
    deg = LinearDegradation(h, sigma)
    base = PosteriorMean(GaussianMixture(means, covs, weights), deg, noise)(x, t)
    c = torch.full((d,), shift, dtype=DT)
    a_t = (
        torch.eye(d, dtype=DT)
        if h is None
        else (1 - t)[:, None, None] * torch.eye(d) + t[:, None, None] * h
    )
    moved = PosteriorMean(GaussianMixture(means + c, covs, weights), deg, noise)
    torch.testing.assert_close(moved(x + a_t @ c, t), base + c, rtol=1e-7, atol=1e-7)
    scaled_noise = None if noise is None else type(noise)(scale * next(iter(vars(noise).values())))
    scaled = PosteriorMean(
        GaussianMixture(scale * means, scale**2 * covs, weights),
        LinearDegradation(h, scale * sigma),
        scaled_noise,
    )
    torch.testing.assert_close(scaled(scale * x, t), scale * base, rtol=1e-7, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(problems())
def test_posterior_mean_is_batch_independent(problem):
    means, covs, weights, h, sigma, noise, x, t = problem
    pm = PosteriorMean(GaussianMixture(means, covs, weights), LinearDegradation(h, sigma), noise)
    rows = torch.cat([pm(x[i : i + 1], t[i : i + 1]) for i in range(x.shape[0])])
    torch.testing.assert_close(pm(x, t), rows, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Tolerances of the covariance checks


def test_spectral_tolerance_is_100_dim_eps_of_the_dtype():
    assert spectral_rtol(torch.float32, 3) == 300.0 * torch.finfo(torch.float32).eps
    assert spectral_rtol(torch.float64, 2) == 200.0 * torch.finfo(torch.float64).eps


def test_symmetry_check_is_relative_to_the_largest_entry():
    # max |C| = 100: an asymmetry of 10 rtol is rounding (< rtol * 100), one of 1000 rtol is not;
    # only component 1 is asymmetric, and the message names it.
    rtol = spectral_rtol(DT, 2)
    near = torch.tensor([[100.0, 1.0], [1.0 + 10 * rtol, 50.0]], dtype=DT)
    far = torch.tensor([[100.0, 1.0], [1.0 + 1000 * rtol, 50.0]], dtype=DT)
    spectrum = psd_spectrum("covs", torch.stack([near, near]))
    assert not bool(spectrum.degenerate.any())
    with pytest.raises(ValueError) as info:
        psd_spectrum("covs", torch.stack([near, far]))
    asym = float(far[1, 0] - far[0, 1])
    assert str(info.value) == (
        f"covs[1] is not symmetric: max |C - C^T| = {asym:.3g} for max |C| = 100; "
        "pass (C + C.mT) / 2 if the asymmetry is rounding"
    )


def test_eigenvalue_checks_are_relative_to_the_largest_entry():
    # max |C| = 100: an eigenvalue of -10 rtol is rounding (accepted, singular), one of +10 rtol
    # is still singular to working precision; -0.1 is indefinite, with this exact message.
    rtol = spectral_rtol(DT, 2)
    rounding = torch.diag(torch.tensor([100.0, -10 * rtol], dtype=DT))
    tiny = torch.diag(torch.tensor([100.0, 10 * rtol], dtype=DT))
    regular = torch.diag(torch.tensor([100.0, 1.0], dtype=DT))
    spectrum = psd_spectrum("covs", torch.stack([rounding, tiny, regular]))
    assert spectrum.degenerate.tolist() == [True, True, False]
    assert spectrum.eigvals[0].tolist() == [0.0, 100.0]
    indefinite = torch.diag(torch.tensor([1.0, -0.1], dtype=DT))
    with pytest.raises(ValueError) as info:
        psd_spectrum("covs", torch.stack([regular, indefinite]))
    assert str(info.value) == (
        "covs[1] is not positive semi-definite: its smallest eigenvalue is -0.1 < 0; a "
        "covariance must be symmetric with eigenvalues >= 0 (build it as L @ L.mT, or pass "
        "standard deviations instead)"
    )


# --------------------------------------------------------------------------------------------
# LinearDegradation, exactly


def test_degradation_matrix_in_the_requested_dtype_and_device():
    deg = LinearDegradation(None, 1)
    assert type(deg.sigma) is float and deg.sigma == 1.0
    eye = deg.matrix(3, DT, torch.device("cpu"))
    assert eye.dtype == DT and torch.equal(eye, torch.eye(3, dtype=DT))
    assert deg.matrix(3, DT, torch.device("meta")).device.type == "meta"
    h = torch.tensor(H_GENERAL, dtype=DT)
    general = LinearDegradation(h, 0.1)
    assert general.matrix(2, torch.float32, torch.device("cpu")).dtype == torch.float32
    assert general.matrix(2, DT, torch.device("meta")).device.type == "meta"
    with pytest.raises(ValueError) as info:
        general.matrix(3, DT, torch.device("cpu"))
    assert str(info.value) == "H is (2, 2) but the states have D = 3"


def test_degradation_apply_is_h_x_plus_sigma_times_the_next_normal_draw():
    x = torch.tensor([[-0.0, 1.0, 2.0], [3.0, -4.0, 0.5]], dtype=DT)
    # The identity copies x exactly (the sign of -0.0 included), for (B, D) states too.
    same = LinearDegradation(None, 0.0).apply(x)
    assert torch.equal(same, x) and bool(torch.signbit(same[0, 0]))
    noisy = LinearDegradation(None, 0.7).apply(x, torch.Generator().manual_seed(3))
    draw = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=DT)
    assert torch.equal(noisy, x + 0.7 * draw)
    # H in float64 acts on float32 states in float32.
    h = torch.tensor([[0.8, 0.3, 0.0], [-0.4, 0.6, 0.0], [0.0, 0.0, 1.0]], dtype=DT)
    x32 = x.float()
    assert torch.equal(LinearDegradation(h, 0.0).apply(x32), x32 @ h.float().mT)
    # sigma = 0 draws nothing from the generator, and a bad generator is refused anyway.
    g = torch.Generator().manual_seed(5)
    LinearDegradation(h, 0.0).apply(x, g)
    assert torch.equal(
        torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(5))
    )
    for sigma in (0.0, 0.5):
        with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
            LinearDegradation(None, sigma).apply(x, generator=0)
    assert LinearDegradation(None, 0.5).apply(x.to("meta")).device.type == "meta"


# --------------------------------------------------------------------------------------------
# GaussianMixture construction, exactly


def test_mixture_construction_messages_and_uniform_weights():
    means = torch.zeros(3, 2, dtype=DT)
    uniform = GaussianMixture(means, 1.0)
    assert uniform.weights.dtype == DT and uniform.weights.tolist() == [1 / 3] * 3
    cases = [
        (
            TypeError,
            "x",
            None,
            "covs must be a float std, a (K,) tensor of stds or a (K, D, D) tensor of "
            "covariances, got str",
        ),
        (
            TypeError,
            torch.ones(3, dtype=torch.int64),
            None,
            "covs must be a floating-point tensor, got dtype torch.int64",
        ),
        (
            ValueError,
            1.0,
            torch.tensor([1.0, math.nan, 1.0], dtype=DT),
            "weights holds NaN or infinite values; clean or clamp it before solving",
        ),
    ]
    for exc, covs, weights, message in cases:
        with pytest.raises(exc) as info:
            GaussianMixture(means, covs, weights)
        assert str(info.value) == message


def test_mixture_weights_are_normalised_in_the_dtype_of_the_means():
    means = torch.zeros(3, 2, dtype=DT)
    prior = GaussianMixture(means, 1.0, torch.tensor([1.0, 2.0, 1.0]))
    assert prior.weights.dtype == DT and prior.weights.tolist() == [0.25, 0.5, 0.25]
    with pytest.raises(ValueError) as info:
        GaussianMixture(means, 1.0, torch.tensor([1.0, 0.0, 1.0], dtype=DT))
    assert str(info.value) == (
        "weights must all be > 0, got min 0; drop components you want to give weight 0"
    )


@pytest.mark.parametrize("shape", [(0, 2), (2, 0), (2,)])
def test_mixture_means_shape_message(shape):
    with pytest.raises(ValueError) as info:
        GaussianMixture(torch.zeros(shape, dtype=DT), 1.0)
    assert str(info.value) == (
        f"means must have shape (K, D) with K, D >= 1, got {shape}; "
        "for a single mode in D dimensions pass mean[None]"
    )


def test_mixture_to_converts_every_parameter():
    prior = make_prior("full").to(torch.float32)
    assert [a.dtype for a in (prior.means, prior.covs, prior.weights)] == [torch.float32] * 3


def test_mixture_log_weights_are_log_w_minus_log_of_their_float64_sum():
    means = torch.zeros(3, 2, dtype=DT)
    prior = GaussianMixture(means, 1.0, torch.tensor([0.1, 0.2, 0.3], dtype=DT))
    w = prior.weights
    assert float(w.sum()) != 1.0  # the subtraction is visible at rounding level
    assert torch.equal(prior.arrays(DT, torch.device("cpu")).log_weights, w.log() - w.sum().log())


def test_mixture_sample_is_mean_plus_factor_times_the_next_normal_draws():
    prior = make_prior("full")
    x = prior.sample(7, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    k = torch.multinomial(prior.weights, 7, replacement=True, generator=g)
    z = torch.randn((7, 2), generator=g, dtype=DT)
    factor = prior.arrays(DT, torch.device("cpu")).factor
    expected = prior.means[k] + (factor[k] @ z[:, :, None])[:, :, 0]
    torch.testing.assert_close(x, expected, rtol=1e-15, atol=1e-15)


def test_mixture_log_prob_messages_and_dtype():
    prior = make_prior("full")
    assert prior.log_prob(torch.zeros(3, 2)).dtype == torch.float32
    cases = [
        (TypeError, [1.0], "x must be a torch.Tensor, got list; wrap arrays with torch.as_tensor"),
        (
            ValueError,
            torch.zeros(3, dtype=DT),
            "x must have at least 2 dimension(s) (batch first), got shape (3,)",
        ),
    ]
    for exc, x, message in cases:
        with pytest.raises(exc) as info:
            prior.log_prob(x)
        assert str(info.value) == message
    # One singular component among regular ones is enough to have no density.
    covs = torch.stack([torch.eye(2, dtype=DT), torch.zeros(2, 2, dtype=DT), torch.eye(2)])
    one_dirac = GaussianMixture(prior.means, covs.to(DT))
    with pytest.raises(ValueError) as info:
        one_dirac.log_prob(torch.zeros(3, 2, dtype=DT))
    assert str(info.value) == (
        "log_prob is undefined: component 1 has a singular covariance (a Dirac mode or a "
        "rank-deficient C_k), so the mixture has no density; give every component a "
        "positive-definite covariance"
    )


# --------------------------------------------------------------------------------------------
# PosteriorMean messages, exactly


def test_no_density_message_names_the_fix_for_each_cause():
    head = "x_t has no density at t = 0.5: S_k = A_t C_k A_t^T + r_t^2 I of component 2 "
    assert str(_no_density(0.5, 2, 0.0, DT)) == (
        head + "is singular in torch.float64 (r_t^2 = 0); there is no noise, so give the "
        "degradation sigma > 0 or add a noise schedule, or avoid the t where "
        "A_t = (1 - t) I + t H is singular"
    )
    assert str(_no_density(0.5, 2, 1e-20, torch.float32)) == (
        head + "is singular in torch.float32 (r_t^2 = 1e-20); r_t^2 is below torch.float32's "
        "resolution of S_k: compute in float64 or use a larger t"
    )
    assert str(_no_density(0.5, 2, 1e-40, DT)) == (
        head + "is singular in torch.float64 (r_t^2 = 1e-40); r_t^2 is below float64's "
        "resolution of S_k: use a larger t or more noise"
    )


def test_posterior_mean_construction_messages():
    prior, deg = make_prior("full"), LinearDegradation(None, SIGMA)
    h3 = LinearDegradation(torch.eye(3, dtype=DT), SIGMA)
    no_noise = (make_prior("dirac"), LinearDegradation(None, 0.0), None)
    cases = [
        (
            (None, deg, None),
            TypeError,
            "prior must be an indiflow.oracles.GaussianMixture, got NoneType",
        ),
        (
            (prior, 1.0, None),
            TypeError,
            "degradation must be an indiflow.oracles.LinearDegradation, got float",
        ),
        (
            (prior, deg, 0.3),
            TypeError,
            "noise must be None, indiflow.ConstantNoise(eps) or indiflow.BrownianNoise(eps0), "
            "got float",
        ),
        (
            (prior, h3, None),
            ValueError,
            "H has shape (3, 3) but the prior lives in D = 2 dimensions; H must be (D, D)",
        ),
        (
            no_noise,
            ValueError,
            "x_t has no density for any t: component 0 has a singular covariance (a Dirac mode "
            "or a rank-deficient C_k) and there is no noise (sigma = 0 and no noise schedule). "
            "Give the degradation sigma > 0, add ConstantNoise / BrownianNoise, or give every "
            "component a positive-definite covariance",
        ),
    ]
    for args, exc, message in cases:
        with pytest.raises(exc) as info:
            PosteriorMean(*args)
        assert str(info.value) == message
