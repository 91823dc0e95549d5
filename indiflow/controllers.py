"""Step controllers: where the next step ends, and whether the last one is kept.

``FixedSteps`` walks a ``TimeGrid`` and never looks at the state (no device synchronisation).
``Adaptive`` is a PI controller on an embedded error estimate, with a switch to the exact limit
step onto ``t = 0`` once that step's own error meets the tolerance.

Reaching ``t = 0`` adaptively. Along a trajectory ``d/dt F(x(t), t) = -t x''(t)``, so
``F(x(t), t) = x(0) - t^2 / 2 x''(0) + O(t^3)``: the limit step ``x(0) ≈ F(x_t, t)`` has error
``≈ t^2 / 2 |x''(0)|``. From the evaluations ``F_p`` at the previous accepted time ``t_p`` and
``F`` at the current ``t``, that quadratic model gives the estimate
``t^2 (F - F_p) / (t_p^2 - t^2)``; the controller switches (sets ``s = 0``) as soon as its
scaled RMS norm is at most ``switch_safety``, which is usually free since ``F(x_t, t)`` is the
next step's first stage anyway. The model describes the asymptotic regime only: far from 0
``F`` may still be about to change (a mixture posterior commits to a mode only once ``t sigma``
falls below the mode scale), which two past values cannot see, so the switch is never taken
above ``switch_time_max``. Until then each step ends at ``s >= min_time_ratio * t``, so the
remaining interval shrinks geometrically and the estimate, which falls like ``t^2``, soon passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from indiflow._checks import check_nonnegative, check_positive, check_real, expand_times
from indiflow.grid import TimeGrid


def widen(value: torch.Tensor) -> torch.Tensor:
    """``value`` in at least float32 (float64 stays float64); a no-op for float32 and float64."""
    return value.to(torch.promote_types(value.dtype, torch.float32))


def scaled_rms(value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Per-sample ``sqrt(mean((value / scale)^2))`` over all non-batch entries: shape ``(B,)``.

    Computed in at least float32: in float16 the squared ratios overflow as soon as an error is
    300 times its tolerance (``65504 = 256^2``), which read as non-finite values. An entry with
    ``value = 0`` counts 0 even where ``scale = 0`` (``atol = 0`` and a state entry exactly 0), so
    only a nonzero value against a zero tolerance makes the norm infinite. NaN in ``value``
    stays NaN.
    """
    value = widen(value)
    ratio = torch.where(value == 0, 0.0, value / widen(scale))
    return ratio.flatten(1).square().mean(dim=1).sqrt()


def nonfinite_field_error(where: str) -> RuntimeError:
    """The ``RuntimeError`` for a regressor that returned NaN or inf, naming the step."""
    return RuntimeError(
        f"the field returned non-finite values (NaN or inf) {where}; check the regressor at "
        "that time (and its input scaling)"
    )


@dataclass(frozen=True)
class FixedSteps:
    """Step exactly through the times of ``grid``; every step is accepted."""

    grid: TimeGrid

    def __post_init__(self) -> None:
        if not isinstance(self.grid, TimeGrid):
            raise TypeError(
                "FixedSteps needs an indiflow.TimeGrid, e.g. FixedSteps(TimeGrid.uniform(20)), "
                f"got {type(self.grid).__name__}"
            )


