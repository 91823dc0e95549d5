"""``solve``: the one integration loop of indiflow, from ``y`` at ``t = 1`` towards ``t = 0``."""

from __future__ import annotations

import math

import torch

from indiflow._checks import check_finite_tensor, check_int, check_representable_time, check_tensor
from indiflow.backends.torchdiffeq import TorchDiffEq, solve_torchdiffeq
from indiflow.backends.torchdiffeq import check_arguments as check_torchdiffeq_arguments
from indiflow.controllers import Adaptive, FixedSteps, initial_step, nonfinite_field_error
from indiflow.field import InDIField
from indiflow.per_sample import PerSampleSolution, solve_per_sample
from indiflow.per_sample import check_arguments as check_per_sample_arguments
from indiflow.per_sample_adaptive import PerSampleAdaptive
from indiflow.solution import Solution, Stats
from indiflow.solvers import Solver


def _check_arguments(solver: object, controller: object) -> None:
    if isinstance(solver, type):
        raise TypeError(
            f"solver must be an instance such as {solver.__name__}(), not the class itself"
        )
    if not callable(getattr(solver, "step", None)) or not hasattr(solver, "order"):
        raise TypeError(
            "solver must be a solver object such as ind.Euler() or ind.Heun() (not a string or a "
            f"class), got {solver!r}"
        )
    if not isinstance(controller, FixedSteps | Adaptive):
        raise TypeError(
            "controller must be ind.FixedSteps(grid) or ind.Adaptive(rtol=..., atol=...), "
            f"got {type(controller).__name__}"
        )
    if isinstance(controller, Adaptive) and getattr(solver, "error_order", None) is None:
        raise ValueError(
            f"{type(solver).__name__} has no error estimate, so it cannot be used with Adaptive; "
            "use FixedSteps(grid), or a solver with an embedded estimate such as ind.Heun(), "
            "ind.BogackiShampine() or ind.DormandPrince()"
        )


def _check_inputs(field: object, y: object, save: object, max_steps: object) -> None:
    """Checks shared by every loop ``solve`` dispatches to, run once before dispatching."""
    if not isinstance(field, InDIField):
        raise TypeError(
            "field must be an indiflow.InDIField; wrap your regressor as "
            f"ind.InDIField(regressor), got {type(field).__name__}"
        )
    if not isinstance(save, bool):
        raise TypeError(f"save_trajectory must be a bool, got {type(save).__name__}")
    check_int("max_steps", max_steps, 1)
    check_tensor("y", y, min_dim=2)
    check_finite_tensor("y", y)


def _nonfinite_error(t: float, s: float) -> RuntimeError:
    return nonfinite_field_error(f"in the step from t = {t:.6g} to s = {s:.6g}")


def _check_grid_dtype(controller: object, y: torch.Tensor) -> None:
    """Every positive grid node must stay positive in ``y``'s dtype, where the regressor sees it.

    Rounding is monotone, so checking the smallest positive node checks them all.
    """
    if isinstance(controller, FixedSteps):
        ts = controller.grid.ts
        i = len(ts) - 1 if ts[-1] > 0.0 else len(ts) - 2
        check_representable_time(f"TimeGrid node ts[{i}]", ts[i], y.dtype)


def _empty_solution(
    y: torch.Tensor, controller: FixedSteps | Adaptive | PerSampleAdaptive, save: bool
) -> Solution:
    """The solve of an empty batch: nothing to integrate, no regressor call, every counter 0.

    ``ts`` holds the start and end times, ``xs`` (with ``save``) the empty states there.
    """
    if isinstance(controller, FixedSteps):
        times = [controller.grid.ts[0], controller.grid.ts[-1]]
    else:
        times = [1.0, controller.t_end]
    ts = torch.tensor(times, dtype=torch.float64)
    x = y.clone()
    xs = torch.stack([y, x]) if save else None
    stats = Stats(nfe=0, rows=0, steps=0, accepted=0, rejected=0)
    if not isinstance(controller, PerSampleAdaptive):
        return Solution(x=x, ts=ts, xs=xs, stats=stats)
    counts = torch.zeros(0, dtype=torch.int64)
    return PerSampleSolution(
        x=x,
        ts=ts,
        xs=None,
        stats=stats,
        sample_nfe=counts,
        sample_accepted=counts.clone(),
        sample_rejected=counts.clone(),
        trajectories=() if save else None,
    )


