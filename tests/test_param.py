"""Parametrisation conversions (indiflow.param) and the Gaussian / score-matching identities.

The identities are checked to rounding in float64 on the exact mixture oracles (H = I): Tweedie
both ways, the InDI field as the VE probability-flow field, Euler = DDIM (eta = 0) = k-diffusion's
Euler and Heun samplers with noise level t * sigma, and the L2 InDI loss as (t sigma)^4-weighted
denoising score matching.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import pickle
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow import param

DT = torch.float64
EPS = torch.finfo(DT).eps


# --------------------------------------------------------------------------------------------
# Helpers


class SmoothRegressor:
    """A fixed nonlinear ``F(x, t)``; a class (not a lambda) so that converters pickle."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tb = t.reshape(-1, *([1] * (x.dim() - 1)))
        return torch.tanh(x) * (1.0 + tb) + torch.sin(3.0 * tb) - 0.25 * x


class FixedTimes:
    """A time law that returns given times (drives ``ind.indi_loss`` at chosen ``t``)."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t

    def sample(self, n, generator=None, *, dtype=None, device=None):
        return self.t[:n].to(dtype=dtype, device=device)


PRIORS = ("dirac-4", "iso-4", "full-3")


def oracle(prior: str, sigma: float) -> object:
    """Exact ``E[x | x_t]`` for ``y = x + sigma n`` (H = I) under one of the test priors.

    ``dirac-4``: the four modes at (±1, ±1); ``iso-4``: the same means with isotropic stds and
    unequal weights; ``full-3``: three full-covariance components in R^3.
    """
    g = torch.Generator().manual_seed(0)
    means2 = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]], dtype=DT)
    if prior == "dirac-4":
        mix = ind.oracles.GaussianMixture(means2, 0.0, torch.full((4,), 0.25, dtype=DT))
    elif prior == "iso-4":
        stds = torch.tensor([0.1, 0.3, 0.2, 0.5], dtype=DT)
        mix = ind.oracles.GaussianMixture(means2, stds, torch.tensor([0.1, 0.2, 0.3, 0.4]).to(DT))
    else:
        a = torch.randn(3, 3, 3, generator=g, dtype=DT)
        covs = a @ a.transpose(1, 2) / 3 + 0.1 * torch.eye(3, dtype=DT)
        means = torch.randn(3, 3, generator=g, dtype=DT)
        mix = ind.oracles.GaussianMixture(means, covs, torch.tensor([0.5, 0.3, 0.2], dtype=DT))
    dim = 3 if prior == "full-3" else 2
    degradation = ind.oracles.LinearDegradation(torch.eye(dim, dtype=DT), sigma)
    return ind.oracles.PosteriorMean(mix, degradation)


def autograd_score(post: object) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``∇_x log p_t(x)`` by autograd through the oracle's exact log marginal."""

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(post.log_marginal(xr, t).sum(), xr)
        return grad

    return score


