"""Input validation shared by the image metrics.

Every metric takes a batch of images and a batch of references of the same shape, float
tensors ``(B, C, H, W)`` with values in [0, 1]. The range check synchronises with the device
once per call: a metric is evaluated on finished images, never inside a solver loop.
"""

from __future__ import annotations

import torch

from indiflow._image_checks import check_unit_image


def check_image(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a float ``(B, C, H, W)`` tensor with values in [0, 1].

    The checks and messages are those of :func:`indiflow._image_checks.check_unit_image`.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, an empty dimension, NaN, or a value outside [0, 1].
    """
    return check_unit_image(name, value)


def check_image_pair(x: object, ref: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``x`` and ``ref`` with :func:`check_image` and check they match.

    Raises:
        ValueError: shapes or devices differ.
    """
    x = check_image("x", x)
    ref = check_image("ref", ref)
    if x.shape != ref.shape:
        raise ValueError(
            f"x and ref must have the same shape (B, C, H, W), got {tuple(x.shape)} and "
            f"{tuple(ref.shape)}; crop or resize one of them before comparing"
        )
    if x.device != ref.device:
        raise ValueError(
            f"x and ref must be on the same device, got {x.device} and {ref.device}; "
            "move one with .to(other.device)"
        )
    return x, ref


def check_min_size(name: str, x: torch.Tensor, minimum: int, why: str) -> None:
    """Raise ``ValueError`` unless both spatial sides of ``x`` are at least ``minimum``."""
    height, width = x.shape[-2:]
    if min(height, width) < minimum:
        raise ValueError(
            f"{name} needs images of at least {minimum}x{minimum} pixels ({why}), "
            f"got {height}x{width}"
        )


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 where the device has it (reference accuracy), float32 on Apple's MPS."""
    return torch.float32 if x.device.type == "mps" else torch.float64
