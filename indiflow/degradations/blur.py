"""Gaussian (defocus-like) blur with reflect padding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from indiflow._checks import check_positive
from indiflow.degradations.base import ImageDegradation, check_odd_size
from indiflow.degradations.padding import pad_reflect

# Default kernel radius in units of sigma, scipy.ndimage.gaussian_filter's default `truncate`.
TRUNCATE = 4.0


@dataclass(frozen=True)
class GaussianBlur(ImageDegradation):
    """Separable Gaussian blur ``y = g * x`` (per channel), no clipping, no randomness.

    The 1-D kernel is ``g_k = exp(-k^2 / (2 sigma^2)) / sum_j exp(-j^2 / (2 sigma^2))`` for
    ``k = -r, ..., r``, applied along rows, then columns. The default radius is
    ``r = floor(4 sigma + 1/2)`` (``size = 2 r + 1``), scipy's default truncation; an explicit
    odd ``size`` sets ``r = (size - 1) / 2``. The image is padded by ``r`` with half-sample
    symmetric reflection (``d c b a | a b c d``), so the result equals
    ``scipy.ndimage.gaussian_filter(x, sigma, mode='reflect', truncate=r / sigma)`` applied over
    the two spatial axes, to float rounding. Values stay in ``[0, 1]`` (a convex combination).

    Args:
        sigma: standard deviation in pixels, ``> 0``.
        size: odd kernel side ``>= 1``, or ``None`` for ``2 floor(4 sigma + 1/2) + 1``.
    """

    sigma: float
    size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_positive("GaussianBlur sigma", self.sigma))
        if self.size is not None:
            check_odd_size("GaussianBlur size", self.size, 1)

    @property
    def radius(self) -> int:
        """Kernel radius ``r``: the kernel has ``2 r + 1`` taps."""
        if self.size is None:
            return math.floor(TRUNCATE * self.sigma + 0.5)
        return (self.size - 1) // 2

    def kernel(self) -> torch.Tensor:
        """The normalised 1-D kernel ``g`` as a float64 tensor of ``2 r + 1`` taps."""
        offsets = torch.arange(-self.radius, self.radius + 1, dtype=torch.float64)
        weights = torch.exp(-0.5 * (offsets / self.sigma) ** 2)
        return weights / weights.sum()

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        batch, channels, height, width = x.shape
        r = self.radius
        g = self.kernel().to(dtype=x.dtype, device=x.device)
        planes = pad_reflect(x.reshape(batch * channels, 1, height, width), r, r)
        planes = F.conv2d(planes, g.reshape(1, 1, -1, 1))
        planes = F.conv2d(planes, g.reshape(1, 1, 1, -1))
        return planes.reshape(batch, channels, height, width)
