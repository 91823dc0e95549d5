"""Input checks for ``(B, C, H, W)`` images in [0, 1], shared by degradations and metrics.

Only the image-side subpackages import this module; the numerics core never does. It needs
nothing but torch, so importing it does not load either subpackage.
"""

from __future__ import annotations

import math

import torch


def check_image_tensor(name: str, x: object) -> torch.Tensor:
    """Return ``x`` if it is a non-empty floating ``(B, C, H, W)`` tensor (no value check).

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: not 4-D, or a dimension of size 0.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}; "
            "convert arrays with torch.as_tensor(array).permute(...) to channels-first and "
            "divide 8-bit data by 255"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor with values in [0, 1], got dtype {x.dtype}; "
            "convert 8-bit images with x.float() / 255"
        )
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have rank 4, shape (B, C, H, W), got shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single (C, H, W) image"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return x


def check_unit_image(name: str, x: object, range_advice: str = "") -> torch.Tensor:
    """Check ``x`` with :func:`check_image_tensor` and that its values lie in [0, 1].

    Reads the minimum and maximum back from the device once (``torch.aminmax``, which
    propagates NaN), so call it on whole images, never inside a solver loop.

    Args:
        name: the argument's name, used in error messages.
        x: the value to check.
        range_advice: a caller-specific remedy appended to the out-of-range message, e.g.
            ``"; chain degradations with Compose"``; empty for none.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: not 4-D, empty, NaN present, or a value outside [0, 1].
    """
    x = check_image_tensor(name, x)
    low, high = (float(v) for v in torch.stack(torch.aminmax(x.detach())).tolist())
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"{name} holds NaN values; images must be finite and lie in [0, 1]")
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must have values in [0, 1], found min {low:.6g} and max {high:.6g}; "
            f"rescale 8-bit data by 1/255 or clamp with x.clamp(0, 1){range_advice}"
        )
    return x
