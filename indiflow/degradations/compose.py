"""A chain of degradations applied in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from indiflow.degradations.base import ImageDegradation


@dataclass(frozen=True)
class Compose(ImageDegradation):
    """``y = op_n(... op_2(op_1(x)) ...)``, every op called with the same ``generator``.

    Only the input ``x`` is checked against ``[0, 1]``: intermediates may leave that range (noise
    without clipping, bicubic overshoot), and the next shipped op takes them as they are (JPEG
    clips them when quantising). The ops draw from the generator in turn, so the whole chain is
    deterministic given its state. Any callable ``op(x, generator=None)`` may be a member; each
    must return a tensor of ``x``'s shape. ``Compose([])`` is the identity.

    Args:
        ops: the degradations, applied first to last (a list or tuple).
    """

    ops: Sequence[Callable[..., torch.Tensor]]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, list | tuple):
            raise TypeError(
                f"Compose takes a list of degradations, got {type(self.ops).__name__}; "
                "write Compose([op]) for a single one"
            )
        for index, op in enumerate(self.ops):
            if not callable(op):
                raise TypeError(
                    f"Compose ops[{index}] must be callable as op(x, generator=None), "
                    f"got {type(op).__name__}: {op!r}"
                )
        object.__setattr__(self, "ops", tuple(self.ops))

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        for index, op in enumerate(self.ops):
            if isinstance(op, ImageDegradation):
                y = op._apply(x, generator)
            else:
                y = op(x, generator=generator)
            if not isinstance(y, torch.Tensor) or y.shape != x.shape:
                got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise ValueError(
                    f"Compose ops[{index}] ({type(op).__name__}) must return a tensor of the "
                    f"input shape {tuple(x.shape)}, got {got}"
                )
            x = y
        return x
