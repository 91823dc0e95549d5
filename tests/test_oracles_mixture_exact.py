"""GaussianMixture exactly: construction messages, weights, conversions, draws, log_prob."""

from __future__ import annotations

import math

import pytest
import torch
from oracle_cases import DT, make_prior

from indiflow.oracles import (
    GaussianMixture,
)


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


def test_mixture_to_checks_the_parameters_in_the_new_dtype():
    """``to`` converts first and validates after: a variance or a weight that overflows or
    underflows in float32 is refused as at construction (std 1e20: variance 1e40 > float32's max;
    weight 1e-50 rounds to 0)."""
    big = GaussianMixture(torch.zeros(2, 2, dtype=DT), torch.tensor([1e20, 1.0], dtype=DT))
    with pytest.raises(ValueError) as info:
        big.to(torch.float32)
    assert str(info.value) == "covs holds NaN or infinite values; clean or clamp it before solving"
    tiny = GaussianMixture(torch.zeros(2, 2, dtype=DT), 1.0, torch.tensor([1.0, 1e-50], dtype=DT))
    with pytest.raises(ValueError) as info:
        tiny.to(torch.float32)
    assert str(info.value) == (
        "weights must all be > 0, got min 0; drop components you want to give weight 0"
    )
    assert tiny.to(DT).weights.tolist() == tiny.weights.tolist()
