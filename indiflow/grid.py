"""Time grids for fixed-step InDI sampling, running from the degraded end towards ``t = 0``."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from indiflow._checks import check_int, check_positive


def _as_floats(ts: object) -> tuple[float, ...]:
    if isinstance(ts, torch.Tensor):
        ts = ts.detach().cpu().double().tolist()
    elif isinstance(ts, np.ndarray):
        ts = ts.astype(np.float64).tolist()
    if isinstance(ts, str | bytes) or not isinstance(ts, Sequence):
        raise TypeError(
            f"TimeGrid needs a sequence of floats (list, tuple, 1-D tensor or array), "
            f"got {type(ts).__name__}"
        )
    out = []
    for v in ts:
        if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer):
            raise TypeError(f"TimeGrid values must be real numbers, got {type(v).__name__}: {v!r}")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class TimeGrid:
    """Strictly decreasing times in ``[0, 1]``; the solve starts from ``y`` at ``ts[0]``.

    ``ts[0]`` is normally 1 (the degraded input). A grid may stop at ``t_end > 0``, in which case
    the solve returns ``x(t_end)``; a grid ending at 0 takes the exact limit step there.

    Args:
        ts: at least two finite, strictly decreasing values in ``[0, 1]``.
    """

    ts: tuple[float, ...]

    def __post_init__(self) -> None:
        ts = _as_floats(self.ts)
        if len(ts) < 2:
            raise ValueError(f"TimeGrid needs at least 2 points, got {len(ts)}: {ts}")
        if not all(math.isfinite(v) for v in ts):
            raise ValueError(f"TimeGrid values must be finite, got {ts}")
        if ts[0] > 1.0 or ts[-1] < 0.0:
            raise ValueError(
                f"TimeGrid values must lie in [0, 1], got first {ts[0]} and last {ts[-1]}"
            )
        for i, (a, b) in enumerate(itertools.pairwise(ts)):
            if not b < a:
                raise ValueError(
                    f"TimeGrid must be strictly decreasing (from 1 towards 0), but ts[{i}] = {a} "
                    f"and ts[{i + 1}] = {b}; reverse or deduplicate the grid"
                )
        object.__setattr__(self, "ts", ts)

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def steps(self) -> int:
        """Number of steps (intervals) in the grid."""
        return len(self.ts) - 1

    @property
    def t_end(self) -> float:
        return self.ts[-1]

    def as_tensor(self) -> torch.Tensor:
        """The grid as a float64 CPU tensor."""
        return torch.tensor(self.ts, dtype=torch.float64)

    @classmethod
    def uniform(cls, n: int) -> TimeGrid:
        """``1, 1 - 1/n, ..., 0``: Algorithm 1's grid with ``n`` steps."""
        check_int("n", n, 1)
        return cls((*(1.0 - i / n for i in range(n)), 0.0))

    @classmethod
    def power(cls, n: int, rho: float) -> TimeGrid:
        """``(1 - i/n)^rho`` for ``i = 0..n``; ``rho > 1`` concentrates steps near ``t = 0``."""
        check_int("n", n, 1)
        rho = check_positive("rho", rho)
        return cls((*((1.0 - i / n) ** rho for i in range(n)), 0.0))

    @classmethod
    def log_uniform(cls, n: int, t_min: float) -> TimeGrid:
        """``n - 1`` geometric steps from 1 to ``t_min``, then the exact limit step onto 0."""
        check_int("n", n, 2)
        t_min = check_positive("t_min", t_min)
        if t_min >= 1.0:
            raise ValueError(f"t_min must be in (0, 1), got {t_min}")
        ratio = t_min ** (1.0 / (n - 1))
        ts = [ratio**i for i in range(n - 1)] + [t_min, 0.0]
        return cls(tuple(ts))
