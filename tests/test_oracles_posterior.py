"""PosteriorMean values: Monte Carlo, Tweedie, SciPy, inversion, float32, caching.

The posterior mean is checked against self-normalised importance sampling with the exact
Gaussian likelihood, against Tweedie's formula with an autograd score of the exact marginal,
and against ``A_t^{-1} x_t`` where ``x_t`` is noise-free; the log marginal against SciPy.
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
from oracle_cases import DT, H_GENERAL, NOISES, SIGMA, a_matrix, make_h, make_prior, r_squared

from indiflow.oracles import GaussianMixture, LinearDegradation, PosteriorMean


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
# The two computation paths, exactly where they differ


def test_identity_degradation_takes_the_eigenbasis_path_in_float32():
    """``H = I`` in float32: ``S = C + r^2 I`` for ``C = 1e8 v v^T`` rounds to a singular matrix,
    on which a Cholesky factorisation gives a wrong answer; the float64 eigenbasis of ``C`` does
    not. Reference for one component at ``t = 1``: ``E[x | x_t] = C (C + r^2 I)^{-1} x_t =
    (v . x_t) v / (1 + r^2 / 1e8)`` (no variance, hence weight 0, orthogonal to ``v``).
    """
    v = torch.tensor([0.6, 0.8], dtype=DT)
    cov = 1e8 * torch.outer(v, v)
    r2 = 0.03**2
    x = torch.tensor([[1.0, 2.0]])
    expected = (x.double() @ v)[:, None] * v / (1 + r2 / 1e8)
    for dtype in (torch.float32, DT):
        prior = GaussianMixture(torch.zeros(1, 2, dtype=dtype), cov[None].to(dtype))
        out = PosteriorMean(prior, LinearDegradation(None, 0.03))(x.to(dtype), 1.0)
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-5)


def test_equal_times_factorise_each_s_k_once(monkeypatch):
    """Equal times share one ``A_t``: ``S`` is ``(1, K, D, D)``, not ``(B, K, D, D)``."""
    shapes = []
    cholesky_ex = torch.linalg.cholesky_ex

    def spy(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shapes.append(tuple(s.shape))
        return cholesky_ex(s)

    monkeypatch.setattr(torch.linalg, "cholesky_ex", spy)
    pm = PosteriorMean(make_prior("full"), LinearDegradation(make_h("general"), SIGMA))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=DT)
    pm(x, 0.4)
    pm(x, torch.full((5,), 0.4, dtype=DT))
    pm(x, torch.linspace(0.2, 0.6, 5, dtype=DT))
    assert shapes == [(1, 3, 2, 2), (1, 3, 2, 2), (5, 3, 2, 2)]


def test_float64_h_serves_float32_states_in_float32():
    """``H`` is cast to ``x_t``'s dtype (also with float64 as torch's default dtype)."""
    h = make_h("general")
    pm32 = PosteriorMean(make_prior("full", torch.float32), LinearDegradation(h, SIGMA))
    pm64 = PosteriorMean(make_prior("full"), LinearDegradation(h, SIGMA))
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(3), dtype=DT)
    default = torch.get_default_dtype()
    for default_dtype in (torch.float32, DT):
        torch.set_default_dtype(default_dtype)
        try:
            out = pm32(x.float(), 0.5)
            log_p = pm32.log_marginal(x.float(), 0.5)
        finally:
            torch.set_default_dtype(default)
        assert out.dtype == log_p.dtype == torch.float32
        torch.testing.assert_close(out.double(), pm64(x, 0.5), rtol=0, atol=1e-5)
