"""The differentiable objective of ``design_solver``: grid parametrisation, solve, loss, Adam.

A grid from ``t_0`` to 0 with ``n`` steps is parametrised without constraints by
``t_0 = exp(-|v|)`` and the log-gaps ``log(t_{i-1} / t_i) = min_gap + exp(z_i)``, which keeps
every candidate a valid decreasing grid; the solve loop here passes these times to the solvers
as tensors, so autograd differentiates the endpoint through every step and regressor call.
"""

from __future__ import annotations

import math

import torch

from indiflow.controllers import FixedSteps
from indiflow.designed_solver import DesignedSolver, decoupled_step
from indiflow.field import InDIField
from indiflow.grid import TimeGrid
from indiflow.solve import solve
from indiflow.solvers import Solver


def grid_params(grid: TimeGrid, min_gap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z, v)`` with ``grid_nodes(z, v) == grid`` (gaps below ``min_gap`` are raised to it)."""
    ts = torch.tensor(grid.ts[:-1], dtype=torch.float64)
    gaps = -torch.diff(ts.log())
    z = torch.log((gaps - min_gap).clamp_min(1e-6))
    v = torch.tensor(max(-math.log(grid.ts[0]), 1e-4), dtype=torch.float64)  # |v| = 0: no slope
    return z, v


def grid_nodes(
    z: torch.Tensor, v: torch.Tensor | None, min_gap: float
) -> list[float | torch.Tensor]:
    """``t_0 = exp(-|v|)`` (1 without ``v``), ``t_i = t_{i-1} exp(-min_gap - exp(z_i))``, 0."""
    t0 = torch.exp(-v.abs()) if v is not None else torch.ones((), dtype=torch.float64)
    inner = t0 * torch.exp(-torch.cumsum(min_gap + torch.exp(z), 0))
    first: float | torch.Tensor = t0 if v is not None else 1.0
    return [first, *inner.unbind(), 0.0]


def as_floats(nodes: list[float | torch.Tensor]) -> list[float]:
    return [float(t) for t in nodes]


def differentiable_solve(
    field: InDIField,
    solver: Solver,
    y: torch.Tensor,
    times: list[float | torch.Tensor],
    evaluation_times: list[float | torch.Tensor] | None,
) -> tuple[torch.Tensor, int]:
    """The fixed-grid solve with tensor times (differentiable in them); ``(x, evaluations)``."""
    x, denoised, state, nfe = y, None, None, 0
    for i in range(len(times) - 1):
        at = evaluation_times[i] if evaluation_times is not None else times[i]
        if denoised is None:
            denoised = field.denoise(at.to(y.dtype) if isinstance(at, torch.Tensor) else at, x)
            nfe += 1
        if evaluation_times is None:
            result = solver.step(field, times[i], times[i + 1], x, denoised, state, False)
        else:
            pair = (evaluation_times[i], evaluation_times[i + 1])
            result = decoupled_step(
                solver, field, (times[i], times[i + 1]), pair, x, denoised, state
            )
        nfe += result.nfe
        x, denoised, state = result.x, result.denoised_next, result.state
    return x, nfe * y.shape[0]


def power_loss(x: torch.Tensor, reference: torch.Tensor, power: float) -> torch.Tensor:
    """``mean_i e_i^p`` (the ``p``-th power of ``L_p``) over per-sample Euclidean errors."""
    squared = (x - reference).double().flatten(1).square().sum(dim=1)
    return (squared + 1e-300).pow(power / 2).mean()  # + tiny: a finite slope where e_i = 0


class Adam:
    """Adam (Kingma & Ba, 2015) with the default betas, on a list of float64 tensors.

    Written out rather than ``torch.optim.Adam``, whose first construction imports the compiler
    stack (tens of seconds on a loaded machine) for a dozen scalars.
    """

    def __init__(self, variables: list[torch.Tensor], scales: list[float] | None = None) -> None:
        self.variables = variables
        self.scales = scales if scales is not None else [1.0] * len(variables)
        self.m = [torch.zeros_like(p) for p in variables]
        self.v = [torch.zeros_like(p) for p in variables]
        self.count = 0

    def step(self, grads: tuple[torch.Tensor | None, ...], lr: float) -> None:
        if not all(g is None or bool(torch.isfinite(g).all()) for g in grads):
            return
        self.count += 1
        b1, b2 = 0.9, 0.999
        with torch.no_grad():
            for p, g, m, v, scale in zip(
                self.variables, grads, self.m, self.v, self.scales, strict=True
            ):
                if g is None:
                    continue
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat, v_hat = m / (1 - b1**self.count), v / (1 - b2**self.count)
                p.sub_(scale * lr * m_hat / (v_hat.sqrt() + 1e-8))


def measure_design(
    field: InDIField, solver: Solver, grid: TimeGrid, y: torch.Tensor, ref: torch.Tensor, p: float
) -> tuple[float, float, int]:
    """``(L_p, RMS, evaluations)`` of ``solve`` on the whole pilot batch; inf if it blows up."""
    try:
        sol = solve(field, solver, y, FixedSteps(grid))
    except RuntimeError:  # non-finite values on a candidate grid
        return math.inf, math.inf, 0
    loss = float(power_loss(sol.x, ref, p)) ** (1 / p)
    rms = float((sol.x - ref).double().flatten(1).square().sum(dim=1).mean().sqrt())
    return loss, rms, sol.stats.rows


def design_candidate(
    solver: Solver, taus: list[float], evals: list[float] | None
) -> tuple[Solver, TimeGrid]:
    """The solver and grid of a candidate: plain, or with decoupled regressor times."""
    if evals is None:
        return solver, TimeGrid(taus)
    return DesignedSolver(solver, tuple(taus), tuple(evals)), TimeGrid(evals)
