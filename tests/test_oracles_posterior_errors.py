"""PosteriorMean: bad construction and bad calls, with their exact messages."""

from __future__ import annotations

import math

import pytest
import torch
from oracle_cases import DT, SIGMA, make_h, make_prior

import indiflow as ind
from indiflow.oracles import (
    GaussianMixture,
    LinearDegradation,
    PosteriorMean,
)
from indiflow.oracles.posterior import _no_density


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


# --------------------------------------------------------------------------------------------
# Which sample, component and dtype a "no density" error names, on both paths

# Component 0 regular with eigenvalues below 1, component 1 singular in one direction only
# (so exactly one (sample, component, direction) has zero variance), component 2 regular.
RANK_ONE = torch.stack(
    [
        0.3 * torch.eye(2, dtype=DT),
        torch.diag(torch.tensor([0.0, 0.5], dtype=DT)),
        0.2 * torch.eye(2, dtype=DT),
    ]
)
MEANS = torch.tensor([[1.0, 0.5], [-1.0, 1.0], [0.2, -1.2]], dtype=DT)


def _no_density_message(t: str, k: int, dtype: str) -> str:
    return (
        f"x_t has no density at t = {t}: S_k = A_t C_k A_t^T + r_t^2 I of component {k} is "
        f"singular in {dtype} (r_t^2 = 0); there is no noise, so give the degradation "
        "sigma > 0 or add a noise schedule, or avoid the t where A_t = (1 - t) I + t H is singular"
    )


def test_identity_path_names_the_singular_component_when_r_t_underflows():
    # sigma = 1e-200 > 0 passes construction, but r_t^2 = (t sigma)^2 underflows to 0 in
    # float64, so S_1 = C_1 is singular; exactly one variance lam + r_t^2 is zero.
    pm = PosteriorMean(GaussianMixture(MEANS, RANK_ONE), LinearDegradation(None, 1e-200))
    for x in (torch.zeros(1, 2, dtype=DT), torch.zeros(3, 2, dtype=DT)):
        with pytest.raises(ValueError) as info:
            pm(x, 0.5)
        assert str(info.value) == _no_density_message("0.5", 1, "torch.float64")


def test_general_path_names_the_sample_and_component_whose_s_k_is_singular():
    # H = diag(0, 1): A_1 = H erases the first coordinate, so at t = 1 the leading 1x1 minor of
    # every S_k is 0 (Cholesky info = 1); at t = 0.5 every S_k is regular. Only sample 1 is at
    # t = 1, and component 0 is the first singular one.
    h = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=DT)
    pm = PosteriorMean(make_prior("full"), LinearDegradation(h, 0.0))
    x = torch.zeros(2, 2, dtype=DT)
    pm(x, 0.5)
    with pytest.raises(ValueError) as info:
        pm(x, torch.tensor([0.5, 1.0], dtype=DT))
    assert str(info.value) == _no_density_message("1", 0, "torch.float64")
    with pytest.raises(ValueError) as info:
        pm(x.float(), 1.0)
    assert str(info.value) == _no_density_message("1", 0, "torch.float32")


def test_call_messages_exactly():
    pm = PosteriorMean(make_prior("full"), LinearDegradation(None, SIGMA))
    with pytest.raises(ValueError) as info:
        pm(torch.zeros(0, 2, dtype=DT), 0.5)
    assert str(info.value) == "x_t must hold at least one sample, got batch size 0"
    with pytest.raises(ValueError) as info:
        pm(torch.zeros(2, 2, dtype=DT), 0.0)
    assert str(info.value) == (
        "t must lie in (0, 1] (in x_t's dtype torch.float64), got values in [0.0, 0.0]; "
        "the regression target at t = 0 is the clean x itself"
    )
    with pytest.raises(TypeError) as info:
        PosteriorMean("prior", LinearDegradation(None, SIGMA))
    assert str(info.value) == "prior must be an indiflow.oracles.GaussianMixture, got str"


def test_sample_pairs_checks_the_generator_before_the_count():
    pm = PosteriorMean(make_prior("full"), LinearDegradation(None, SIGMA))
    with pytest.raises(TypeError) as info:
        pm.sample_pairs(0, generator=0)
    assert str(info.value) == "generator must be a torch.Generator or None, got int"
