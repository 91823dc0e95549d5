"""Test problems with exact solutions, shared by the solver and controller tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch

import indiflow as ind


@dataclass(frozen=True)
class GaussianProblem:
    """One Gaussian prior ``N(mean, cov)``, ``H = I``, noise ``sigma``: closed-form trajectory."""

    mean: torch.Tensor
    cov: torch.Tensor
    sigma: float

    @classmethod
    def default(cls, dtype: torch.dtype = torch.float64) -> GaussianProblem:
        mean = torch.tensor([0.5, -0.3], dtype=dtype)
        cov = torch.tensor([[0.08, 0.03], [0.03, 0.3]], dtype=dtype)
        return cls(mean=mean, cov=cov, sigma=1.0)

    def regressor(self) -> ind.oracles.PosteriorMean:
        prior = ind.oracles.GaussianMixture(self.mean[None], self.cov[None])
        eye = torch.eye(self.mean.shape[0], dtype=self.mean.dtype)
        return ind.oracles.PosteriorMean(prior, ind.oracles.LinearDegradation(eye, self.sigma))

    def field(self) -> ind.InDIField:
        return ind.InDIField(self.regressor())

    def inputs(self, n: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.mean.shape[0], generator=g, dtype=self.mean.dtype)
        return self.mean + 1.5 * z

    def exact(self, y: torch.Tensor, t: float) -> torch.Tensor:
        return ind.oracles.gaussian_trajectory(y, t, self.mean, self.cov, self.sigma)


class RecordingRegressor:
    """Wraps a regressor and records every time it is called at."""

    def __init__(self, regressor) -> None:
        self.regressor = regressor
        self.times: list[torch.Tensor] = []
        self.rows = 0

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.times.append(t.detach().clone())
        self.rows += x_t.shape[0]
        return self.regressor(x_t, t)

    def all_times(self) -> torch.Tensor:
        return torch.cat(self.times) if self.times else torch.empty(0)


def constant_regressor(c: torch.Tensor):
    """``F = c``: every solver is exact, ``x(t) = c + t (y - c)``."""

    def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return c.expand_as(x_t)

    return regressor


def algorithm1(regressor, y: torch.Tensor, n: int) -> torch.Tensor:
    """The paper's Algorithm 1, written plainly: ``x <- (d/t) F(x, t) + (1 - d/t) x``."""
    x = y
    d = 1.0 / n
    for i in range(n):
        t = 1.0 - i * d
        f = regressor(x, torch.full((x.shape[0],), t, dtype=x.dtype))
        x = (d / t) * f + (1 - d / t) * x
    return x
