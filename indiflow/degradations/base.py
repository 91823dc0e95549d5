"""What a degradation is, and the input checks every shipped degradation runs once per call."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from indiflow._checks import check_generator
from indiflow._image_checks import check_image_tensor as check_image_tensor  # re-export
from indiflow._image_checks import check_unit_image


@runtime_checkable
class Degradation(Protocol):
    """Anything called ``op(x, generator=None) -> y`` on ``(B, C, H, W)`` images in ``[0, 1]``.

    ``y`` has the shape, dtype and device of ``x`` and is a deterministic function of ``x`` and
    the state of ``generator``. Plain functions with this signature qualify too.
    """

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


def check_image(name: str, x: object) -> torch.Tensor:
    """Check the type and shape of ``x`` and that its values lie in ``[0, 1]``.

    The checks and messages are those of :func:`indiflow._image_checks.check_unit_image`;
    an out-of-range message also points to :class:`Compose` for chained degradations.
    Reads the minimum and maximum back from the device once.
    """
    return check_unit_image(
        name, x, range_advice=", or chain degradations with Compose (which checks only its input)"
    )


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
