"""Priors, degradations and noise schedules shared by the oracle tests and benchmarks."""

from __future__ import annotations

import torch

import indiflow as ind
from indiflow.oracles import GaussianMixture

DT = torch.float64

SIGMA = 0.6

H_GENERAL = [[0.8, 0.3], [-0.4, 0.6]]


def make_prior(kind: str, dtype: torch.dtype = DT) -> GaussianMixture:
    """Three components in 2D: full covariances, isotropic stds, or Dirac modes."""
    means = torch.tensor([[1.0, 0.5], [-1.0, 1.0], [0.2, -1.2]], dtype=dtype)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=dtype)
    if kind == "full":
        covs = torch.tensor(
            [[[0.3, 0.1], [0.1, 0.2]], [[0.1, -0.05], [-0.05, 0.4]], [[0.25, 0.0], [0.0, 0.05]]],
            dtype=dtype,
        )
    elif kind == "iso":
        covs = torch.tensor([0.3, 0.5, 0.2], dtype=dtype)
    else:
        covs = 0.0
    return GaussianMixture(means, covs, weights)


def make_h(kind: str) -> torch.Tensor | None:
    return {"identity": None, "erase": torch.diag(torch.tensor([1.0, 0.0], dtype=DT))}.get(
        kind, torch.tensor(H_GENERAL, dtype=DT)
    )


NOISES = {"none": None, "constant": ind.ConstantNoise(0.3), "brownian": ind.BrownianNoise(0.3)}


def a_matrix(h: torch.Tensor | None, t: float) -> torch.Tensor:
    eye = torch.eye(2, dtype=DT)
    return eye if h is None else (1 - t) * eye + t * h


def r_squared(sigma: float, noise: object, t: float) -> float:
    eps_t = 0.0 if noise is None else float(noise.eps_at(t))
    return t * t * (sigma * sigma + eps_t * eps_t)
