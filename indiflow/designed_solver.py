"""A solver with designed coefficients: its regressor times decoupled from its step times.

``DesignedSolver(base, times, evaluation_times)`` runs ``base`` on the integration nodes
``times`` (``tau_0 > tau_1 > ... > tau_N = 0``, the state at ``tau_0`` being ``y``) while its
regressor sees the times ``evaluation_times`` (``e_0 > ... > e_N = 0``, the grid the solve
walks): step ``i`` is ``base``'s step from ``tau_i`` to ``tau_{i+1}``, and a stage the base
evaluates at ``u`` in ``[tau_{i+1}, tau_i]`` is evaluated at the affine image
``e_{i+1} + (u - tau_{i+1}) (e_i - e_{i+1}) / (tau_i - tau_{i+1})`` instead (so ``tau_i`` maps
to ``e_i``). With ``e = tau`` it is ``base`` itself. This is the decoupling of the network's time
input from the solver's time step of LD3 (Tong et al., 2024), written for the InDI ODE.

Consistency holds by construction: the step formulas are the base solver's, so a regressor
that does not depend on ``x`` or ``t`` (``F = c``) is integrated exactly on the integration
nodes, ``x(tau_i) = c + (tau_i / tau_0)(y - c)``, whatever the evaluation times.

The base solver is saved as plain data by its class path and constructor fields
(``solver_to_data`` / ``solver_from_data``); only dataclass solvers of the ``indiflow``
package are rebuilt, so loading a file never imports or calls anything else.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import torch

from indiflow.field import InDIField
from indiflow.grid import TimeGrid
from indiflow.solvers import Solver, StepResult

Time = float | torch.Tensor


class _MappedField(InDIField):
    """The field of one step, its stage times mapped affinely from ``[s, t]`` to ``[e_s, e_t]``."""

    def __init__(self, field: InDIField, t: Time, s: Time, e_t: Time, e_s: Time) -> None:
        super().__init__(field.regressor)
        self.inner, self.t, self.s, self.e_t, self.e_s = field, t, s, e_t, e_s

    def denoise(self, t: Time, x: torch.Tensor) -> torch.Tensor:
        mapped = self.e_s + (t - self.s) * ((self.e_t - self.e_s) / (self.t - self.s))
        return self.inner.denoise(mapped, x)


def decoupled_step(
    base: Solver,
    field: InDIField,
    times: tuple[Time, Time],
    evaluation_times: tuple[Time, Time],
    x: torch.Tensor,
    denoised: torch.Tensor,
    state: object,
) -> StepResult:
    """``base``'s step from ``times[0]`` to ``times[1]`` with stage times mapped onto
    ``evaluation_times``; ``denoised`` is ``F`` at ``evaluation_times[0]``."""
    (t, s), (e_t, e_s) = times, evaluation_times
    mapped = _MappedField(field, t, s, e_t, e_s)
    return base.step(mapped, t, s, x, denoised, state, False)


def _check_times(name: str, values: object) -> tuple[float, ...]:
    grid = TimeGrid(values)  # type: ignore[arg-type]  # validates: finite, decreasing, in [0, 1]
    if grid.ts[-1] != 0.0:
        raise ValueError(f"{name} must end at 0, got last value {grid.ts[-1]}")
    return grid.ts


@dataclass(frozen=True)
class DesignedSolver:
    """``base`` on the integration nodes ``times`` with the regressor at ``evaluation_times``.

    Run it as ``solve(field, solver, y, FixedSteps(TimeGrid(solver.evaluation_times)))``
    (``SolverDesign.grid``); the state at the first node is ``y`` (see the module). Cost and
    order per step are the base solver's; no error estimate, so fixed grids only.

    Args:
        base: a one-step or multistep ``indiflow`` solver object, e.g. ``ind.ExpMultistep4()``.
        times: integration nodes ``tau_i``, strictly decreasing in ``[0, 1]``, ending at 0.
        evaluation_times: regressor times ``e_i``, as many, strictly decreasing, ending at 0.
    """

    base: Solver
    times: tuple[float, ...]
    evaluation_times: tuple[float, ...]
    order: int = dataclass_field(default=1, init=False)
    error_order: int | None = dataclass_field(default=None, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.base, DesignedSolver | type) or not callable(
            getattr(self.base, "step", None)
        ):
            raise TypeError(f"base must be a solver object such as ind.Euler(), got {self.base!r}")
        times = _check_times("times", self.times)
        evaluation_times = _check_times("evaluation_times", self.evaluation_times)
        if len(times) != len(evaluation_times):
            raise ValueError(
                f"times and evaluation_times must have as many nodes, got {len(times)} and "
                f"{len(evaluation_times)}"
            )
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "evaluation_times", evaluation_times)
        object.__setattr__(self, "order", int(getattr(self.base, "order", 1)))

    def step(
        self,
        field: InDIField,
        t: Time,
        s: Time,
        x: torch.Tensor,
        denoised: torch.Tensor,
        state: object = None,
        with_error: bool = False,
    ) -> StepResult:
        index, base_state = state if isinstance(state, tuple) else (0, None)
        grid = self.evaluation_times
        if (
            isinstance(t, torch.Tensor)
            or index + 1 >= len(grid)
            or (t, s) != (grid[index], grid[index + 1])
        ):
            raise ValueError(
                "a DesignedSolver runs only on its own grid, FixedSteps(TimeGrid("
                f"solver.evaluation_times)); got the step {t!r} -> {s!r} as step {index} of "
                f"{grid}"
            )
        pair = (self.times[index], self.times[index + 1])
        result = decoupled_step(self.base, field, pair, (t, s), x, denoised, base_state)
        return dataclasses.replace(result, state=(index + 1, result.state))


def solver_to_data(solver: Solver) -> dict[str, object]:
    """Plain data for an ``indiflow`` dataclass solver: class path and constructor fields."""
    cls = type(solver)
    if not cls.__module__.startswith("indiflow.") or not dataclasses.is_dataclass(solver):
        raise TypeError(
            f"only indiflow's dataclass solvers can be saved as plain data, got {solver!r}"
        )
    args = {}
    for f in dataclasses.fields(solver):
        if f.init:
            value = getattr(solver, f.name)
            if dataclasses.is_dataclass(value) and hasattr(value, "step"):
                value = solver_to_data(value)
            elif isinstance(value, tuple):
                value = list(value)
            args[f.name] = value
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "args": args}


def solver_from_data(data: object) -> Solver:
    """Rebuild a solver from ``solver_to_data``'s output (``indiflow`` classes only)."""
    if not isinstance(data, dict) or not isinstance(data.get("class"), str):
        raise ValueError(f"a saved solver is a dict with a 'class' path, got {data!r}")
    path, args = data["class"], data.get("args", {})
    module_name, _, name = path.rpartition(".")
    if not module_name.startswith("indiflow.") or not isinstance(args, dict):
        raise ValueError(f"only indiflow solvers can be loaded, got the class path {path!r}")
    cls = getattr(importlib.import_module(module_name), name, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and hasattr(cls, "step")):
        raise ValueError(f"{path!r} is not an indiflow solver class")
    values = {k: solver_from_data(v) if isinstance(v, dict) else v for k, v in args.items()}
    return cls(**values)
