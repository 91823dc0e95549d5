"""Validated eigendecompositions of covariance matrices, shared by the oracles.

Covariances are checked and decomposed once, in float64 on the CPU, whatever the dtype and
device they arrive in: the decomposition is then exact to float64 rounding and can be cast to
any dtype the caller computes in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

_LOG_2PI = math.log(2.0 * math.pi)


class Spectrum(NamedTuple):
    """``C_k = V_k diag(lam_k) V_k^T`` for a stack of covariances, float64 on the CPU.

    ``degenerate[k]`` is True when ``C_k`` is singular to working precision (Dirac modes and
    rank-deficient covariances); such a component has no density on its own.
    """

    eigvals: torch.Tensor  # (K, D), clamped to >= 0
    eigvecs: torch.Tensor  # (K, D, D), columns are eigenvectors
    degenerate: torch.Tensor  # (K,) bool


def spectral_rtol(dtype: torch.dtype, dim: int) -> float:
    """Relative tolerance under which asymmetry or a negative eigenvalue counts as rounding."""
    return 100.0 * dim * torch.finfo(dtype).eps


def psd_spectrum(name: str, covs: torch.Tensor) -> Spectrum:
    """Check that every ``covs[k]`` is symmetric positive semi-definite and decompose it.

    Tolerances are relative to ``max |C_k|`` and scale with the dtype the user gave, so a
    float32 covariance computed as ``A @ A.T`` passes while a genuinely indefinite one fails.
    """
    dim = covs.shape[-1]
    rtol = spectral_rtol(covs.dtype, dim)
    c64 = covs.detach().to(device="cpu", dtype=torch.float64)
    scale = c64.abs().amax(dim=(-2, -1))
    asym = (c64 - c64.mT).abs().amax(dim=(-2, -1))
    bad = torch.nonzero(asym > rtol * scale).flatten()
    if bad.numel() > 0:
        k = int(bad[0])
        raise ValueError(
            f"{name}[{k}] is not symmetric: max |C - C^T| = {float(asym[k]):.3g} for "
            f"max |C| = {float(scale[k]):.3g}; pass (C + C.mT) / 2 if the asymmetry is rounding"
        )
    eigvals, eigvecs = torch.linalg.eigh(0.5 * (c64 + c64.mT))
    lam_min = eigvals[:, 0]
    bad = torch.nonzero(lam_min < -rtol * scale).flatten()
    if bad.numel() > 0:
        k = int(bad[0])
        raise ValueError(
            f"{name}[{k}] is not positive semi-definite: its smallest eigenvalue is "
            f"{float(lam_min[k]):.3g} < 0; a covariance must be symmetric with eigenvalues >= 0 "
            "(build it as L @ L.mT, or pass standard deviations instead)"
        )
    degenerate = lam_min <= rtol * scale
    return Spectrum(eigvals.clamp_min(0.0), eigvecs, degenerate)


def spectral_log_normal(z: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Gaussian log-density from whitened coordinates along the last axis.

    ``log N(d; 0, V diag(var) V^T) = -(sum z^2 / var + sum log var + D log 2 pi) / 2``,
    with ``z = V^T d``.
    """
    dim = z.shape[-1]
    return -0.5 * ((z.square() / var).sum(-1) + var.log().sum(-1) + dim * _LOG_2PI)
