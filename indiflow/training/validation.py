"""Validation: PSNR of restorations of the held-out batch after 1 and after N Euler steps."""

from __future__ import annotations

import torch
from torch import nn

from indiflow.controllers import FixedSteps
from indiflow.grid import TimeGrid
from indiflow.interpolant import BrownianNoise, ConstantNoise
from indiflow.solvers import Euler


def validation_columns(steps: int) -> list[str]:
    """The metric names :func:`validate` returns: ``val_psnr_1`` and ``val_psnr_{steps}``."""
    return [f"val_psnr_{n}" for n in sorted({1, steps})]


@torch.no_grad()
def validate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    noise: ConstantNoise | BrownianNoise | None,
    steps: int,
    seed: int,
) -> dict[str, float]:
    """Mean PSNR (dB) over the batch of ``ind.restore`` with Euler on ``TimeGrid.uniform(n)``.

    ``n`` is 1 and ``steps``. Restoration starts from ``y`` plus the training's interpolant
    noise, drawn from a generator seeded with ``seed`` (the same draw at every validation);
    restored images are clipped to [0, 1] before ``ind.metrics.psnr``.
    """
    from indiflow.metrics import psnr
    from indiflow.restoration import restore

    results = {}
    for n, column in zip(sorted({1, steps}), validation_columns(steps), strict=True):
        generator = torch.Generator(device=y.device).manual_seed(seed)
        restored = restore(
            model, y, Euler(), FixedSteps(TimeGrid.uniform(n)), noise=noise, generator=generator
        )
        results[column] = float(psnr(restored.clamp(0, 1), x).mean())
    return results
