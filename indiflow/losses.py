"""The InDI training loss ``E_{x,y} E_{t ~ p(t)} || F(x_t, t) - x ||``.

``x_t`` comes from an :class:`~indiflow.interpolant.Interpolant` (with or without noise) and ``t``
from a time law (:mod:`indiflow.time_laws`). The squared L2 norm makes the minimiser the
posterior mean ``E[x | x_t]`` (what the InDI ODE needs); the L1 norm makes it the
coordinate-wise posterior median.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from indiflow._checks import check_generator, check_same_shape, check_tensor
from indiflow.interpolant import Interpolant
from indiflow.time_laws import TimeLaw, UniformTime, check_time_law

Regressor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Norm = Literal["l1", "l2"]

_NORMS = ("l1", "l2")


def indi_loss(
    regressor: Regressor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    interpolant: Interpolant | None = None,
    time_law: TimeLaw | None = None,
    norm: Norm = "l2",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Monte Carlo estimate of the InDI loss on one batch of pairs.

    ``L = mean_b || F(x_t^b, t^b) - x^b ||``, with ``t^b ~ p(t)`` and ``x_t`` from the interpolant;
    ``"l2"`` is the squared Euclidean norm over all non-batch dimensions, ``"l1"`` the sum of
    absolute values.

    Args:
        regressor: ``F(x_t, t)`` with ``t`` of shape ``(B,)``; returns a tensor shaped like ``x``.
        x: clean samples, shape ``(B, *dims)`` with ``B >= 1`` and at least one ``dims``
            entry (a batch of scalars is ``(B, 1)``).
        y: degraded samples, same shape as ``x``.
        interpolant: the forward process (default: ``Interpolant()``, no noise).
        time_law: the law of ``t`` (default: ``UniformTime()``).
        norm: ``"l2"`` (squared, minimiser ``E[x | x_t]``) or ``"l1"``.
        generator: optional ``torch.Generator`` driving the draws of ``t`` and of the noise.

    Returns:
        A scalar tensor, differentiable with respect to the regressor's parameters.

    Raises:
        TypeError: a non-callable regressor, a non-tensor input, a wrong interpolant or law.
        ValueError: an unknown norm, ``x`` of rank below 2 or with an empty batch, mismatched
            ``x`` / ``y`` shapes, or a regressor output that is not a tensor shaped like ``x``.
    """
    if not callable(regressor):
        raise TypeError(
            f"regressor must be callable as regressor(x_t, t), got {type(regressor).__name__}"
        )
    for name, value in (("x", x), ("y", y)):
        check_tensor(name, value, min_dim=0)
        if value.dim() < 2:
            raise ValueError(
                f"{name} must have shape (B, *dims), batch first and at least one dimension "
                f"after it, got shape {tuple(value.shape)}; a batch of B scalars is (B, 1): "
                f"pass {name}[:, None]"
            )
    check_same_shape("x", x, "y", y)
    if x.shape[0] == 0:
        raise ValueError(
            f"x and y hold no samples (shape {tuple(x.shape)}): the loss is a mean over the "
            "batch, so pass at least one pair"
        )
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    interpolant = Interpolant() if interpolant is None else interpolant
    if not isinstance(interpolant, Interpolant):
        raise TypeError(
            f"interpolant must be an indiflow.Interpolant, got {type(interpolant).__name__}"
        )
    time_law = check_time_law(UniformTime() if time_law is None else time_law)
    check_generator(generator)

    t = time_law.sample(x.shape[0], generator, dtype=x.dtype, device=x.device)
    draw = interpolant.sample(x, y, t, generator=generator)
    estimate = regressor(draw.x_t, draw.t)
    if not isinstance(estimate, torch.Tensor) or estimate.shape != x.shape:
        got = (
            tuple(estimate.shape) if isinstance(estimate, torch.Tensor) else type(estimate).__name__
        )
        raise ValueError(
            f"regressor(x_t, t) must return a tensor of the shape of x {tuple(x.shape)}, got {got}"
        )
    residual = (estimate - x).flatten(1)
    per_sample = residual.square().sum(1) if norm == "l2" else residual.abs().sum(1)
    return per_sample.mean()
