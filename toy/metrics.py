"""Distortion and perception metrics for 2-D point clouds, in torch.

* ``mse``: mean over samples of ``||x_hat - x||^2`` (distortion against the true ``x``).
* ``sliced_wasserstein``: ``SW_p(P, Q) = (E_theta W_p^p(theta.P, theta.Q))^(1/p)`` over unit
  directions ``theta`` (evenly spaced in 2-D, random otherwise); each 1-D ``W_p`` compares
  sorted projections (equal sample sizes).
  The default ``p = 1`` grows linearly with misplaced mass; ``p = 2`` grows like its square
  root, so its finite-sample floor on discrete (Dirac) laws is large (about 0.1 for 4000 points
  on the four modes at (±1, ±1)) and hides differences the restorations care about.
* ``energy_distance``: ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (unbiased U-statistics); zero iff
  the laws agree, so it may come out slightly negative for two samples of one law.
* ``nearest_mode_distance``: mean over samples of the distance to the closest mode (Dirac priors:
  0 means every restoration sits on a mode).
"""

from __future__ import annotations

import torch


def _check_clouds(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"point clouds must have shapes (n, d) and (m, d), got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def mse(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    """``mean_i ||x_hat_i - x_i||^2``."""
    _check_clouds(x_hat, x)
    return float((x_hat - x).double().square().sum(1).mean())


def _directions(d: int, n_proj: int, generator: torch.Generator | None) -> torch.Tensor:
    """Unit directions, shape ``(n_proj, d)``: evenly spaced half-circle angles in 2-D (an exact
    quadrature of the angular mean, no randomness), Gaussian draws normalised otherwise."""
    if d == 2:
        angle = torch.pi * torch.arange(n_proj, dtype=torch.float64) / n_proj
        return torch.stack([angle.cos(), angle.sin()], dim=1)
    theta = torch.randn(n_proj, d, generator=generator, dtype=torch.float64)
    return theta / theta.norm(dim=1, keepdim=True)


def sliced_wasserstein(
    a: torch.Tensor,
    b: torch.Tensor,
    p: int = 1,
    n_proj: int = 64,
    generator: torch.Generator | None = None,
) -> float:
    """Sliced ``p``-Wasserstein distance between two equally sized clouds of shape ``(n, d)``."""
    _check_clouds(a, b)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"sliced_wasserstein needs equal sizes, got {a.shape[0]} and {b.shape[0]}")
    theta = _directions(a.shape[1], n_proj, generator)
    # Sorting along the last (contiguous) dimension is several times faster than along the first.
    pa = (theta @ a.double().T).sort(dim=1).values
    pb = (theta @ b.double().T).sort(dim=1).values
    return float((pa - pb).abs().pow(p).mean().pow(1.0 / p))


def _mean_distance(a: torch.Tensor, b: torch.Tensor, same: bool) -> torch.Tensor:
    # float32 distances (3x faster than float64 here) summed in float64: the energy distance is
    # a small difference of O(1) means, and float32 rounding stays near 1e-7 relative.
    dist = torch.cdist(a.float(), b.float()).double().sum()
    n, m = a.shape[0], b.shape[0]
    return dist / (n * (n - 1)) if same else dist / (n * m)


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` with unbiased within-sample terms."""
    _check_clouds(a, b)
    n, m = a.shape[0], b.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"energy_distance needs at least 2 points per cloud, got {n} and {m}")
    cross = _mean_distance(a, b, same=False)
    return float(2 * cross - _mean_distance(a, a, same=True) - _mean_distance(b, b, same=True))


def nearest_mode_distance(x: torch.Tensor, modes: torch.Tensor) -> float:
    """``mean_i min_k ||x_i - mu_k||``."""
    _check_clouds(x, modes)
    return float(torch.cdist(x.double(), modes.double()).min(dim=1).values.mean())


def nearest_mode_index(x: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Index of the closest mode for every sample, shape ``(n,)``."""
    _check_clouds(x, modes)
    return torch.cdist(x.double(), modes.double()).argmin(dim=1)
