"""torchdiffeq as a pluggable, endpoint-safe backend of ``ind.solve``.

``TorchDiffEq(method)`` runs any fixed-grid or adaptive Runge–Kutta method of torchdiffeq on the
InDI field and returns the same ``Solution`` and ``Stats`` as indiflow's own solvers.
torchdiffeq never reaches ``t = 0`` itself (the field is singular there): it integrates down
to a positive time and the solve then takes the exact limit step ``x(0) = F(x_t, t)``.

- ``FixedSteps(grid)``: torchdiffeq's fixed-grid method steps exactly through the grid's
  positive nodes; a final node at 0 is reached by the limit step.
- ``Adaptive(rtol, atol, ...)``: torchdiffeq's adaptive method and step-size law with the
  controller's ``rtol``, ``atol`` and ``max_step``, and indiflow's acceptance norm (every
  sample's scaled RMS error at most 1, where torchdiffeq's default is one RMS over the batch).
  With ``t_end = 0`` the switch time is chosen by the native controller's rule, per segment:
  integrate ``[1, min_time_ratio]``; estimate the limit step's error from ``F`` at the two
  ends of the last segment (``Adaptive.limit_errors``, error ``∝ t^2``); switch when it is at
  most ``switch_safety``, else integrate on to where the ``t^2`` model puts it at the threshold
  (at least ``min_time_ratio`` of the way down) and repeat. Each segment is landed on exactly
  (torchdiffeq's ``step_t``; without it torchdiffeq steps past the end time and evaluates the
  field at ``t < 0``) and starts from the ``initial_step`` heuristic, which never looks at
  ``t <= 0``; ``F`` at a segment's start is reused, not evaluated twice.

Cost: torchdiffeq decides every step on the host (``error_ratio <= 1``, ``t1 >= t[j]``), so it
synchronises with the device at every step, like indiflow's adaptive loop and unlike its
fixed-grid loop; ``benchmarks/adaptivity.py`` measures the per-step overhead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from indiflow.controllers import (
    Adaptive,
    FixedSteps,
    initial_step,
    nonfinite_field_error,
    widen,
)
from indiflow.field import InDIField
from indiflow.solution import Solution, Stats

_ADAPTIVE_RESERVED = ("norm", "step_t", "max_step", "first_step", "max_num_steps")
_FIXED_RESERVED = ("step_size", "grid_constructor")


def _torchdiffeq():
    try:
        import torchdiffeq
        from torchdiffeq._impl.odeint import SOLVERS
    except ImportError as exc:
        raise ImportError(
            "indiflow.backends.TorchDiffEq needs the optional package torchdiffeq; install it "
            "with `pip install torchdiffeq` (or `pip install indiflow[dev]`)"
        ) from exc
    return torchdiffeq, SOLVERS


def _max_sample_rms(value: torch.Tensor) -> torch.Tensor:
    """indiflow's acceptance norm: the largest per-sample RMS (torchdiffeq's is one global RMS).

    Squared in at least float32, where float16 would overflow (see ``controllers.scaled_rms``).
    """
    return widen(value).flatten(1).square().mean(dim=1).sqrt().max()


@dataclass(frozen=True, eq=False)
class TorchDiffEq:
    """A torchdiffeq method used as an indiflow solver: ``ind.solve(field, TorchDiffEq(m), ...)``.

    Integrates ``dx/dt = (x - F(x, t)) / t`` with ``torchdiffeq.odeint`` down to a positive time,
    then takes the exact limit step onto 0 (see the module). Order and cost per step are the
    method's own (``dopri5``: order 5, 6 evaluations; ``rk4``: order 4, 4 evaluations).

    Args:
        method: a torchdiffeq method name: fixed-grid (``euler``, ``midpoint``, ``heun2``,
            ``heun3``, ``rk4``, ``explicit_adams``, ``implicit_adams``) for ``FixedSteps``, or
            adaptive (``dopri5``, ``dopri8``, ``bosh3``, ``fehlberg2``, ``adaptive_heun``) for
            ``Adaptive``.
        options: extra torchdiffeq options (e.g. ``{"interp": "cubic"}``, ``{"perturb": True}``);
            the ones set from the grid or the controller are refused.
    """

    method: str = "dopri5"
    options: Mapping[str, object] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.method, str):
            raise TypeError(
                f"method must be a torchdiffeq method name (str), got {type(self.method).__name__}"
            )
        _, solvers = _torchdiffeq()
        usable = sorted(name for name, cls in solvers.items() if _kind(cls) is not None)
        if self.method not in solvers or _kind(solvers[self.method]) is None:
            raise ValueError(
                f"unknown or unsupported torchdiffeq method {self.method!r}; use one of {usable}"
            )
        if self.options is not None and not isinstance(self.options, Mapping):
            raise TypeError(f"options must be a dict or None, got {type(self.options).__name__}")
        options = dict(self.options or {})
        reserved = _ADAPTIVE_RESERVED if self.adaptive else _FIXED_RESERVED
        clash = sorted(set(options) & set(reserved))
        if clash:
            raise ValueError(
                f"options {clash} are set by indiflow from the "
                f"{'controller' if self.adaptive else 'grid'}; set them there instead "
                "(Adaptive(max_step=..., first_step=...), max_steps= of solve, or the TimeGrid)"
            )
        object.__setattr__(self, "options", MappingProxyType(options))

    @property
    def adaptive(self) -> bool:
        """Whether the method chooses its own steps (use ``Adaptive``) or follows a grid."""
        return _kind(_torchdiffeq()[1][self.method]) == "adaptive"

    @property
    def order(self) -> int:
        """The method's order of accuracy, as torchdiffeq declares it."""
        return int(_torchdiffeq()[1][self.method].order)


