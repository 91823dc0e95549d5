"""Exponential moving average of a network's weights."""

from __future__ import annotations

import copy

import torch
from torch import nn

from indiflow._checks import check_real


class EMA:
    """An averaged copy of a module: ``avg <- d * avg + (1 - d) * weights`` per update.

    Every floating-point parameter and buffer is averaged (one fused ``torch._foreach_lerp_``
    per update); other buffers are copied. The copy starts equal to the module, in eval mode
    and without gradients; ``decay = 0`` makes it follow the weights exactly.

    ``update(step)`` warms up: the decay of update ``step`` (counted from 0) is
    ``d = min(decay, (1 + step) / (10 + step))``, the ``num_updates`` rule of TensorFlow's
    ``ExponentialMovingAverage``. Without it the average of a short run still holds a share
    ``decay ** steps`` of the random initial weights (37 % after 1000 steps at 0.999). The rule
    depends on the step alone, so a resumed run continues it exactly. ``update()`` without a step
    uses ``decay`` as given.

    Args:
        model: the module being trained (unwrapped: not the DDP or compiled wrapper).
        decay: in ``[0, 1)``.

    Attributes:
        module: the averaged network; use it for validation and restoration.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        decay = check_real("EMA decay", decay)
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self._averaged, self._current = _tensor_pairs(self.module, model, floating=True)
        self._copies, self._originals = _tensor_pairs(self.module, model, floating=False)

    def decay_at(self, step: int | None) -> float:
        """The decay used by ``update(step)``: ``min(decay, (1 + step) / (10 + step))``."""
        if step is None:
            return self.decay
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"EMA step must be an int >= 0 (the update count), got {step!r}")
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, step: int | None = None) -> None:
        """Move the average one step towards the current weights of the tracked module.

        Args:
            step: the number of optimiser steps taken before this update (0 for the first);
                caps the decay for the warm-up (see the class). ``None``: no warm-up.
        """
        decay = self.decay_at(step)
        if decay == 0:
            torch._foreach_copy_(self._averaged, self._current)
        else:
            torch._foreach_lerp_(self._averaged, self._current, 1.0 - decay)
        for copy_, original in zip(self._copies, self._originals, strict=True):
            copy_.copy_(original)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged network's state dict (loads into a fresh copy of the architecture)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average (copies into the existing tensors, so updates keep working)."""
        from indiflow.training.checkpoint import load_state

        load_state(self.module, state, "EMA")


def _tensor_pairs(
    averaged: nn.Module, source: nn.Module, *, floating: bool
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Matching lists of the (non-)floating-point parameters and buffers of both modules."""
    mine = dict(averaged.named_parameters()) | dict(averaged.named_buffers())
    theirs = dict(source.named_parameters()) | dict(source.named_buffers())
    names = [name for name, t in theirs.items() if t.is_floating_point() == floating]
    return [mine[n] for n in names], [theirs[n].detach() for n in names]
