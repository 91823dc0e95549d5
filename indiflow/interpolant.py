"""The InDI forward process ``x_t = (1 - t) x + t y + t * eps_t * eta``.

Two noise schedules are offered besides none: ``ConstantNoise`` (``eps_t = eps``, noise std
``t * eps``) and ``BrownianNoise`` (``eps_t = eps0 / sqrt(t)``, noise std ``eps0 * sqrt(t)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from indiflow._checks import (
    batch_times,
    check_generator,
    check_nonnegative,
    check_same_shape,
    check_tensor,
    expand_times,
)


@dataclass(frozen=True)
class ConstantNoise:
    """``eps_t = eps``: noise of std ``t * eps`` in ``x_t``; no extra noise while sampling."""

    eps: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", check_nonnegative("ConstantNoise eps", self.eps))

    def eps_at(self, t: float | torch.Tensor) -> float | torch.Tensor:
        """``eps_t`` (the per-unit-time noise level)."""
        return self.eps + 0.0 * t if isinstance(t, torch.Tensor) else self.eps

    def std(self, t: float | torch.Tensor) -> float | torch.Tensor:
        """Std of the noise in ``x_t``: ``t * eps_t``."""
        return t * self.eps


@dataclass(frozen=True)
class BrownianNoise:
    """``eps_t = eps0 / sqrt(t)``: noise of std ``eps0 * sqrt(t)``, a Brownian bridge in ``t``."""

    eps0: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps0", check_nonnegative("BrownianNoise eps0", self.eps0))

    def eps_at(self, t: float | torch.Tensor) -> float | torch.Tensor:
        if isinstance(t, torch.Tensor):
            return self.eps0 / torch.sqrt(t)
        return self.eps0 / math.sqrt(t)

    def std(self, t: float | torch.Tensor) -> float | torch.Tensor:
        if isinstance(t, torch.Tensor):
            return self.eps0 * torch.sqrt(t)
        return self.eps0 * math.sqrt(t)


NoiseSchedule = ConstantNoise | BrownianNoise


@dataclass(frozen=True)
class InterpolantSample:
    """One draw of the forward process; ``t`` has shape ``(B,)``."""

    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    x_t: torch.Tensor


@dataclass(frozen=True)
class Interpolant:
    """The pair interpolation ``x_t = (1 - t) x + t y`` plus optional noise ``t * eps_t * eta``."""

    noise: NoiseSchedule | None = None

    def __post_init__(self) -> None:
        if self.noise is not None and not isinstance(self.noise, ConstantNoise | BrownianNoise):
            raise TypeError(
                "noise must be None, indiflow.ConstantNoise(eps) or indiflow.BrownianNoise(eps0), "
                f"got {type(self.noise).__name__}"
            )

    def std(self, t: float | torch.Tensor) -> float | torch.Tensor:
        """Std of the injected noise at time ``t`` (0 without a schedule)."""
        return 0.0 * t if self.noise is None else self.noise.std(t)

    def sample(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        t: float | torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> InterpolantSample:
        """Draw ``x_t`` for clean ``x`` and degraded ``y`` of shape ``(B, *dims)``.

        ``t`` is a float or a ``(B,)`` tensor with values in ``[0, 1]``.
        """
        check_tensor("x", x)
        check_tensor("y", y)
        check_same_shape("x", x, "y", y)
        check_generator(generator)
        t_vec = batch_times(t, x)
        if bool(((t_vec < 0) | (t_vec > 1) | ~torch.isfinite(t_vec)).any()):
            raise ValueError("t must lie in [0, 1]; got values outside it")
        tb = expand_times(t_vec, x)
        x_t = (1 - tb) * x + tb * y
        if self.noise is not None:
            eta = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x_t = x_t + self.noise.std(tb) * eta
        return InterpolantSample(x=x, y=y, t=t_vec, x_t=x_t)
