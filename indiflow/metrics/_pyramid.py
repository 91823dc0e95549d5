"""Laplacian pyramid with the 5 x 5 binomial kernel, as in Karras et al.'s SWD (ICLR 2018).

``down(u) = (k * u)[::2, ::2]`` and ``up(v) = (4 k * zero_stuff(v))`` cropped to the finer
size, where ``k = b bᵀ / 256`` with ``b = (1, 4, 6, 4, 1)`` and ``*`` is convolution with mirror
padding (reflection about the edge pixel, ``scipy.ndimage``'s ``mode="mirror"``, torch's
``"reflect"``). For even sizes this matches ``cv2.pyrDown`` / ``cv2.pyrUp`` up to their border
rule. Level ``i < L - 1`` is ``g_i - up(g_{i+1})`` with ``g_0 = u`` and ``g_{i+1} = down(g_i)``;
the last level is the low-pass ``g_{L-1}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_TAPS = (1.0, 4.0, 6.0, 4.0, 1.0)


def _kernel(channels: int, like: torch.Tensor) -> torch.Tensor:
    taps = torch.tensor(_TAPS, dtype=like.dtype, device=like.device)
    kernel = taps[:, None] * taps[None, :] / 256.0
    return kernel.expand(channels, 1, 5, 5)


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, gain * _kernel(x.shape[1], x), groups=x.shape[1])


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur with the binomial kernel, keep even rows and columns: ``ceil(H/2) x ceil(W/2)``."""
    return _blur(x)[..., ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Insert zeros between samples, blur with 4 times the kernel, crop to ``size``."""
    batch, channels, height, width = x.shape
    stuffed = x.new_zeros(batch, channels, 2 * height, 2 * width)
    stuffed[..., ::2, ::2] = x
    return _blur(stuffed, gain=4.0)[..., : size[0], : size[1]]


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` band-pass images, finest first; the last one is the low-pass residual."""
    gaussians = [x]
    for _ in range(levels - 1):
        gaussians.append(pyr_down(gaussians[-1]))
    bands = [
        fine - pyr_up(coarse, fine.shape[-2:])
        for fine, coarse in zip(gaussians[:-1], gaussians[1:], strict=True)
    ]
    return [*bands, gaussians[-1]]


def pyramid_levels(size: tuple[int, int] | torch.Size, minimum: int) -> int:
    """Number of levels whose shorter side stays at least ``minimum`` (sides halve, rounding up)."""
    if minimum < 2:
        raise ValueError(f"minimum must be >= 2 (sides stop halving at 1), got {minimum}")
    count = 0
    while coarsest_side(size, count + 1) >= minimum:
        count += 1
    return count


def coarsest_side(size: tuple[int, int] | torch.Size, levels: int) -> int:
    """Shorter side of the last of ``levels`` levels (each level halves, rounding up)."""
    side = min(size)
    for _ in range(levels - 1):
        side = (side + 1) // 2
    return side