def _kind(cls: type) -> str | None:
    from torchdiffeq._impl.rk_common import RKAdaptiveStepsizeODESolver
    from torchdiffeq._impl.solvers import FixedGridODESolver

    if issubclass(cls, RKAdaptiveStepsizeODESolver):
        return "adaptive"
    if issubclass(cls, FixedGridODESolver):
        return "fixed"
    return None


class _Func:
    """The field as torchdiffeq sees it, counting evaluations and reusing a repeated one.

    torchdiffeq works on states in at least float32 (see ``solve_torchdiffeq``); the regressor
    receives them in ``dtype``, the dtype of ``y``, and its output is widened back.
    """

    def __init__(self, field: InDIField, dtype: torch.dtype) -> None:
        self.field = field
        self.dtype = dtype
        self.calls = 0
        self.accepted = 0
        self.rejected = 0
        self.last: tuple[float, torch.Tensor, torch.Tensor] | None = None

    def denoise(self, t: float, x: torch.Tensor) -> torch.Tensor:
        # torchdiffeq casts times to the state's dtype: compare them in that precision.
        key = t if x.dtype == torch.float64 else float(torch.tensor(t, dtype=x.dtype))
        last = self.last
        if last is not None and last[0] == key and (last[1] is x or torch.equal(last[1], x)):
            return last[2]
        denoised = self.field.denoise(t, x.to(self.dtype)).to(x.dtype)
        self.calls += 1
        self.remember(key, x, denoised)
        return denoised

    def remember(self, t: float, x: torch.Tensor, denoised: torch.Tensor) -> None:
        key = t if x.dtype == torch.float64 else float(torch.tensor(t, dtype=x.dtype))
        self.last = (key, x, denoised)

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        time = float(t)
        return self.field.derivative(time, x, self.denoise(time, x))