@dataclass(frozen=True)
class Adaptive:
    """PI step-size control on the solver's embedded error estimate.

    A step is accepted when, for every sample, the RMS over its entries of
    ``error / (atol + rtol * max(|x|, |x_new|))`` is at most 1 (computed in at least float32,
    so float16 states keep these semantics; an entry with a zero error and a zero scale counts
    0). In float16 and bfloat16 the state itself rounds at every step, which bounds the reachable
    accuracy to about ``1e-2`` whatever the tolerance.

    Args:
        rtol: relative tolerance.
        atol: absolute tolerance.
        t_end: where to stop; ``0`` reaches ``t = 0`` through the exact limit step (see module).
        safety: factor applied to every proposed step size.
        factor_min: smallest ratio between consecutive step sizes.
        factor_max: largest ratio between consecutive step sizes.
        min_step: a step smaller than this raises ``RuntimeError``.
        max_step: largest step size.
        first_step: initial step size; ``None`` uses the standard starting-step heuristic
            (one extra evaluation).
        min_time_ratio: each step ends at ``s >= min_time_ratio * t`` while ``t_end = 0``.
        switch_safety: the limit step onto 0 is taken when its estimated error norm is at most
            this.
        switch_time_max: the limit step is never taken from above this time, where the
            quadratic model behind its error estimate is not yet trusted.
    """

    rtol: float = 1e-3
    atol: float = 1e-6
    t_end: float = 0.0
    safety: float = 0.9
    factor_min: float = 0.2
    factor_max: float = 5.0
    min_step: float = 1e-10
    max_step: float = 1.0
    first_step: float | None = None
    min_time_ratio: float = 0.1
    switch_safety: float = 0.5
    switch_time_max: float = 0.05

    def __post_init__(self) -> None:
        check_nonnegative("rtol", self.rtol)
        check_nonnegative("atol", self.atol)
        if self.rtol == 0 and self.atol == 0:
            raise ValueError("rtol and atol cannot both be 0; set a positive tolerance")
        t_end = check_real("t_end", self.t_end)
        if not 0.0 <= t_end < 1.0:
            raise ValueError(f"t_end must be in [0, 1), got {t_end}")
        safety = check_positive("safety", self.safety)
        if safety > 1:
            raise ValueError(f"safety must be in (0, 1], got {safety}")
        if not 0 < check_positive("factor_min", self.factor_min) < 1:
            raise ValueError(f"factor_min must be in (0, 1), got {self.factor_min}")
        if check_positive("factor_max", self.factor_max) <= 1:
            raise ValueError(f"factor_max must be > 1, got {self.factor_max}")
        if check_positive("max_step", self.max_step) <= check_positive("min_step", self.min_step):
            raise ValueError(
                f"max_step ({self.max_step}) must be larger than min_step ({self.min_step})"
            )
        if self.first_step is not None:
            check_positive("first_step", self.first_step)
        if not 0 < check_positive("min_time_ratio", self.min_time_ratio) < 1:
            raise ValueError(f"min_time_ratio must be in (0, 1), got {self.min_time_ratio}")
        check_positive("switch_safety", self.switch_safety)
        if not 0 < check_positive("switch_time_max", self.switch_time_max) <= 1:
            raise ValueError(f"switch_time_max must be in (0, 1], got {self.switch_time_max}")

    def error_norm(self, error: torch.Tensor, x: torch.Tensor, x_new: torch.Tensor) -> torch.Tensor:
        """Per-sample scaled RMS norm of ``error``: shape ``(B,)``, computed by ``scaled_rms``."""
        x, x_new = widen(x), widen(x_new)
        return scaled_rms(error, self.atol + self.rtol * torch.maximum(x.abs(), x_new.abs()))

    def next_step(self, h: float, err: float, err_prev: float | None, error_order: int) -> float:
        """Step size after a step of size ``h`` with error norm ``err`` (PI control)."""
        k = error_order + 1
        if err == 0.0:
            factor = self.factor_max
        elif err_prev is None or err > 1.0:
            factor = self.safety * err ** (-1.0 / k)
        else:
            factor = self.safety * err ** (-0.7 / k) * max(err_prev, 1e-10) ** (0.4 / k)
        factor = min(self.factor_max, max(self.factor_min, factor))
        if err > 1.0:
            factor = min(factor, 1.0)
        return min(h * factor, self.max_step)

    def limit_error(
        self,
        t: float,
        x: torch.Tensor,
        denoised: torch.Tensor,
        t_prev: float,
        denoised_prev: torch.Tensor,
    ) -> float:
        """Largest per-sample error norm of the limit step ``x(0) ≈ F(x_t, t)`` (see module)."""
        return float(self.limit_errors(t, x, denoised, t_prev, denoised_prev).max())

    def limit_errors(
        self,
        t: float | torch.Tensor,
        x: torch.Tensor,
        denoised: torch.Tensor,
        t_prev: float | torch.Tensor,
        denoised_prev: torch.Tensor,
    ) -> torch.Tensor:
        """Per-sample error norms ``(B,)`` of the limit step; times may be floats or ``(B,)``.

        ``|| t^2 (F - F_prev) / (t_prev^2 - t^2) ||`` in the scaled RMS norm of ``error_norm``;
        ``inf`` where ``t > switch_time_max``.
        """
        change = widen(denoised) - widen(denoised_prev)
        coefficient = expand_times(t * t / (t_prev * t_prev - t * t), change)
        norms = self.error_norm(coefficient * change, x, denoised)
        if isinstance(t, torch.Tensor):
            return torch.where(t > self.switch_time_max, torch.inf, norms)
        return torch.full_like(norms, torch.inf) if t > self.switch_time_max else norms

    def propose_end(self, t: float, h: float) -> float:
        """Where a step of size ``h`` from ``t`` should end, respecting ``t_end``."""
        if self.t_end > 0.0:
            s = t - h
            # Avoid leaving a sliver before t_end that would force a tiny final step.
            return self.t_end if s < self.t_end + 1e-3 * h else s
        return max(t - h, self.min_time_ratio * t)


