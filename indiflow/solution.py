"""The result of a solve: final state, accepted times, optional trajectory and counters."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Stats:
    """Work done by a solve.

    Attributes:
        nfe: regressor calls.
        rows: samples evaluated in total (``nfe * B`` when every call sees the whole batch);
            ``rows / B`` is the mean number of evaluations per sample.
        steps: steps attempted.
        accepted: steps kept.
        rejected: steps thrown away by the error control.
    """

    nfe: int
    rows: int
    steps: int
    accepted: int
    rejected: int


@dataclass(frozen=True)
class Solution:
    """What ``solve`` returns.

    Attributes:
        x: the state at the last time reached (``x(0)`` or ``x(t_end)``), shaped like ``y``.
        ts: accepted times, float64 CPU tensor of shape ``(T,)``, from the start to the end.
        xs: states at ``ts``, shape ``(T, *y.shape)``, or ``None`` without ``save_trajectory``.
        stats: work counters.
    """

    x: torch.Tensor
    ts: torch.Tensor
    xs: torch.Tensor | None
    stats: Stats