class _FixedFunc(_Func):
    def callback_step(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.accepted += 1


class _AdaptiveFunc(_Func):
    def callback_accept_step(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.accepted += 1

    def callback_reject_step(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.rejected += 1


def _odeint(func: _Func, y: torch.Tensor, times: list[float], **kwargs: object) -> torch.Tensor:
    torchdiffeq, _ = _torchdiffeq()
    t = torch.tensor(times, dtype=torch.float64, device=y.device)
    try:
        return torchdiffeq.odeint(func, y, t, **kwargs)  # type: ignore[arg-type]
    except AssertionError as exc:  # torchdiffeq reports failures with assert
        raise RuntimeError(
            f"torchdiffeq stopped between t = {times[0]:.6g} and {times[-1]:.6g}: {exc}; check "
            "the regressor there, loosen rtol/atol or raise max_steps"
        ) from exc


def check_arguments(solver: TorchDiffEq, controller: object) -> None:
    if not isinstance(controller, FixedSteps | Adaptive):
        raise TypeError(
            "TorchDiffEq runs with ind.FixedSteps(grid) or ind.Adaptive(rtol=..., atol=...) "
            f"(torchdiffeq steps the whole batch at once), got {type(controller).__name__}"
        )
    if solver.adaptive and not isinstance(controller, Adaptive):
        raise ValueError(
            f"torchdiffeq's {solver.method!r} chooses its own steps: use it with "
            "ind.Adaptive(rtol=..., atol=...), or pick a fixed-grid method such as 'rk4'"
        )
    if not solver.adaptive and not isinstance(controller, FixedSteps):
        raise ValueError(
            f"torchdiffeq's {solver.method!r} follows a grid: use it with ind.FixedSteps(grid), "
            "or pick an adaptive method such as 'dopri5'"
        )


def solve_torchdiffeq(
    field: InDIField,
    solver: TorchDiffEq,
    y: torch.Tensor,
    controller: FixedSteps | Adaptive,
    save_trajectory: bool = False,
    max_steps: int = 10_000,
) -> Solution:
    """``ind.solve`` for a ``TorchDiffEq`` solver (see the module for the endpoint rule).

    torchdiffeq casts its Butcher tableau and step control to the state's dtype; in float16 or
    bfloat16 the rounded coefficients break the method's order conditions (dopri5 in float16:
    error 30 times the tolerance), so it integrates ``y`` widened to float32 and the results are
    cast back to ``y``'s dtype. The regressor always receives states in ``y``'s dtype.
    """
    check_arguments(solver, controller)
    work = widen(y)
    if isinstance(controller, FixedSteps):
        func: _Func = _FixedFunc(field, y.dtype)
        times, states = _fixed(func, solver, work, controller, max_steps)
    else:
        func = _AdaptiveFunc(field, y.dtype)
        times, states = _adaptive(func, solver, work, controller, max_steps)
    states = [state.to(y.dtype) for state in states]
    x = states[-1]
    if not bool(torch.isfinite(x).all()):
        raise RuntimeError(
            "the solve produced non-finite values (NaN or inf); check the regressor and its "
            "input scaling"
        )
    stats = Stats(
        nfe=func.calls,
        rows=func.calls * y.shape[0],
        steps=func.accepted + func.rejected,
        accepted=func.accepted,
        rejected=func.rejected,
    )
    xs = torch.stack(states) if save_trajectory else None
    return Solution(x=x, ts=torch.tensor(times, dtype=torch.float64), xs=xs, stats=stats)


def _fixed(
    func: _Func, solver: TorchDiffEq, y: torch.Tensor, controller: FixedSteps, max_steps: int
) -> tuple[list[float], list[torch.Tensor]]:
    grid = list(controller.grid.ts)
    if len(grid) - 1 > max_steps:
        raise ValueError(
            f"the grid has {len(grid) - 1} steps, more than max_steps={max_steps}; "
            "raise max_steps or use a coarser grid"
        )
    positive = [t for t in grid if t > 0.0]
    states = [y]
    if len(positive) > 1:
        out = _odeint(func, y, positive, method=solver.method, options=dict(solver.options))
        states = list(out.unbind(0))
    if grid[-1] == 0.0:
        states.append(func.denoise(positive[-1], states[-1]))
        func.accepted += 1
    return grid, states


def _adaptive(
    func: _Func, solver: TorchDiffEq, y: torch.Tensor, controller: Adaptive, max_steps: int
) -> tuple[list[float], list[torch.Tensor]]:
    error_order = solver.order - 1
    t_a, x_a = 1.0, y
    den_a = func.denoise(t_a, x_a)
    times, states = [t_a], [y]
    t_b = controller.t_end if controller.t_end > 0.0 else controller.min_time_ratio
    first_step = controller.first_step
    while True:
        if first_step is None:
            deriv = func.field.derivative(t_a, x_a, den_a)
            first_step = initial_step(controller, t_a, x_a, deriv, func, error_order)
            func.remember(t_a, x_a, den_a)  # torchdiffeq starts with F(x_a, t_a): reuse it
        options = {
            **solver.options,
            "norm": _max_sample_rms,
            "step_t": torch.tensor([t_b], dtype=torch.float64, device=y.device),
            "max_step": controller.max_step,
            "first_step": min(first_step, controller.max_step, t_a - t_b),
            "max_num_steps": max(1, max_steps - func.accepted - func.rejected),
        }
        kwargs = {"rtol": controller.rtol, "atol": controller.atol, "method": solver.method}
        x_b = _odeint(func, x_a, [t_a, t_b], options=options, **kwargs)[-1]
        times.append(t_b)
        states.append(x_b)
        if controller.t_end > 0.0:
            return times, states
        den_b = func.denoise(t_b, x_b)
        error = controller.limit_error(t_b, x_b, den_b, t_a, den_a)
        if error <= controller.switch_safety:
            times.append(0.0)
            states.append(den_b)
            func.accepted += 1
            return times, states
        if t_b > controller.switch_time_max:
            # Above switch_time_max the estimate is not trusted (it reads inf): go below it.
            ratio = controller.switch_time_max / t_b
        elif not (math.isfinite(error) or bool(torch.isfinite(den_b).all())):
            raise nonfinite_field_error(f"near t = {t_b:.6g}")
        else:
            # The limit step's error falls like t^2: aim where the model puts it at the threshold.
            ratio = controller.safety * math.sqrt(controller.switch_safety / error)
        t_a, x_a, den_a = t_b, x_b, den_b
        t_b = t_a * max(ratio, controller.min_time_ratio)
        first_step = None
        if t_b < controller.min_step:
            raise RuntimeError(
                f"the switch time fell below min_step={controller.min_step} at t = {t_a:.3g} "
                "without the limit step's error estimate passing; loosen rtol/atol"
            )
