"""Motion blur by random camera-shake kernels, one per image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from indiflow._checks import check_generator, check_int, check_nonnegative
from indiflow.degradations.base import (
    ImageDegradation,
    check_image,
    check_odd_size,
)
from indiflow.degradations.padding import pad_reflect


@dataclass(frozen=True)
class MotionBlur(ImageDegradation):
    """Camera shake: ``y_b = k_b * x_b``, one random kernel ``k_b`` per image ``b``.

    Kernel model (after the random camera trajectories of Boracchi & Foi, "Modeling the
    performance of image restoration from motion blur", IEEE TIP 2012, also used by DeblurGAN):
    a path of ``steps`` points ``z_0 = 0, ..., z_{N-1}`` of unit total length, moving at
    constant speed with heading ``u_n`` (``|u_n| = 1``, ``u_0 = exp(i theta)``, ``theta`` uniform)::

        v = u_n + w sqrt(h) xi_n - kappa h z_n,        h = 1 / (N - 1)
        u_{n+1} = v / |v|, turned by pi + delta_n (delta_n ~ U(-1/2, 1/2)) with probability
                  lambda h (an abrupt shake),
        z_{n+1} = z_n + h u_{n+1}.

    where ``xi_n`` has independent standard normal real and imaginary parts. ``w`` (heading
    wander: the heading's random walk has std about ``w`` radians over the path),
    ``kappa`` (pull back towards the start) and ``lambda`` (expected number of abrupt shakes) are
    drawn per kernel uniformly from ``[0, wander]``, ``[0, pull]`` and ``[0, shakes]``. The path
    is scaled by ``size - 1`` pixels (so its length is ``size - 1`` and it always fits), its
    bounding box is centred on the ``size x size`` grid, and each point deposits weight ``1 / N``
    bilinearly onto the four nearest pixels (equal weight per point: equal exposure time at
    constant speed). The kernel is finally divided by its sum.

    The blur is a true convolution (the kernel is flipped, unlike ``F.conv2d``) of every channel
    of image ``b`` with ``k_b``, over the image padded by ``size // 2`` with half-sample symmetric
    reflection (``d c b a | a b c d``, scipy's ``mode='reflect'``); no clipping is needed since
    the kernel is non-negative with unit sum. The random draws use ``generator`` on its own
    device (the CPU without one) and the trajectories are traced on the CPU in float64, so the
    kernels depend on the generator alone, not on the device of ``x``.

    Args:
        size: odd kernel side ``>= 3``, the path length in pixels plus one.
        steps: number of path points ``N >= 2``; ``N >= size`` keeps consecutive points at most
            one pixel apart, so the rasterised path has no gaps.
        wander: upper bound of the heading wander ``w`` (radians), ``>= 0``.
        pull: upper bound of the pull ``kappa`` towards the start, ``>= 0``.
        shakes: upper bound of the expected number of abrupt shakes ``lambda``, ``>= 0``.
    """

    size: int
    steps: int = 256
    wander: float = 2.0
    pull: float = 20.0
    shakes: float = 2.0

    def __post_init__(self) -> None:
        check_odd_size("MotionBlur size", self.size, 3)
        check_int("MotionBlur steps", self.steps, 2)
        for name in ("wander", "pull", "shakes"):
            value = check_nonnegative(f"MotionBlur {name}", getattr(self, name))
            object.__setattr__(self, name, value)

    def trajectories(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch`` camera paths as a ``(batch, steps)`` complex128 CPU tensor, before scaling."""
        check_int("batch", batch, 1)
        check_generator(generator)
        n, h = self.steps, 1.0 / (self.steps - 1)
        device = torch.device("cpu") if generator is None else generator.device

        def uniform(*shape: int) -> torch.Tensor:
            draw = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
            return draw.cpu()

        theta = 2 * math.pi * uniform(batch)
        wander = self.wander * uniform(batch)
        pull = self.pull * uniform(batch)
        rate = self.shakes * uniform(batch)
        normal = torch.randn(
            (batch, n - 1, 2), generator=generator, dtype=torch.float64, device=device
        )
        xi = torch.complex(normal[..., 0], normal[..., 1]).cpu()
        shake = uniform(batch, n - 1) < (rate * h)[:, None]
        turn = torch.polar(
            torch.ones(batch, n - 1, dtype=torch.float64), math.pi + uniform(batch, n - 1) - 0.5
        )
        turn = torch.where(shake, turn, torch.ones_like(turn))

        # The recurrence is sequential over steps; numpy's per-call overhead is a fraction of
        # torch's on these few-element arrays, which keeps per-item data loading cheap.
        kick = (wander[:, None] * math.sqrt(h) * xi).numpy()
        spring = (pull * h).numpy()
        turn = turn.numpy()
        heading = np.exp(1j * theta.numpy())
        points = np.zeros((batch, n), dtype=np.complex128)
        for step in range(n - 1):
            v = heading + kick[:, step] - spring * points[:, step]
            # v = 0 needs an exact cancellation of continuous draws; keep the heading then
            length = np.abs(v)
            heading = np.where(length > 0, v / np.maximum(length, 1e-300), heading) * turn[:, step]
            points[:, step + 1] = points[:, step] + h * heading
        points = torch.from_numpy(points)
        return points

    def kernels(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch`` kernels as a ``(batch, size, size)`` float64 CPU tensor, each summing to 1.

        ``op(x, generator)`` uses ``op.kernels(B, generator)`` for a batch of ``B`` images.
        """
        path = self.trajectories(batch, generator) * (self.size - 1)
        coords = torch.stack([path.imag, path.real])  # (row, col) x batch x steps
        low, high = coords.amin(dim=-1, keepdim=True), coords.amax(dim=-1, keepdim=True)
        coords = (coords - (low + high) / 2 + (self.size - 1) / 2).clamp(0, self.size - 1)
        corner = coords.floor().clamp(max=self.size - 2)
        frac = coords - corner
        corner = corner.long()
        flat = torch.zeros(batch * self.size * self.size, dtype=torch.float64)
        base = (torch.arange(batch) * self.size * self.size)[:, None]
        for dr in (0, 1):
            for dc in (0, 1):
                weight = (frac[0] if dr else 1 - frac[0]) * (frac[1] if dc else 1 - frac[1])
                index = base + (corner[0] + dr) * self.size + corner[1] + dc
                flat.index_add_(0, index.flatten(), weight.flatten())
        kernels = flat.reshape(batch, self.size, self.size)
        return kernels / kernels.sum(dim=(1, 2), keepdim=True)

    def convolve(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """Blur image ``b`` of ``x`` (``(B, C, H, W)`` in ``[0, 1]``) with ``kernels[b]``.

        ``kernels`` is ``(B, k, k)`` with odd ``k`` (any odd side, not only ``size``); it is cast
        to ``x``'s dtype and device. Same convolution and padding as ``op(x)``.
        """
        check_image("x", x)
        if not isinstance(kernels, torch.Tensor) or not kernels.is_floating_point():
            raise TypeError(
                f"kernels must be a floating (B, k, k) tensor, got {type(kernels).__name__}"
                + (f" of dtype {kernels.dtype}" if isinstance(kernels, torch.Tensor) else "")
            )
        square = kernels.dim() == 3 and kernels.shape[1] == kernels.shape[2]
        if not square or kernels.shape[0] != x.shape[0] or kernels.shape[1] % 2 == 0:
            raise ValueError(
                f"kernels must have shape (B, k, k) with B = {x.shape[0]} (the batch of x) and "
                f"odd k, got {tuple(kernels.shape)}"
            )
        return _convolve(x, kernels)

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return _convolve(x, self.kernels(x.shape[0], generator))


def _convolve(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = x.shape
    radius = kernels.shape[-1] // 2
    # conv2d correlates; flipping makes it a convolution. One group per (image, channel) plane.
    weight = kernels.flip(-2, -1).to(dtype=x.dtype, device=x.device)
    weight = weight.repeat_interleave(channels, dim=0).unsqueeze(1)
    planes = pad_reflect(x.reshape(1, batch * channels, height, width), radius, radius)
    return F.conv2d(planes, weight, groups=batch * channels).reshape(x.shape)
