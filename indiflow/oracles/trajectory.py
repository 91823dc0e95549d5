"""The closed-form InDI trajectory for one Gaussian prior, ``H = I`` and no interpolant noise.

For ``x ~ N(mu, C)`` and ``y = x + sigma n`` the exact regressor is
``F(x, t) = mu + C (C + t^2 sigma^2 I)^{-1} (x - mu)`` and the ODE ``dx/dt = (x - F) / t``
started at ``x(1) = y`` has the solution
``x(t) = mu + (C + t^2 sigma^2 I)^{1/2} (C + sigma^2 I)^{-1/2} (y - mu)`` for ``t`` in
``[0, 1]``: both matrices are functions of ``C``, so one eigendecomposition gives them all.
"""

from __future__ import annotations

import torch

from indiflow._checks import batch_times, check_nonnegative, check_real, check_tensor
from indiflow.oracles._spectral import psd_spectrum
from indiflow.oracles.degradation import LinearDegradation, flatten_states
from indiflow.oracles.mixture import GaussianMixture
from indiflow.oracles.posterior import PosteriorMean


def _check_gaussian(mean: object, cov: object) -> tuple[torch.Tensor, torch.Tensor]:
    mean = check_tensor("mean", mean)
    cov = check_tensor("cov", cov)
    if mean.dim() != 1:
        raise ValueError(f"mean must have shape (D,), got {tuple(mean.shape)}")
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(
            f"cov must be a (D, D) = ({d}, {d}) covariance matrix (D from mean), "
            f"got shape {tuple(cov.shape)}"
        )
    return mean, cov


def gaussian_trajectory(
    y: torch.Tensor,
    t: float | torch.Tensor,
    mean: torch.Tensor,
    cov: torch.Tensor,
    sigma: float,
) -> torch.Tensor:
    """Exact solution of the InDI ODE for the prior ``N(mean, cov)``, ``H = I``, no ``eps``.

    ``x(t) = mu + (C + t^2 sigma^2 I)^{1/2} (C + sigma^2 I)^{-1/2} (y - mu)``.

    Args:
        y: starting points ``x(1)``, shape ``(B, D)`` or ``(B, *dims)`` with ``prod = D``.
        t: a float or a ``(B,)`` tensor in ``[0, 1]``; ``t = 0`` gives the ODE's limit.
        mean: ``(D,)`` prior mean.
        cov: ``(D, D)`` prior covariance, symmetric positive semi-definite.
        sigma: degradation noise std, ``>= 0``; ``C + sigma^2 I`` must be invertible.

    Returns:
        ``x(t)`` in the shape, dtype and device of ``y``.
    """
    mean, cov = _check_gaussian(mean, cov)
    sigma = check_nonnegative("sigma", sigma)
    flat = flatten_states("y", y, mean.shape[0])
    if not isinstance(t, torch.Tensor):
        check_real("t", t)
    t_vec = batch_times(t, flat)
    if flat.shape[0] > 0:
        lo, hi = torch.stack([t_vec.min(), t_vec.max()]).tolist()
        if not (lo >= 0 and hi <= 1):
            raise ValueError(f"t must lie in [0, 1], got values in [{lo}, {hi}]")
    spectrum = psd_spectrum("cov", cov[None])
    lam64 = spectrum.eigvals[0]
    if bool((lam64 + sigma**2 <= 0).any()):
        raise ValueError(
            "cov is singular and sigma = 0, so (C + sigma^2 I)^{-1/2} is undefined; "
            "use sigma > 0 or a positive-definite cov"
        )
    lam = lam64.to(dtype=flat.dtype, device=flat.device)
    vec = spectrum.eigvecs[0].to(dtype=flat.dtype, device=flat.device)
    mu = mean.to(dtype=flat.dtype, device=flat.device)
    gain = ((lam + (t_vec[:, None] * sigma).square()) / (lam + sigma**2)).sqrt()
    out = mu + ((flat - mu) @ vec * gain) @ vec.mT
    return out.reshape(y.shape)


def gaussian_posterior_mean(mean: torch.Tensor, cov: torch.Tensor, sigma: float) -> PosteriorMean:
    """The exact regressor matching ``gaussian_trajectory``: one component, ``H = I``, no eps.

    ``F(x, t) = mu + C (C + t^2 sigma^2 I)^{-1} (x - mu)``.
    """
    mean, cov = _check_gaussian(mean, cov)
    prior = GaussianMixture(mean[None], cov[None])
    return PosteriorMean(prior, LinearDegradation(None, sigma))
