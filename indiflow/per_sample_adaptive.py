"""``PerSampleAdaptive``: the ``Adaptive`` controller applied to every sample on its own.

Each sample keeps its own time, step size, PI memory and accept / reject decision, and switches
to the exact limit step onto ``t = 0`` when its own estimated limit error passes (the rule of
``indiflow.controllers``). The control laws are ``Adaptive``'s, evaluated on ``(B,)`` tensors:
the error norm and the limit-error estimate are ``Adaptive.error_norm`` / ``limit_errors``
themselves; the PI law, the end-time proposal and the starting-step heuristic are vectorised
twins of ``Adaptive.next_step``, ``propose_end`` and ``initial_step`` (those stay on Python
floats, where they cost about 2 µs per step against about 100 µs for a tensor version), kept
equal to them by the tests.

It is a separate class rather than a flag on ``Adaptive`` so that code written for the
batch-global controller (``isinstance(c, Adaptive)``) never runs it globally by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from indiflow._checks import expand_times
from indiflow.controllers import Adaptive, nonfinite_field_error, scaled_rms, widen


def _rms(value: torch.Tensor) -> torch.Tensor:
    """Per-sample RMS over all non-batch dimensions, in at least float32: shape ``(B,)``."""
    return widen(value).flatten(1).square().mean(dim=1).sqrt()


def _in_units(value: torch.Tensor, units: torch.Tensor | None) -> torch.Tensor:
    return value if units is None else value / expand_times(units, value)


@dataclass(frozen=True)
class PerSampleAdaptive:
    """PI step-size control per sample, with batch compaction in ``solve``.

    Sample ``i`` accepts a step when ``RMS(error_i / (atol_i + rtol * max(|x_i|, |x_new_i|)))``
    is at most 1, the RMS running over all of the sample's entries (a whole image for
    ``(B, C, H, W)`` states). Only unfinished samples are passed to the regressor, so a sample's
    result does not depend on the rest of the batch and the work (``Stats.rows``) falls as samples
    finish. Every argument except ``atol_relative`` means what it means for ``Adaptive``.

    Args:
        rtol: relative tolerance, per entry.
        atol: absolute tolerance; with ``atol_relative`` it is in units of ``RMS(y_i)``.
        t_end: where to stop; ``0`` reaches ``t = 0`` through the exact limit step.
        safety: factor applied to every proposed step size.
        factor_min: smallest ratio between consecutive step sizes.
        factor_max: largest ratio between consecutive step sizes.
        min_step: a step smaller than this raises ``RuntimeError``.
        max_step: largest step size.
        first_step: initial step size; ``None`` uses the starting-step heuristic per sample
            (one extra evaluation of the whole batch).
        min_time_ratio: each step ends at ``s >= min_time_ratio * t`` while ``t_end = 0``.
        switch_safety: the limit step onto 0 is taken when its estimated error norm is at most
            this.
        switch_time_max: the limit step is never taken from above this time (see ``Adaptive``).
        atol_relative: use ``atol_i = atol * RMS(y_i)`` (RMS of the sample's input over all its
            entries), so that the tolerance means the same for images stored in ``[0, 1]`` or
            ``[0, 255]``, and dark and bright images are held to the same relative accuracy.
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
    atol_relative: bool = False
    base: Adaptive = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.atol_relative, bool):
            raise TypeError(
                f"atol_relative must be a bool, got {type(self.atol_relative).__name__}"
            )
        shared = {f.name: getattr(self, f.name) for f in fields(Adaptive)}
        # Adaptive validates every shared argument and owns the control laws reused here.
        object.__setattr__(self, "base", Adaptive(**shared))

    def input_units(self, y: torch.Tensor) -> torch.Tensor | None:
        """``RMS(y_i)`` per sample when ``atol_relative``, else ``None``; synchronises once."""
        if not self.atol_relative:
            return None
        units = _rms(y.detach())
        if not bool((units > 0).all()):
            first = int((units <= 0).nonzero()[0, 0])
            raise ValueError(
                f"atol_relative=True measures atol in units of RMS(y_i), but sample {first} of "
                "y is all zeros; use atol_relative=False or give every sample a nonzero input"
            )
        return units

    def error_norms(
        self,
        error: torch.Tensor,
        x: torch.Tensor,
        x_new: torch.Tensor,
        units: torch.Tensor | None,
    ) -> torch.Tensor:
        """``Adaptive.error_norm`` per sample, in ``units`` (``(B,)`` or ``None``)."""
        return self.base.error_norm(
            _in_units(error, units), _in_units(x, units), _in_units(x_new, units)
        )

    def limit_errors(
        self,
        t: torch.Tensor,
        x: torch.Tensor,
        denoised: torch.Tensor,
        t_prev: torch.Tensor,
        denoised_prev: torch.Tensor,
        units: torch.Tensor | None,
    ) -> torch.Tensor:
        """``Adaptive.limit_errors`` per sample, in ``units``."""
        return self.base.limit_errors(
            t,
            _in_units(x, units),
            _in_units(denoised, units),
            t_prev,
            _in_units(denoised_prev, units),
        )

    def next_steps(
        self, h: torch.Tensor, err: torch.Tensor, err_prev: torch.Tensor, error_order: int
    ) -> torch.Tensor:
        """``Adaptive.next_step`` per sample; ``err_prev`` is NaN where there is none yet."""
        k = error_order + 1
        plain = self.safety * err.pow(-1.0 / k)
        pi = self.safety * err.pow(-0.7 / k) * err_prev.clamp(min=1e-10).pow(0.4 / k)
        factor = torch.where(torch.isnan(err_prev) | (err > 1.0), plain, pi)
        factor = torch.where(err == 0.0, torch.full_like(factor, self.factor_max), factor)
        factor = factor.clamp(self.factor_min, self.factor_max)
        factor = torch.where(err > 1.0, factor.clamp(max=1.0), factor)
        return (h * factor).clamp(max=self.max_step)

    def propose_ends(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``Adaptive.propose_end`` per sample."""
        if self.t_end > 0.0:
            s = t - h
            return torch.where(s < self.t_end + 1e-3 * h, torch.full_like(s, self.t_end), s)
        return torch.maximum(t - h, self.min_time_ratio * t)

    def initial_steps(
        self,
        t0: torch.Tensor,
        x0: torch.Tensor,
        deriv0: torch.Tensor,
        deriv_at: object,
        error_order: int,
        units: torch.Tensor | None,
    ) -> torch.Tensor:
        """``controllers.initial_step`` per sample (one call of ``deriv_at(t, x)``): ``(B,)``.

        ``RuntimeError`` naming the first sample whose ``deriv0`` or probe holds NaN or inf.
        """
        _check_finite_rows(deriv0, "at the start, t = {t}", t0)
        x0_u, deriv0_u = _in_units(x0, units).detach(), _in_units(deriv0, units).detach()
        scale = self.atol + self.rtol * widen(x0_u).abs()
        d0 = scaled_rms(x0_u, scale).to(t0.dtype)
        d1 = scaled_rms(deriv0_u, scale).to(t0.dtype)
        usable = (d0 >= 1e-5) & (d1 >= 1e-5) & (d1 < torch.inf)  # d1 = inf: atol = 0, x0 = 0
        h0 = torch.where(usable, 0.01 * d0 / d1, torch.full_like(d0, 1e-6))
        h0 = torch.minimum(h0, 0.5 * t0)
        deriv1 = deriv_at(t0 - h0, x0 - expand_times(h0, x0) * deriv0)  # type: ignore[operator]
        _check_finite_rows(deriv1, "in the starting-step probe from t = {t}", t0)
        deriv1_u = _in_units(deriv1, units).detach()
        d2 = scaled_rms(widen(deriv1_u) - widen(deriv0_u), scale).to(t0.dtype) / h0
        biggest = torch.maximum(d1, d2)
        h1 = torch.where(
            (biggest <= 1e-15) | (biggest == torch.inf),
            torch.clamp(h0 * 1e-3, min=1e-6),
            (0.01 / biggest.clamp(min=1e-300)).pow(1.0 / (error_order + 1)),
        )
        out = torch.minimum(torch.minimum(100 * h0, h1), (1 - self.min_time_ratio) * t0)
        return out.clamp(max=self.max_step)


def _check_finite_rows(value: torch.Tensor, where: str, t: torch.Tensor) -> None:
    """``RuntimeError`` naming the first sample of ``value`` that holds NaN or inf."""
    finite = torch.isfinite(value.detach()).flatten(1).all(dim=1)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        raise nonfinite_field_error(
            f"for sample {first} {where.format(t=f'{float(t[first]):.6g}')}"
        )