def initial_step(
    controller: Adaptive,
    t0: float,
    x0: torch.Tensor,
    deriv0: torch.Tensor,
    deriv_at: object,
    error_order: int,
) -> float:
    """Starting step size by the classic two-evaluation heuristic (Hairer, Nørsett & Wanner, II.4).

    With ``sc = atol + rtol |x0|``, ``d0 = ||x0 / sc||``, ``d1 = ||f0 / sc||`` (largest
    per-sample RMS): a probe step ``h0 = 0.01 d0 / d1`` (``1e-6`` when ``d0`` or ``d1`` is below
    ``1e-5`` or ``d1`` is infinite; at most ``t0 / 2``), ``d2 = ||(f(t0 - h0) - f0) / sc|| / h0``,
    and ``h = min(100 h0, h1, max_step, (1 - min_time_ratio) t0)`` with
    ``h1 = (0.01 / max(d1, d2))^(1 / (error_order + 1))``, or ``max(1e-6, 1e-3 h0)`` when
    ``max(d1, d2)`` is at most ``1e-15`` or infinite (``atol = 0`` and an entry of ``x0`` at 0,
    where the step's own norm, which also scales by ``|x_new|``, can still be met).

    Call it only when ``controller.first_step`` is ``None``; ``deriv_at(t, x)`` evaluates the
    field and is called exactly once. ``RuntimeError`` naming the time if ``deriv0`` or the
    probe holds NaN or inf (raised before any evaluation at a NaN time).
    """
    if not bool(torch.isfinite(deriv0).all()):
        raise nonfinite_field_error(f"at the start, t = {t0:.6g}")
    scale = controller.atol + controller.rtol * widen(x0).abs()
    d0 = float(scaled_rms(x0, scale).max())
    d1 = float(scaled_rms(deriv0, scale).max())
    # d1 = inf only for a finite derivative against a zero tolerance (atol = 0, x0 entry 0).
    h0 = 0.01 * d0 / d1 if d0 >= 1e-5 and 1e-5 <= d1 < math.inf else 1e-6
    h0 = min(h0, 0.5 * t0)
    deriv1 = deriv_at(t0 - h0, x0 - h0 * deriv0)  # type: ignore[operator]
    if not bool(torch.isfinite(deriv1).all()):
        raise nonfinite_field_error(
            f"in the starting-step probe from t = {t0:.6g} to {t0 - h0:.6g}"
        )
    d2 = float(scaled_rms(widen(deriv1) - widen(deriv0), scale).max()) / h0
    biggest = max(d1, d2)
    if biggest <= 1e-15 or biggest == math.inf:  # inf: finite values against a zero tolerance
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / biggest) ** (1.0 / (error_order + 1))
    return min(100 * h0, h1, controller.max_step, (1 - controller.min_time_ratio) * t0)
