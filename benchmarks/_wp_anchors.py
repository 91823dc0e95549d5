"""The anchors of the work-precision benchmark: torchdiffeq and k-diffusion on the same field.

Both run on the same regressor ``F(x_t, t)`` as indiflow, wrapped to count calls (every call
sees the whole batch, so evaluations per sample = calls):

* torchdiffeq integrates ``dx/dt = (x - F) / t``. Its fixed-grid RK methods would evaluate a
  stage at ``t = 0`` (rk4's last one), where the field is singular, so every torchdiffeq run
  stops at ``t_min > 0`` and finishes with the limit step ``x(0) ≈ F(x(t_min), t_min)`` (one
  more evaluation), except Euler and midpoint, which also run on grids that end at 0 (their
  stages stay at ``t > 0``). Adaptive runs integrate ``[1, t_min]`` with ``rtol = atol``.
* k-diffusion's samplers take the denoiser ``D(x, sigma) = F(x, t = sigma)`` (the VE
  probability-flow ODE in ``sigma = t``; DESIGN §1) and a decreasing ``sigmas`` ending at 0.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from functools import partial

import torch
import torchdiffeq
from _wp_fields import Job, Problem

Regressor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Counted:
    """A regressor wrapper that counts calls and evaluated rows."""

    def __init__(self, regressor: Regressor) -> None:
        self.regressor = regressor
        self.calls = 0
        self.rows = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.rows += x.shape[0]
        return self.regressor(x, t)

    def per_sample(self, batch: int) -> float:
        return self.rows / batch


def _times(t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=x.dtype)
    return t.expand(x.shape[0]) if t.dim() == 0 else t


def torchdiffeq_fixed(
    regressor: Regressor, y: torch.Tensor, method: str, ts: list[float]
) -> tuple[torch.Tensor, float]:
    """``method`` on the grid ``ts`` (from 1); a positive last time gets the limit step."""
    counted = Counted(regressor)

    def func(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (x - counted(x, _times(t, x))) / t

    grid = torch.tensor(ts, dtype=y.dtype)
    x = torchdiffeq.odeint(func, y, grid, method=method)[-1]
    if ts[-1] > 0:
        x = counted(x, _times(ts[-1], x))
    return x, counted.per_sample(y.shape[0])


def torchdiffeq_adaptive(
    regressor: Regressor, y: torch.Tensor, method: str, tol: float, t_min: float
) -> tuple[torch.Tensor, float]:
    """``method`` with ``rtol = atol = tol`` on ``[1, t_min]``, then the limit step.

    torchdiffeq's default error norm (one RMS over the whole batch) is kept, as a user would.
    """
    counted = Counted(regressor)

    def func(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (x - counted(x, _times(t, x))) / t

    grid = torch.tensor([1.0, t_min], dtype=y.dtype)
    # Without step_t the adaptive methods step past t_min (to t < 0) and interpolate back.
    options = {"step_t": torch.tensor([t_min], dtype=y.dtype)}
    x = torchdiffeq.odeint(func, y, grid, method=method, rtol=tol, atol=tol, options=options)[-1]
    x = counted(x, _times(t_min, x))
    return x, counted.per_sample(y.shape[0])


def kdiffusion_sample(
    sampling: types.ModuleType, regressor: Regressor, y: torch.Tensor, name: str,
    sigmas: torch.Tensor,
) -> tuple[torch.Tensor, float]:  # fmt: skip
    """k-diffusion's ``sample_<name>`` with ``D(x, sigma) = F(x, sigma)``."""
    counted = Counted(regressor)

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return counted(x, sigma.to(x.dtype))

    sampler = getattr(sampling, f"sample_{name}")
    x = sampler(denoiser, y.clone(), sigmas.to(y.dtype), disable=True)
    return x, counted.per_sample(y.shape[0])


def karras_sigmas(
    sampling: types.ModuleType, n: int, sigma_min: float, rho: float = 7.0
) -> torch.Tensor:
    """k-diffusion's Karras et al. (2022) schedule from 1 to ``sigma_min``, then 0."""
    return sampling.get_sigmas_karras(n, sigma_min, 1.0, rho=rho).double()


def uniform_sigmas(n: int) -> torch.Tensor:
    """``1, 1 - 1/n, ..., 0``."""
    return torch.linspace(1.0, 0.0, n + 1, dtype=torch.float64)


def _fixed_job(method: str, ts: list[float], problem: Problem) -> tuple[torch.Tensor, float]:
    return torchdiffeq_fixed(problem.regressor, problem.y, method, ts)


def _adaptive_job(
    method: str, tol: float, t_min: float, problem: Problem
) -> tuple[torch.Tensor, float]:
    return torchdiffeq_adaptive(problem.regressor, problem.y, method, tol, t_min)


def _kdiffusion_job(
    sampling: types.ModuleType, name: str, sigmas: torch.Tensor, problem: Problem
) -> tuple[torch.Tensor, float]:
    return kdiffusion_sample(sampling, problem.regressor, problem.y, name, sigmas)


def anchor_jobs(
    sampling: types.ModuleType | None, steps: tuple[int, ...], tols: tuple[float, ...],
    max_evals: int,
) -> list[Job]:  # fmt: skip
    """Every anchor configuration with at most ``max_evals`` evaluations per sample.

    torchdiffeq euler / midpoint / rk4 on uniform grids (ending at 0, or at ``t_min`` followed
    by the limit step), dopri5 / bosh3 adaptive to ``t_min`` then the limit step; k-diffusion
    euler / heun / dpm_2 / lms / dpmpp_2m on uniform and Karras (rho = 7) sigmas.
    """
    jobs = []
    for method, per_step in {"euler": 1, "midpoint": 2, "rk4": 4}.items():
        ends = (1e-3, 1e-2, 3e-2) if method == "rk4" else (0.0, 1e-3, 1e-2)
        for t_min in ends:
            for n in steps:
                if per_step * n + (t_min > 0) > max_evals:
                    break
                ts = [1.0 - (1.0 - t_min) * i / n for i in range(n + 1)]
                run = partial(_fixed_job, method, ts)
                jobs.append(Job("torchdiffeq", method, f"uniform to {t_min:g}", str(n), run))
    for method in ("dopri5", "bosh3"):
        for t_min in (1e-3, 1e-4):
            for tol in tols:
                run = partial(_adaptive_job, method, tol, t_min)
                jobs.append(Job("torchdiffeq", method, f"adaptive to {t_min:g}", f"{tol:g}", run))
    if sampling is None:
        return jobs
    for name, per_step in {"euler": 1, "heun": 2, "dpm_2": 2, "lms": 1, "dpmpp_2m": 1}.items():
        for n in steps:
            if per_step * n > max_evals:
                break
            grids = {"uniform": uniform_sigmas(n)}
            for sigma_min in (1e-3, 1e-2, 3e-2):
                grids[f"karras {sigma_min:g}"] = karras_sigmas(sampling, n, sigma_min)
            for label, sigmas in grids.items():
                run = partial(_kdiffusion_job, sampling, name, sigmas)
                jobs.append(Job("k-diffusion", name, label, str(n), run))
    return jobs
