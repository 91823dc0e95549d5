"""Bicubic super-resolution pairs: antialiased bicubic down-sampling, then bicubic up again."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from indiflow._checks import check_int
from indiflow.degradations.base import ImageDegradation, check_image, check_image_tensor

# Keys' cubic convolution with a = -0.5, the bicubic of Pillow and of MATLAB's imresize.
_KEYS_A = -0.5


def keys_cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic kernel with ``a = -0.5``, support ``|t| < 2``.

    ``(a + 2)|t|^3 - (a + 3)|t|^2 + 1`` for ``|t| < 1``; ``a|t|^3 - 5a|t|^2 + 8a|t| - 4a`` for
    ``1 <= |t| < 2``; ``0`` beyond.
    """
    a, t = _KEYS_A, t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t < 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


@lru_cache(maxsize=64)
def _cached_matrix(n_in: int, n_out: int) -> torch.Tensor:
    ratio = n_in / n_out
    widen = max(ratio, 1.0)  # antialiasing: stretch the kernel by the reduction factor
    centres = (torch.arange(n_out, dtype=torch.float64) + 0.5) * ratio
    pixels = torch.arange(n_in, dtype=torch.float64) + 0.5
    weights = keys_cubic((pixels[None, :] - centres[:, None]) / widen)
    return weights / weights.sum(dim=1, keepdim=True)


def bicubic_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """The ``(n_out, n_in)`` float64 matrix that resizes one axis from ``n_in`` to ``n_out``.

    Row ``i`` holds ``k((j + 1/2 - c_i) / s)`` over input pixels ``j``, divided by its sum, with
    ``k`` = :func:`keys_cubic`, ``c_i = (i + 1/2) n_in / n_out`` (pixel centres aligned, as
    ``align_corners=False``) and ``s = max(n_in / n_out, 1)`` (the kernel is widened by the
    reduction factor when down-sampling, which is the antialiasing, and kept at support 2 when
    up-sampling). Kernel taps that fall outside the image are dropped and the row renormalised:
    Pillow's border rule.
    """
    check_int("n_in", n_in, 1)
    check_int("n_out", n_out, 1)
    return _cached_matrix(n_in, n_out).clone()


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    rows = _cached_matrix(x.shape[-2], height).to(dtype=x.dtype, device=x.device)
    cols = _cached_matrix(x.shape[-1], width).to(dtype=x.dtype, device=x.device)
    return rows @ x @ cols.mT


@dataclass(frozen=True)
class BicubicSR(ImageDegradation):
    """Super-resolution pairs: ``y = U_{H,W}(D_s(x))``, the shape of ``x``.

    ``D_s`` shrinks ``(H, W)`` to ``(H / s, W / s)`` and ``U`` brings the result back; both apply
    the separable :func:`bicubic_matrix` along rows, then columns (Keys' cubic, ``a = -0.5``,
    kernel widened ``s`` times when shrinking, taps outside the image dropped and the weights
    renormalised). No clipping: bicubic overshoot can leave ``[0, 1]`` by a few hundredths near
    sharp edges. ``H`` and ``W`` must be divisible by ``s``, so that the low-resolution grid
    tiles the image exactly. No random numbers are drawn.

    Down-sampling is Pillow's ``Image.resize(..., Image.BICUBIC)`` on float images (mode ``'F'``)
    to float rounding (about 2e-8 RMS in float32; both use float64 weights). It differs from
    MATLAB's ``imresize`` (and BasicSR's port of it) only in the two outermost rows and columns of
    the low-resolution image, whose kernels cross the border: MATLAB mirrors the image there
    instead of dropping the taps. From Pillow's 8-bit path it differs by Pillow's rounding to
    integers. The weights are explicit matrices rather than
    ``F.interpolate(mode='bicubic', antialias=True)``, which also matches Pillow (to about 1e-7):
    matrices give the same weights on every device and dtype, form an exact linear operator, and
    were about twice as fast on 64 x 64 training patches on one CPU thread. The price is a dense
    product, ``O(H W (H + W) / s)`` work: at 512 x 512 it was 2.5 times slower than
    ``F.interpolate``, and the gap grows with the image side.

    Args:
        scale: integer reduction factor ``s >= 1`` (``1`` is the identity).
    """

    scale: int

    def __post_init__(self) -> None:
        check_int("BicubicSR scale", self.scale, 1)

    def downsample(self, x: torch.Tensor) -> torch.Tensor:
        """The low-resolution image ``D_s(x)``, shape ``(B, C, H / s, W / s)`` (not clipped)."""
        check_image("x", x)
        return self._down(x)

    def upsample(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Bicubic up-sampling ``U`` of ``lr`` of shape ``(B, C, h, w)`` to ``size = (H, W)``.

        ``lr`` may leave ``[0, 1]`` slightly (``downsample`` does not clip), so only its type and
        shape are checked. ``U`` uses the kernel at its natural width (no antialiasing).
        """
        check_image_tensor("lr", lr)
        if not isinstance(size, tuple | list) or len(size) != 2:
            raise TypeError(f"size must be a pair (H, W) of ints, got {size!r}")
        height = check_int("size[0]", size[0], 1)
        width = check_int("size[1]", size[1], 1)
        return _resize(lr, height, width)

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.scale or width % self.scale:
            fit_h, fit_w = height - height % self.scale, width - width % self.scale
            raise ValueError(
                f"BicubicSR({self.scale}) needs H and W divisible by {self.scale}, got "
                f"H = {height}, W = {width}; crop first, e.g. x[..., :{fit_h}, :{fit_w}]"
            )
        return _resize(x, height // self.scale, width // self.scale)

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return _resize(self._down(x), x.shape[-2], x.shape[-1])
