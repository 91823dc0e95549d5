"""What a degradation is, and the input checks every shipped degradation runs once per call."""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch

from indiflow._checks import check_generator


@runtime_checkable
class Degradation(Protocol):
    """Anything called ``op(x, generator=None) -> y`` on ``(B, C, H, W)`` images in ``[0, 1]``.

    ``y`` has the shape, dtype and device of ``x`` and is a deterministic function of ``x`` and
    the state of ``generator``. Plain functions with this signature qualify too.
    """

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


def check_image_tensor(name: str, x: object) -> torch.Tensor:
    """Check that ``x`` is a non-empty floating ``(B, C, H, W)`` tensor (no value check)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}; "
            "convert arrays with torch.as_tensor(...).permute(...) and divide 8-bit data by 255"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {x.dtype}; "
            "for 8-bit images use x.float() / 255"
        )
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have shape (B, C, H, W), got shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single (C, H, W) image"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    return x


def check_image(name: str, x: object) -> torch.Tensor:
    """Check the type and shape of ``x`` and that its values lie in ``[0, 1]``.

    Reads the minimum and maximum back from the device once.
    """
    x = check_image_tensor(name, x)
    low, high = (float(v) for v in torch.stack(torch.aminmax(x.detach())).tolist())
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"{name} holds NaN values; images must lie in [0, 1]")
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must have values in [0, 1], found min {low:.6g} and max {high:.6g}; "
            "rescale 8-bit data by 1/255, clamp with x.clamp(0, 1), or chain degradations "
            "with Compose (which checks only its input)"
        )
    return x


def check_odd_size(name: str, value: object, minimum: int) -> int:
    """An odd int ``>= minimum`` (a kernel side with a centre pixel)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an odd int, got {type(value).__name__}: {value!r}")
    if value < minimum or value % 2 == 0:
        raise ValueError(
            f"{name} must be an odd int >= {minimum} (a kernel needs a centre pixel), got {value}"
        )
    return value


class ImageDegradation:
    """Base of the shipped degradations: check ``x`` and ``generator``, then ``_apply``.

    ``Compose`` calls ``_apply`` of its members directly, so that only its own input is checked
    against ``[0, 1]`` (an intermediate such as a noisy image may leave that range).
    """

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Degrade ``x`` of shape ``(B, C, H, W)`` with values in ``[0, 1]``; same shape out.

        Raises:
            TypeError: ``x`` is not a floating tensor, or ``generator`` not a torch.Generator.
            ValueError: ``x`` is not 4-D, is empty, or has values outside ``[0, 1]``.
        """
        check_image("x", x)
        check_generator(generator)
        return self._apply(x, generator)

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError
