"""Restore degraded toy samples with a regressor and score the result.

``restore`` runs deterministic InDI (``indiflow.solve`` on ``TimeGrid.uniform(n)``) or, for a
noise schedule, stochastic InDI (``indiflow.sample_stochastic``). ``score`` gathers the
distortion and perception metrics of :mod:`toy.metrics` for one restored cloud.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import indiflow as ind
from toy.metrics import energy_distance, mse, nearest_mode_distance, sliced_wasserstein

Regressor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# CLI / table names of the solvers compared in the sweeps.
SOLVERS: dict[str, ind.Euler | ind.Heun | ind.BogackiShampine | ind.DormandPrince] = {
    "euler": ind.Euler(),
    "heun": ind.Heun(),
    "bs3": ind.BogackiShampine(),
    "dopri5": ind.DormandPrince(),
}


def restore(
    regressor: Regressor,
    y: torch.Tensor,
    n_steps: int,
    solver: object | None = None,
    noise: ind.ConstantNoise | ind.BrownianNoise | None = None,
    generator: torch.Generator | None = None,
    save_trajectory: bool = False,
) -> ind.Solution:
    """InDI from ``y`` at ``t = 1`` to ``t = 0`` in ``n_steps`` uniform steps (no gradients)."""
    grid = ind.TimeGrid.uniform(n_steps)
    solver = ind.Euler() if solver is None else solver
    with torch.no_grad():
        if noise is None:
            field = ind.InDIField(regressor)
            return ind.solve(field, solver, y, ind.FixedSteps(grid), save_trajectory)
        if not isinstance(solver, ind.Euler):
            raise ValueError("stochastic InDI is an Euler scheme; pass solver=None or ind.Euler()")
        return ind.sample_stochastic(regressor, y, grid, noise, generator, save_trajectory)


def score(
    x_hat: torch.Tensor, x: torch.Tensor, modes: torch.Tensor | None, seed: int = 0
) -> dict[str, float]:
    """Distortion (MSE to the paired ``x``) and perception (law distances to the ``x`` cloud)."""
    out = {
        "mse": mse(x_hat, x),
        "sw1": sliced_wasserstein(x_hat, x, generator=torch.Generator().manual_seed(seed)),
        "energy": energy_distance(x_hat, x),
    }
    if modes is not None:
        out["nearest_mode"] = nearest_mode_distance(x_hat, modes)
    return out


def law_gap(a: torch.Tensor, b: torch.Tensor, paired: bool, seed: int = 0) -> dict[str, float]:
    """SW1 and energy distance between two restored clouds (e.g. network against oracle).

    With ``paired`` (row ``i`` of both restores the same input), also the mean distance
    ``E ||a_i - b_i||``: the cost of one coupling, hence an upper bound on ``W1`` between the two
    restored laws that carries no finite-sample floor.
    """
    out = {
        "sw1": sliced_wasserstein(a, b, generator=torch.Generator().manual_seed(seed)),
        "energy": energy_distance(a, b),
    }
    if paired:
        out["coupling_w1_bound"] = float((a - b).double().norm(dim=1).mean())
    return out
