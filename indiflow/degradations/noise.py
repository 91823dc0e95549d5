"""Additive white Gaussian noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from indiflow._checks import check_positive
from indiflow.degradations.base import ImageDegradation


@dataclass(frozen=True)
class GaussianNoise(ImageDegradation):
    """``y = x + sigma n``, ``n ~ N(0, I)`` i.i.d. over every pixel and channel.

    ``n`` is ``torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)``, so the
    generator must live on ``x``'s device. Without clipping (the default) ``y`` leaves ``[0, 1]``
    and the noise stays exactly Gaussian, as in the InDI denoising set-up; with ``clip=True``,
    ``y = clip(x + sigma n, 0, 1)`` like a sensor saturating.

    Args:
        sigma: noise standard deviation on the ``[0, 1]`` scale, ``> 0`` (``25 / 255`` is the
            common "sigma = 25" benchmark).
        clip: clamp ``y`` to ``[0, 1]``.
    """

    sigma: float
    clip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_positive("GaussianNoise sigma", self.sigma))
        if not isinstance(self.clip, bool):
            raise TypeError(f"GaussianNoise clip must be a bool, got {self.clip!r}")

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        y = x + self.sigma * noise
        return y.clamp(0, 1) if self.clip else y
