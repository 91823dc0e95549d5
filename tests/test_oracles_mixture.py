"""GaussianMixture laws: densities against SciPy, standard-deviation forms, sampling moments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
from oracle_cases import DT, SIGMA, make_h, make_prior

from indiflow.oracles import (
    GaussianMixture,
    LinearDegradation,
    PosteriorMean,
)


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
