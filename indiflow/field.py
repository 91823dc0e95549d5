"""The InDI vector field ``dx/dt = (x - F(x, t)) / t`` around a regressor ``F ≈ E[x | x_t]``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from indiflow._checks import batch_times, check_representable_time, expand_times

Regressor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_time(t: float | torch.Tensor, dtype: torch.dtype = torch.float64) -> None:
    """Raise ``ValueError`` unless every ``t`` lies in ``(0, 1]`` once cast to ``dtype``.

    ``dtype`` is the state's: the regressor receives the times in it, so a time that rounds to 0
    there (``1e-8`` in float16) is refused like 0 itself. A Python float is checked without
    touching the device; a tensor costs one synchronisation.
    """
    if isinstance(t, torch.Tensor):
        t = t.to(dtype)
        bad = (t <= 0) | (t > 1) | torch.isnan(t)
        if bool(bad.any()):
            raise ValueError(
                f"the InDI field is defined for t in (0, 1]; got t with min {float(t.min())} "
                f"and max {float(t.max())} (in {dtype}, the dtype of the state). The field is "
                "singular at t = 0: step onto 0 with field.denoise (the exact limit) instead of "
                "evaluating the field there"
            )
    elif not 0.0 < t <= 1.0:
        raise ValueError(
            f"the InDI field is defined for t in (0, 1]; got t = {t}. The field is singular at "
            "t = 0: step onto 0 with field.denoise (the exact limit) instead"
        )
    else:
        check_representable_time("t", t, dtype)


class InDIField:
    """``f(t, x) = (x - F(x, t)) / t`` for a regressor ``F(x_t, t)`` with ``t`` of shape ``(B,)``.

    This is the one place where the solver argument order ``(t, x)`` meets the regressor order
    ``(x_t, t)``. ``t`` may be a float or a per-sample ``(B,)`` tensor.

    Args:
        regressor: an ``nn.Module`` or function ``(x_t, t) -> E[x | x_t]`` estimate, returning a
            tensor shaped like ``x_t``.
    """

    def __init__(self, regressor: Regressor) -> None:
        if not callable(regressor):
            raise TypeError(
                "regressor must be callable as regressor(x_t, t) (an nn.Module or a function), "
                f"got {type(regressor).__name__}"
            )
        self.regressor = regressor

    def __repr__(self) -> str:
        return f"InDIField({self.regressor!r})"

    def denoise(self, t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``F(x, t)``: the regressor's estimate of the clean signal at time ``t``."""
        check_time(t, x.dtype)
        return self._call(t, x)

    def __call__(self, t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``dx/dt = (x - F(x, t)) / t``."""
        check_time(t, x.dtype)
        return self.derivative(t, x, self._call(t, x))

    @staticmethod
    def derivative(
        t: float | torch.Tensor, x: torch.Tensor, denoised: torch.Tensor
    ) -> torch.Tensor:
        """``(x - F) / t`` from an already evaluated ``F``; no check, no evaluation."""
        return (x - denoised) / expand_times(t, x)

    def _call(self, t: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out = self.regressor(x, batch_times(t, x))
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"the regressor must return a tensor shaped like x_t {tuple(x.shape)}, got {got}"
            )
        return out
