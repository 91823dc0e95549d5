"""A 2-D Gaussian case with an exact regressor and exact limit, shared by the design tests."""

from __future__ import annotations

import torch

MEAN = torch.tensor([0.5, -0.3], dtype=torch.float64)
COV = torch.tensor([[0.02, 0.01], [0.01, 0.1]], dtype=torch.float64)
EIGVALS, EIGVECS = torch.linalg.eigh(COV)


def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact ``F`` for ``N(MEAN, COV)``, ``H = I``, sigma 1 (differentiable in x_t and t)."""
    gain = EIGVALS / (EIGVALS + t[:, None] ** 2)
    return MEAN + ((x_t - MEAN) @ EIGVECS * gain) @ EIGVECS.mT


def exact_limit(y: torch.Tensor) -> torch.Tensor:
    """``x(0) = mu + C^{1/2} (C + I)^{-1/2} (y - mu)``."""
    gain = (EIGVALS / (EIGVALS + 1.0)).sqrt()
    return MEAN + ((y - MEAN) @ EIGVECS * gain) @ EIGVECS.mT


def batch(n: int, seed: int) -> torch.Tensor:
    """``n`` float64 inputs around ``MEAN`` (standard normal offsets, seeded)."""
    g = torch.Generator().manual_seed(seed)
    return MEAN + torch.randn(n, 2, generator=g, dtype=torch.float64)