def solve(
    field: InDIField,
    solver: Solver,
    y: torch.Tensor,
    controller: FixedSteps | Adaptive,
    save_trajectory: bool = False,
    max_steps: int = 10_000,
) -> Solution:
    """Integrate ``dx/dt = (x - F(x, t)) / t`` from ``x = y`` at the start time towards 0.

    The start time is ``grid.ts[0]`` for ``FixedSteps`` and 1 for ``Adaptive``. No stage is
    ever evaluated at ``t <= 0``: a step onto 0 returns the exact limit ``F(x_t, t)``.
    A fixed-grid solve never synchronises with the device before it returns; it then checks
    the final state once and, only if that holds NaN or inf, replays the solve with per-step
    checks to raise a ``RuntimeError`` naming the step where it happened.

    Args:
        field: the InDI field around a regressor.
        solver: a solver object (``Euler()``, ``Heun()``, ``BogackiShampine()``,
            ``DormandPrince()``), or ``backends.TorchDiffEq(method)`` to run torchdiffeq.
        y: degraded input of shape ``(B, *dims)``; its dtype and device are kept.
        controller: ``FixedSteps(grid)``, ``Adaptive(...)``, or ``PerSampleAdaptive(...)``
            (every sample stepped on its own, returns a ``PerSampleSolution``).
        save_trajectory: keep the state at every accepted time in ``Solution.xs``.
        max_steps: ``RuntimeError`` when an adaptive solve attempts more steps.

    Returns:
        ``Solution(x, ts, xs, stats)``. An empty batch (``B = 0``) returns at once, with every
        controller and solver: ``x`` of shape ``(0, *dims)``, ``ts`` the start and end times,
        ``xs`` of shape ``(2, 0, *dims)`` with ``save_trajectory``, every counter 0 and no
        regressor call.

    Raises:
        ValueError: for a grid node that rounds to 0 in ``y``'s dtype (e.g. ``1e-8`` in
            float16), where the field is singular; checked before any evaluation.
    """
    _check_inputs(field, y, save_trajectory, max_steps)
    if isinstance(solver, TorchDiffEq):
        check_torchdiffeq_arguments(solver, controller)
    elif isinstance(controller, PerSampleAdaptive):
        check_per_sample_arguments(solver)
    else:
        _check_arguments(solver, controller)
    _check_grid_dtype(controller, y)
    if y.shape[0] == 0:
        return _empty_solution(y, controller, save_trajectory)
    if isinstance(solver, TorchDiffEq):
        return solve_torchdiffeq(field, solver, y, controller, save_trajectory, max_steps)
    if isinstance(controller, PerSampleAdaptive):
        return solve_per_sample(field, solver, y, controller, save_trajectory, max_steps)

    result = _integrate(field, solver, y, controller, save_trajectory, max_steps, False)
    if not bool(torch.isfinite(result.x).all()):
        # A fixed-grid solve checks nothing per step (no synchronisation); only on failure is
        # it replayed with a check after every step, to name the step where it happened.
        _integrate(field, solver, y, controller, False, max_steps, True)
        raise RuntimeError(
            "the solve produced non-finite values (NaN or inf), but a replay with per-step "
            "checks did not reproduce them: the regressor is not deterministic (dropout or "
            "random draws in eval?); check it, e.g. with net.eval()"
        )
    return result


def _all_finite(value: torch.Tensor | None) -> bool:
    return value is not None and bool(torch.isfinite(value).all())


def _integrate(
    field: InDIField,
    solver: Solver,
    y: torch.Tensor,
    controller: FixedSteps | Adaptive,
    save_trajectory: bool,
    max_steps: int,
    check_each_step: bool,
) -> Solution:
    """The loop itself; ``check_each_step`` raises at the first non-finite state."""
    adaptive = isinstance(controller, Adaptive)
    if adaptive:
        t, t_end, grid = 1.0, controller.t_end, ()
    else:
        grid = controller.grid.ts
        t, t_end = grid[0], grid[-1]
        if len(grid) - 1 > max_steps:
            raise ValueError(
                f"the grid has {len(grid) - 1} steps, more than max_steps={max_steps}; "
                "raise max_steps or use a coarser grid"
            )
    x, denoised, state = y, None, None
    nfe = steps = accepted = rejected = 0
    times, states = [t], ([y] if save_trajectory else None)
    check_each_step = check_each_step or adaptive
    h: float | None = None
    err_prev: float | None = None
    previous: tuple[float, torch.Tensor] | None = None

    while t > t_end:
        if steps >= max_steps:
            raise RuntimeError(
                f"solve reached max_steps={max_steps} at t = {t:.6g} before t_end = {t_end}; "
                "raise max_steps or loosen rtol/atol"
            )
        if denoised is None:
            denoised = field.denoise(t, x)
            nfe += 1
        if adaptive:
            if h is None and controller.first_step is not None:
                h = min(controller.first_step, controller.max_step)
            elif h is None:
                with torch.no_grad():
                    deriv = field.derivative(t, x, denoised)
                    h = initial_step(controller, t, x, deriv, field, solver.error_order)
                nfe += 1
            if h < controller.min_step:
                raise RuntimeError(
                    f"the step size fell to {h:.3g} < min_step={controller.min_step} at "
                    f"t = {t:.6g}; loosen rtol/atol or lower min_step"
                )
            switch = False
            if t_end == 0.0 and previous is not None:
                with torch.no_grad():
                    limit_err = controller.limit_error(t, x, denoised, *previous)
                switch = limit_err <= controller.switch_safety
            s = 0.0 if switch else controller.propose_end(t, h)
        else:
            s = grid[steps + 1]
        result = solver.step(field, t, s, x, denoised, state, adaptive and s > 0.0)
        nfe += result.nfe
        steps += 1
        if adaptive and s > 0.0:
            err = float(controller.error_norm(result.error, x, result.x).detach().max())
            if not math.isfinite(err):
                if not (_all_finite(result.x) and _all_finite(result.error)):
                    raise _nonfinite_error(t, s)
                err = math.inf  # finite values, an error beyond any tolerance: reject
            h = controller.next_step(t - s, err, err_prev, solver.error_order)
            if err > 1.0:
                rejected += 1
                continue
            err_prev = err
            previous = (t, denoised)
        if check_each_step and not bool(torch.isfinite(result.x).all()):
            raise _nonfinite_error(t, s)
        t, x, denoised, state = s, result.x, result.denoised_next, result.state
        accepted += 1
        times.append(t)
        if states is not None:
            states.append(x)

    stats = Stats(nfe=nfe, rows=nfe * y.shape[0], steps=steps, accepted=accepted,
                  rejected=rejected)  # fmt: skip
    xs = torch.stack(states) if states is not None else None
    return Solution(x=x, ts=torch.tensor(times, dtype=torch.float64), xs=xs, stats=stats)
