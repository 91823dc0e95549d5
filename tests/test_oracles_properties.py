"""PosteriorMean properties (hypothesis): component order, Dirac box, affine maps, batches."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle_cases import DT

import indiflow as ind
from indiflow.oracles import (
    GaussianMixture,
    LinearDegradation,
    PosteriorMean,
)


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