def states(post: object, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``x_t`` drawn from the process itself at times spread over ``(0, 1]``."""
    g = torch.Generator().manual_seed(seed)
    x, y = post.sample_pairs(n, generator=g)
    t = torch.linspace(0.05, 1.0, n, dtype=DT)
    tb = t[:, None]
    return (1 - tb) * x.to(DT) + tb * y.to(DT), t


def close(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | float, ulps: float) -> None:
    """``|a - b| <= ulps * eps * scale`` elementwise: agreement to rounding, with the bound."""
    bound = ulps * EPS * (scale if isinstance(scale, torch.Tensor) else torch.tensor(scale))
    err = (a - b).abs()
    worst = float((err / bound).max())
    assert worst <= 1.0, f"max |a - b| / bound = {worst:.3g} (bound {ulps} ulps of the scale)"


SIGMAS = (0.3, 1.0, 1.5)


# --------------------------------------------------------------------------------------------
# Tweedie and the probability-flow field


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("prior", PRIORS)
def test_tweedie_score_from_oracle_regressor(prior, sigma):
    post = oracle(prior, sigma)
    x_t, t = states(post, 64, seed=1)
    got = param.score_from_regressor(post, sigma)(x_t, t)
    want = autograd_score(post)(x_t, t)
    level2 = (t[:, None] * sigma) ** 2
    # Rounding of F and x_t, divided by (t sigma)^2.
    close(got, want, (x_t.abs() + want.abs() * level2 + 1.0) / level2, ulps=64)


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("prior", PRIORS)
def test_tweedie_regressor_from_autograd_score(prior, sigma):
    post = oracle(prior, sigma)
    x_t, t = states(post, 64, seed=2)
    got = param.regressor_from_score(autograd_score(post), sigma)(x_t, t)
    want = post(x_t, t)
    close(got, want, x_t.abs() + want.abs() + 1.0, ulps=64)


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("prior", PRIORS)
def test_indi_field_is_ve_probability_flow(prior, sigma):
    post = oracle(prior, sigma)
    x_t, t = states(post, 64, seed=3)
    field = ind.InDIField(post)
    score = autograd_score(post)(x_t, t)
    want = -t[:, None] * sigma**2 * score  # dx/dt = -sigma(t) sigma'(t) ∇ log p, sigma(t) = t sigma
    got = field(t, x_t)
    close(got, want, (x_t.abs() + post(x_t, t).abs() + 1.0) / t[:, None], ulps=64)


# --------------------------------------------------------------------------------------------
# Samplers: InDI Euler = DDIM (eta = 0) VE = k-diffusion Euler / Heun


def _ddim_ve(eps_model, y: torch.Tensor, levels: list[float]) -> torch.Tensor:
    """Deterministic DDIM on a VE process, written from the textbook.

    Predict the clean signal ``x0 = x - s_i eps``, then re-noise it with the same noise at the
    next level: ``x <- x0 + s_{i+1} eps``.
    """
    x = y
    for s_now, s_next in itertools.pairwise(levels):
        eps = eps_model(x, torch.full((x.shape[0],), s_now, dtype=x.dtype))
        x0 = x - s_now * eps
        x = x0 + s_next * eps
    return x


@pytest.mark.parametrize("grid", [ind.TimeGrid.uniform(12), ind.TimeGrid.power(9, 2.0)])
def test_euler_equals_ddim_eta0_ve(grid):
    sigma = 1.2
    post = oracle("iso-4", sigma)
    _, y = post.sample_pairs(128, generator=torch.Generator().manual_seed(4))
    y = y.to(DT)
    sol = ind.solve(ind.InDIField(post), ind.Euler(), y, ind.FixedSteps(grid))
    # The DDIM model predicts noise from the noise level s = t sigma; at s = 0 it is never called.
    eps_t = param.eps_from_regressor(post, sigma)

    def eps_of_level(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return eps_t(x, s / sigma)

    want = _ddim_ve(eps_of_level, y, [t * sigma for t in grid.ts])
    close(sol.x, want, y.abs() + want.abs() + 1.0, ulps=64 * grid.steps)


def _load_kdiffusion_sampling() -> types.ModuleType:
    """``k_diffusion.sampling`` loaded on its own, under a private package name.

    The package's ``__init__`` imports torchvision / skimage, and ``sampling.py`` does
    ``from . import utils`` (which imports torchvision and PIL); the samplers used here need only
    ``utils.append_dims``, so a stub ``utils`` module stands in for it.
    """
    pytest.importorskip("torchsde", reason="k-diffusion's sampling module imports torchsde")
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "k-diffusion not installed: pip install --no-deps k-diffusion==0.1.1.post1 "
            "torchsde trampoline"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    pkg_name = "_indiflow_test_kdiffusion"
    if f"{pkg_name}.sampling" in sys.modules:
        return sys.modules[f"{pkg_name}.sampling"]
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = [str(root)]
    utils = types.ModuleType(f"{pkg_name}.utils")

    def append_dims(x: torch.Tensor, target_dims: int) -> torch.Tensor:
        return x[(...,) + (None,) * (target_dims - x.ndim)]

    utils.append_dims = append_dims
    sys.modules[pkg_name] = pkg
    sys.modules[f"{pkg_name}.utils"] = utils
    sampling_spec = importlib.util.spec_from_file_location(
        f"{pkg_name}.sampling", root / "sampling.py"
    )
    sampling = importlib.util.module_from_spec(sampling_spec)
    sys.modules[f"{pkg_name}.sampling"] = sampling
    sampling_spec.loader.exec_module(sampling)
    return sampling


@pytest.mark.parametrize(
    ("indi_solver", "kd_name"), [(ind.Euler(), "sample_euler"), (ind.Heun(), "sample_heun")]
)
def test_indi_solvers_equal_kdiffusion_samplers(indi_solver, kd_name):
    sampling = _load_kdiffusion_sampling()
    sigma = 1.3  # not 1, so that mixing up t and s = t * sigma shows
    post = oracle("dirac-4", sigma)
    _, y = post.sample_pairs(128, generator=torch.Generator().manual_seed(5))
    y = y.to(DT)
    grid = ind.TimeGrid.power(10, 3.0)
    sol = ind.solve(ind.InDIField(post), indi_solver, y, ind.FixedSteps(grid))
    sigmas = torch.tensor([t * sigma for t in grid.ts], dtype=DT)
    denoiser = param.edm_denoiser_from_regressor(post, sigma)
    want = getattr(sampling, kd_name)(denoiser, y.clone(), sigmas, disable=True)
    close(sol.x, want, y.abs() + want.abs() + 1.0, ulps=64 * grid.steps)


# --------------------------------------------------------------------------------------------
# Losses: L2 InDI loss = (t sigma)^4 DSM loss, per sample


def dsm_per_sample(score, x: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, sigma: float):
    """Denoising score matching: ``|| s(x_t, t) - (x - x_t) / (t sigma)^2 ||^2`` per sample.

    ``(x - x_t) / (t sigma)^2`` is the score of ``N(x_t; x, (t sigma)^2 I)`` at ``x_t``.
    """
    target = (x - x_t) / (t[:, None] * sigma) ** 2
    return (score(x_t, t) - target).square().sum(1)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_indi_loss_is_weighted_dsm_per_sample(sigma):
    g = torch.Generator().manual_seed(6)
    n = 32
    x = torch.randn(n, 2, generator=g, dtype=DT)
    y = x + sigma * torch.randn(n, 2, generator=g, dtype=DT)
    t = torch.rand(n, generator=g, dtype=DT) * 0.95 + 0.05
    x_t = x + t[:, None] * (y - x)
    regressor = SmoothRegressor()
    score = param.score_from_regressor(regressor, sigma)
    weight = (t * sigma) ** 4
    dsm = dsm_per_sample(score, x, x_t, t, sigma)
    # Per sample, through the library's loss at a fixed time (batch of one).
    per_indi = torch.stack(
        [
            ind.indi_loss(regressor, x[i : i + 1], y[i : i + 1], time_law=FixedTimes(t[i : i + 1]))
            for i in range(n)
        ]
    )
    close(per_indi, weight * dsm, per_indi + 1.0, ulps=64)
    # And the other direction: a score model trained by DSM, seen as a regressor.
    regressor_of_score = param.regressor_from_score(score, sigma)
    batch = ind.indi_loss(regressor_of_score, x, y, time_law=FixedTimes(t))
    close(batch, (weight * dsm).mean(), batch + 1.0, ulps=64)


# --------------------------------------------------------------------------------------------
# Round trips (hypothesis)

PAIRS = {
    "score": (param.score_from_regressor, param.regressor_from_score, True),
    "edm": (param.edm_denoiser_from_regressor, param.regressor_from_edm_denoiser, True),
    "velocity": (param.velocity_from_regressor, param.regressor_from_velocity, False),
    "eps": (param.eps_from_regressor, param.regressor_from_eps, True),
}


def _draw(seed: int, batch: int, dim: int, t_lo: float):
    g = torch.Generator().manual_seed(seed)
    x = 2.0 * torch.randn(batch, dim, generator=g, dtype=DT)
    t = t_lo + (1.0 - t_lo) * torch.rand(batch, generator=g, dtype=DT)
    return x, t


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(PAIRS)),
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 6),
    dim=st.integers(1, 4),
    sigma=st.floats(0.1, 10.0),
)
def test_round_trip_regressor_to_other_and_back(name, seed, batch, dim, sigma):
    to_other, back, needs_sigma = PAIRS[name]
    regressor = SmoothRegressor()
    other = to_other(regressor, sigma) if needs_sigma else to_other(regressor)
    again = back(other, sigma) if needs_sigma else back(other)
    x, t = _draw(seed, batch, dim, t_lo=0.01)
    f = regressor(x, t)
    # F -> other -> F loses at most the rounding of (F - x): exact up to a few ulps of |F| + |x|;
    # the EDM pair also rounds t -> t sigma -> t, and |dF/dt| <= 4 for this F.
    close(again(x, t), f, f.abs() + x.abs() + 4 * t[:, None], ulps=16)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(PAIRS)),
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 6),
    dim=st.integers(1, 4),
    sigma=st.floats(0.1, 10.0),
)
def test_round_trip_other_to_regressor_and_back(name, seed, batch, dim, sigma):
    to_other, back, needs_sigma = PAIRS[name]
    model = SmoothRegressor()  # read as a score / denoiser / velocity / noise model
    regressor = back(model, sigma) if needs_sigma else back(model)
    again = to_other(regressor, sigma) if needs_sigma else to_other(regressor)
    x, t = _draw(seed, batch, dim, t_lo=0.01)
    arg = t * sigma if name == "edm" else t
    m = model(x, arg)
    # other -> F -> other divides x + c m - x by c, c = (t sigma)^2, t or t sigma:
    # the rounding of |x| is amplified by 1 / c.
    c = {"score": (t * sigma) ** 2, "edm": torch.ones_like(t), "velocity": t, "eps": t * sigma}
    scale = m.abs() + x.abs() / c[name][:, None] + 4 * arg[:, None]  # + rounding of the time
    close(again(x, arg), m, scale, ulps=16)


def test_edm_denoiser_passes_noise_level_as_time():
    seen = []

    def regressor(x, t):
        seen.append(t.clone())
        return x

    sigma = 2.5
    s = torch.tensor([0.5, 1.25, 2.5], dtype=DT)
    param.edm_denoiser_from_regressor(regressor, sigma)(torch.zeros(3, 2, dtype=DT), s)
    close(seen[0], s / sigma, torch.ones(3, dtype=DT), ulps=2)
    seen.clear()
    t = torch.tensor([0.2, 0.5, 1.0], dtype=DT)
    param.regressor_from_edm_denoiser(regressor, sigma)(torch.zeros(3, 2, dtype=DT), t)
    close(seen[0], t * sigma, torch.ones(3, dtype=DT), ulps=2)


def test_conversions_keep_shape_and_dtype_on_image_states():
    x = torch.randn(3, 2, 4, 5, dtype=torch.float32)
    t = torch.tensor([0.2, 0.7, 1.0])
    regressor = SmoothRegressor()
    for to_other, back, needs_sigma in PAIRS.values():
        other = to_other(regressor, 0.8) if needs_sigma else to_other(regressor)
        again = back(other, 0.8) if needs_sigma else back(other)
        out = again(x, t)
        assert out.shape == x.shape and out.dtype == x.dtype
        torch.testing.assert_close(out, regressor(x, t), rtol=1e-5, atol=1e-5)


def test_scalar_time_is_broadcast():
    x = torch.randn(4, 2, dtype=DT)
    score = param.score_from_regressor(SmoothRegressor(), 1.0)
    close(score(x, 0.5), score(x, torch.full((4,), 0.5, dtype=DT)), torch.ones(4, 2), ulps=1)


def test_maps_back_to_regressor_are_safe_at_t0():
    x = torch.randn(4, 2, dtype=DT)
    t = torch.zeros(4, dtype=DT)
    model = SmoothRegressor()
    for back in (
        param.regressor_from_score(model, 1.0),
        param.regressor_from_eps(model, 1.0),
        param.regressor_from_velocity(model),
    ):
        # At t = 0 the noise level vanishes, so every parametrisation reads x_0 = x_t.
        assert torch.equal(back(x, t), x)


def test_converters_are_frozen_inspectable_and_pickle():
    score = param.score_from_regressor(SmoothRegressor(), 1.5)
    assert score.sigma == 1.5 and isinstance(score.regressor, SmoothRegressor)
    with pytest.raises(AttributeError):
        score.sigma = 2.0
    again = pickle.loads(pickle.dumps(param.regressor_from_score(score, 1.5)))
    x, t = _draw(0, 5, 2, 0.1)
    close(again(x, t), SmoothRegressor()(x, t), x.abs() + 1.0, ulps=16)


def test_regressor_from_score_runs_on_indiflow_solvers():
    sigma = 1.0
    post = oracle("iso-4", sigma)
    _, y = post.sample_pairs(64, generator=torch.Generator().manual_seed(7))
    y = y.to(DT)
    via_score = param.regressor_from_score(param.score_from_regressor(post, sigma), sigma)
    grid = ind.FixedSteps(ind.TimeGrid.uniform(20))
    a = ind.solve(ind.InDIField(post), ind.Heun(), y, grid).x
    b = ind.solve(ind.InDIField(via_score), ind.Heun(), y, grid).x
    close(a, b, a.abs() + y.abs() + 1.0, ulps=64)


# --------------------------------------------------------------------------------------------
# Bad inputs

WITH_SIGMA = [
    param.score_from_regressor,
    param.regressor_from_score,
    param.edm_denoiser_from_regressor,
    param.regressor_from_edm_denoiser,
    param.eps_from_regressor,
    param.regressor_from_eps,
]
WITHOUT_SIGMA = [param.velocity_from_regressor, param.regressor_from_velocity]
ALL = [*(lambda m, f=f: f(m, 1.0) for f in WITH_SIGMA), *WITHOUT_SIGMA]


@pytest.mark.parametrize("convert", WITH_SIGMA, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("sigma", "error", "match"),
    [
        (0.0, ValueError, r"sigma .* must be > 0, got 0\.0"),
        (-1.0, ValueError, r"must be > 0, got -1\.0"),
        (math.nan, ValueError, "must be finite, got nan"),
        (math.inf, ValueError, "must be finite, got inf"),
        ("1.0", TypeError, "must be a real number, got str"),
        (True, TypeError, "must be a real number, got bool"),
    ],
)
def test_bad_sigma(convert, sigma, error, match):
    with pytest.raises(error, match=match):
        convert(SmoothRegressor(), sigma)


@pytest.mark.parametrize("make", ALL)
def test_non_callable_model(make):
    with pytest.raises(
        TypeError, match=r"must be callable as \w+\(x(_t)?, [ts]\) -> tensor .*got int"
    ):
        make(3)


@pytest.mark.parametrize("make", ALL)
def test_model_returning_wrong_shape(make):
    conv = make(lambda x, t: x[:, :1])
    with pytest.raises(ValueError, match=r"shaped like its input \(4, 3\), got \(4, 1\)"):
        conv(torch.ones(4, 3), torch.full((4,), 0.5))


@pytest.mark.parametrize("make", ALL)
def test_model_returning_non_tensor(make):
    conv = make(lambda x, t: x.tolist())
    with pytest.raises(TypeError, match=r"must return a torch\.Tensor, got list"):
        conv(torch.ones(4, 3), torch.full((4,), 0.5))


@pytest.mark.parametrize("make", ALL)
def test_bad_state_and_time(make):
    conv = make(SmoothRegressor())
    with pytest.raises(TypeError, match=r"must be a torch\.Tensor, got list"):
        conv([[1.0, 2.0]], torch.ones(1))
    with pytest.raises(TypeError, match=r"must be a floating-point tensor, got dtype torch\.int64"):
        conv(torch.ones(2, 3, dtype=torch.int64), torch.ones(2))
    with pytest.raises(ValueError, match=r"must be a scalar or have shape \(B,\) = \(2,\), got"):
        conv(torch.ones(2, 3), torch.ones(3))
    with pytest.raises(TypeError, match="must be a tensor of shape \\(B,\\) or a float, got str"):
        conv(torch.ones(2, 3), "0.5")


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: param.score_from_regressor(m, 1.0),
        lambda m: param.eps_from_regressor(m, 1.0),
        param.velocity_from_regressor,
    ],
)
@pytest.mark.parametrize("bad_t", [0.0, -0.1, math.nan])
def test_maps_dividing_by_t_reject_nonpositive_t(convert, bad_t):
    conv = convert(SmoothRegressor())
    t = torch.tensor([0.5, bad_t], dtype=DT)
    with pytest.raises(ValueError, match=r"divides by t and needs every t > 0"):
        conv(torch.ones(2, 3, dtype=DT), t)
