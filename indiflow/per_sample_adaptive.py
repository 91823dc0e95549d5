"""``PerSampleAdaptive``: the ``Adaptive`` controller applied to every sample on its own.

Each sample keeps its own time, step size, PI memory and accept / reject decision, and switches
to the exact limit step onto ``t = 0`` when its own estimated limit error passes (the rule of
``indiflow.controllers``). The error norm and the limit-error estimate are ``Adaptive``'s own;
the PI law, the end-time proposal and the starting-step heuristic are vectorised twins of
``Adaptive.next_step``, ``propose_end`` and ``initial_step`` (those stay on Python floats, about
2 µs per step against 100 µs for tensors), kept equal to them by the tests. ``StepControl``
holds one solve's memory and takes every decision on it: the loop of ``indiflow.per_sample``
asks it once per round. A class apart from ``Adaptive``, so that code written for the
batch-global controller (``isinstance(c, Adaptive)``) never runs it globally by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from indiflow._checks import expand_times
from indiflow.controllers import Adaptive, nonfinite_field_error, scaled_rms, widen
from indiflow.field import InDIField
from indiflow.per_sample import Decision, scatter_rows, split
from indiflow.solvers import StepResult


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

    def start(self, y: torch.Tensor, error_order: int) -> StepControl:
        """The control of one solve of ``y`` (every sample at ``t = 1``); no evaluation."""
        return StepControl(self, y, error_order)

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


# The first five fields of a ``Decision``: accepted, rejected, ended, evaluated, denoised.
Verdict = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]


def _reject_or_raise(
    err: torch.Tensor, step: StepResult, rows: torch.Tensor, t: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """Non-finite error norms: ``RuntimeError`` for a row whose values are NaN or inf, else
    ``inf`` (a finite error against a zero tolerance: the step is rejected)."""
    finite = torch.isfinite(step.x).flatten(1).all(1) & torch.isfinite(step.error).flatten(1).all(1)
    blamed = ~torch.isfinite(err) & ~finite
    if bool(blamed.any()):
        j = int(blamed.nonzero()[0, 0])
        raise nonfinite_field_error(
            f"for sample {int(rows[j])} in the step from t = {float(t[j]):.6g} to "
            f"s = {float(s[j]):.6g}"
        )
    return torch.where(torch.isfinite(err), err, torch.inf)


class StepControl:
    """One solve's per-sample memory (times, step sizes, PI memory) and its decisions.

    ``begin`` plans the first round; ``decide`` judges each step and plans the next round. A
    solver without first-same-as-last leaves ``F`` unknown at the accepted states; ``decide``
    evaluates it there (one call), since the limit-step rule needs it.

    Attributes:
        t: ``(B,)`` float64 time of each sample's state (kept at the switch for the limit step).
    """

    def __init__(self, controller: PerSampleAdaptive, y: torch.Tensor, error_order: int) -> None:
        self.controller, self.error_order = controller, error_order
        self.units = controller.input_units(y)
        nan = torch.full((y.shape[0],), float("nan"), dtype=torch.float64, device=y.device)
        self.t, self.h = torch.ones_like(nan), nan.clone()
        self.err_prev, self.t_prev = nan.clone(), nan.clone()
        self.denoised_prev = torch.zeros_like(y)
        self._rows, self._ends = torch.arange(0, device=y.device), nan[:0]

    def _units(self, rows: torch.Tensor) -> torch.Tensor | None:
        return None if self.units is None else self.units[rows]

    def begin(self, field: InDIField, y: torch.Tensor, denoised: torch.Tensor) -> Decision:
        """The first round from ``y`` at ``t = 1``, where ``F(y, 1) = denoised``; the step sizes
        are ``first_step`` or the starting-step heuristic's (one evaluation: ``evaluated``)."""
        c, rows = self.controller, torch.arange(y.shape[0], device=y.device)
        evaluated = rows[:0]
        if c.first_step is None:
            deriv = field.derivative(1.0, y, denoised)
            self.h = c.initial_steps(self.t, y, deriv, field, self.error_order, self.units)
            evaluated = rows
        else:
            self.h = torch.full_like(self.t, min(c.first_step, c.max_step))
        return self._plan((rows[:0], rows[:0], rows[:0], evaluated, None), rows, y, denoised)

    def decide(
        self, x: torch.Tensor, denoised: torch.Tensor, step: StepResult, field: InDIField
    ) -> Decision:
        """Judge the ``step`` of the last ``stepping`` samples from states ``x`` (where
        ``F = denoised``) and plan the next round; ``RuntimeError`` if it holds NaN or inf."""
        c, rows, s = self.controller, self._rows, self._ends
        t = self.t[rows]
        err = c.error_norms(step.error, x, step.x, self._units(rows)).detach().to(torch.float64)
        if not bool(torch.isfinite(err).all()):
            err = _reject_or_raise(err, step, rows, t, s)
        self.h[rows] = c.next_steps(t - s, err, self.err_prev[rows], self.error_order)
        ok, bad = split(err <= 1.0)
        good = rows[ok]
        self.err_prev[good], self.t_prev[good], self.t[good] = err[ok], t[ok], s[ok]
        self.denoised_prev = scatter_rows(self.denoised_prev, good, denoised[ok])
        x = scatter_rows(x, ok, step.x[ok])
        moved = torch.zeros_like(err, dtype=torch.bool).index_fill(0, ok, True)
        live = torch.ones_like(moved)
        if c.t_end > 0.0:
            live[ok] = s[ok] > c.t_end
        stale, fresh = ok[:0], None
        if step.denoised_next is not None:
            denoised = scatter_rows(denoised, ok, step.denoised_next[ok])
        elif bool((moved & live).any()):
            stale = (moved & live).nonzero().flatten()
            fresh = field.denoise(s[stale], x[stale])
            denoised = scatter_rows(denoised, stale, fresh)
        verdict = (ok, bad, rows[~live], rows[stale], fresh)
        return self._plan(verdict, rows[live], x[live], denoised[live])

    def _plan(
        self, verdict: Verdict, rows: torch.Tensor, x: torch.Tensor, denoised: torch.Tensor
    ) -> Decision:
        """``verdict`` (the ``Decision``'s first five fields) and, for the unfinished ``rows``
        (states ``x``, ``F = denoised``), the limit steps and where the other steps end."""
        c, t = self.controller, self.t[rows]
        switched = rows[:0]
        if c.t_end == 0.0:
            t_prev, den_prev = self.t_prev[rows], self.denoised_prev[rows]
            limit = c.limit_errors(t, x, denoised, t_prev, den_prev, self._units(rows)).detach()
            switch, keep = split(~torch.isnan(t_prev) & (limit <= c.switch_safety))
            switched, rows, t = rows[switch], rows[keep], t[keep]
        h, failure = self.h[rows], None
        if bool((h < c.min_step).any()):
            i = int(rows[h < c.min_step][0])
            failure = RuntimeError(
                f"the step size of sample {i} fell to {float(self.h[i]):.3g} < "
                f"min_step={c.min_step} at t = {float(self.t[i]):.6g}; loosen rtol/atol "
                "or lower min_step"
            )
        self._rows, self._ends = rows, c.propose_ends(t, h)
        return Decision(*verdict, switched, rows, t, self._ends, failure)
