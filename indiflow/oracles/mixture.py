"""Gaussian mixture priors ``p(x) = sum_k pi_k N(x; mu_k, C_k)``.

Components may have full covariances, isotropic standard deviations, or be Dirac modes
(``C_k = 0``). The mixture is the clean-data law of the exact oracles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from typing import NamedTuple

import torch

from indiflow._checks import (
    check_finite_tensor,
    check_generator,
    check_int,
    check_nonnegative,
    check_tensor,
)
from indiflow.oracles._spectral import Spectrum, psd_spectrum, spectral_log_normal


class MixtureArrays(NamedTuple):
    """The mixture's parameters in one dtype and device, detached (constants for autograd)."""

    means: torch.Tensor  # (K, D)
    log_weights: torch.Tensor  # (K,)
    eigvals: torch.Tensor  # (K, D)
    eigvecs: torch.Tensor  # (K, D, D)
    factor: torch.Tensor  # (K, D, D), factor @ factor.mT = C_k


def _full_covariances(covs: object, means: torch.Tensor) -> torch.Tensor:
    """Turn a scalar std, ``(K,)`` stds or ``(K, D, D)`` covariances into ``(K, D, D)``."""
    k, d = means.shape
    eye = torch.eye(d, dtype=means.dtype, device=means.device)
    if isinstance(covs, bool) or not isinstance(covs, Real | torch.Tensor):
        raise TypeError(
            "covs must be a float std, a (K,) tensor of stds or a (K, D, D) tensor of "
            f"covariances, got {type(covs).__name__}"
        )
    if not isinstance(covs, torch.Tensor) or covs.dim() == 0:
        std = check_nonnegative("covs (a scalar std)", covs)
        return (std * std) * eye.expand(k, d, d).clone()
    check_tensor("covs", covs)
    check_finite_tensor("covs", covs)
    covs = covs.to(dtype=means.dtype, device=means.device)
    if covs.shape == (k,):
        if bool((covs < 0).any()):
            raise ValueError(
                f"covs as (K,) standard deviations must be >= 0, got min {float(covs.min()):.3g}"
            )
        return covs.square()[:, None, None] * eye
    if covs.shape == (k, d, d):
        return covs
    raise ValueError(
        f"covs must be a scalar std, a (K,) = ({k},) tensor of stds or a (K, D, D) = "
        f"({k}, {d}, {d}) tensor of covariances (K, D from means), got shape {tuple(covs.shape)}"
    )


def _normalised_weights(weights: object, means: torch.Tensor) -> torch.Tensor:
    k = means.shape[0]
    if weights is None:
        return torch.full((k,), 1.0 / k, dtype=means.dtype, device=means.device)
    check_tensor("weights", weights)
    if weights.shape != (k,):
        raise ValueError(
            f"weights must have shape (K,) = ({k},) (K from means), got {tuple(weights.shape)}"
        )
    check_finite_tensor("weights", weights)
    if bool((weights <= 0).any()):
        raise ValueError(
            f"weights must all be > 0, got min {float(weights.min()):.3g}; "
            "drop components you want to give weight 0"
        )
    weights = weights.to(dtype=means.dtype, device=means.device)
    return weights / weights.sum()


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """Mixture prior ``p(x) = sum_k pi_k N(x; mu_k, C_k)`` in ``D`` dimensions.

    Args:
        means: ``(K, D)`` floating tensor of component means; sets the dtype and device.
        covs: ``(K, D, D)`` covariances, ``(K,)`` isotropic stds, a scalar std shared by all
            components, or ``0`` for Dirac modes. Checked symmetric positive semi-definite.
        weights: ``(K,)`` positive weights, normalised here; ``None`` for uniform.

    After construction ``covs`` always holds the ``(K, D, D)`` covariances and ``weights`` the
    normalised weights, in the dtype and device of ``means``; use ``.to(dtype, device)`` to
    convert. The parameters are constants: no gradient flows back to them.
    """

    means: torch.Tensor
    covs: torch.Tensor | float
    weights: torch.Tensor | None = None
    _spectrum: Spectrum = field(init=False, repr=False)
    _arrays: dict[tuple[torch.dtype, torch.device], MixtureArrays] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        means = check_tensor("means", self.means)
        if means.dim() != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(
                f"means must have shape (K, D) with K, D >= 1, got {tuple(means.shape)}; "
                "for a single mode in D dimensions pass mean[None]"
            )
        check_finite_tensor("means", means)
        covs = _full_covariances(self.covs, means)
        weights = _normalised_weights(self.weights, means)
        spectrum = psd_spectrum("covs", covs)
        object.__setattr__(self, "covs", 0.5 * (covs + covs.mT))
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "_spectrum", spectrum)
        object.__setattr__(self, "_arrays", {})

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def degenerate(self) -> torch.Tensor:
        """``(K,)`` bool: components with a singular covariance (Dirac or rank-deficient)."""
        return self._spectrum.degenerate.clone()

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> GaussianMixture:
        """The same mixture with its tensors in ``dtype`` and on ``device``."""
        return GaussianMixture(
            self.means.to(dtype=dtype, device=device),
            self.covs.to(dtype=dtype, device=device),
            self.weights.to(dtype=dtype, device=device),
        )

    def arrays(self, dtype: torch.dtype, device: torch.device) -> MixtureArrays:
        """Detached parameters and eigendecompositions in ``dtype`` on ``device`` (cached)."""
        key = (dtype, torch.device(device))
        if key in self._arrays:
            return self._arrays[key]
        # Built outside inference mode so a cache filled during inference serves autograd too.
        with torch.inference_mode(False):
            lam = self._spectrum.eigvals
            vec = self._spectrum.eigvecs
            factor = vec * lam.sqrt()[:, None, :]
            # Log-weights in float64 so that a float32 mixture serves float64 inputs exactly.
            w64 = self.weights.detach().to(device="cpu", dtype=torch.float64)
            log_w = w64.log() - w64.sum().log()
            self._arrays[key] = MixtureArrays(
                *(
                    a.detach().to(dtype=dtype, device=device).clone()
                    for a in (self.means, log_w, lam, vec, factor)
                )
            )
            return self._arrays[key]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` points, ``x = mu_k + L_k z`` with ``k ~ pi``, ``z ~ N(0, I)``; ``(n, D)``."""
        check_int("n", n, 1)
        check_generator(generator)
        arr = self.arrays(self.means.dtype, self.means.device)
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(
            (n, self.dim), generator=generator, dtype=self.means.dtype, device=self.means.device
        )
        return arr.means[k] + torch.einsum("nij,nj->ni", arr.factor[k], z)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x) = logsumexp_k (log pi_k + log N(x; mu_k, C_k))``, ``x`` of shape ``(B, D)``.

        Raises ``ValueError`` when a component is degenerate: the mixture then has no density.
        """
        check_tensor("x", x, min_dim=2)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, D) = (B, {self.dim}), got {tuple(x.shape)}")
        bad = torch.nonzero(self._spectrum.degenerate).flatten()
        if bad.numel() > 0:
            raise ValueError(
                f"log_prob is undefined: component {int(bad[0])} has a singular covariance "
                "(a Dirac mode or a rank-deficient C_k), so the mixture has no density; "
                "give every component a positive-definite covariance"
            )
        arr = self.arrays(x.dtype, x.device)
        z = torch.einsum("kji,bkj->bki", arr.eigvecs, x[:, None, :] - arr.means)
        log_normal = spectral_log_normal(z, arr.eigvals.expand_as(z))
        return torch.logsumexp(arr.log_weights + log_normal, dim=-1)
