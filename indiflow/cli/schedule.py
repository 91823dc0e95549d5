"""How ``indiflow restore`` integrates: solver names, ``--grid`` specifications, controllers.

The library takes solver and grid objects, never strings; this module is the one place that
maps the command line's names onto them.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import indiflow as ind
from indiflow.designed_solver import DesignedSolver
from indiflow.solvers import Solver

# Command-line name -> solver class. Exponential multisteps keep their default corrector setting.
SOLVERS: dict[str, type] = {
    "euler": ind.Euler,
    "heun": ind.Heun,
    "bogacki_shampine": ind.BogackiShampine,
    "dormand_prince": ind.DormandPrince,
    "exp_multistep2": ind.ExpMultistep2,
    "exp_multistep3": ind.ExpMultistep3,
    "exp_multistep4": ind.ExpMultistep4,
}
GRID_KINDS = ("uniform", "power:RHO", "log_uniform:TMIN", "PATH.json", "design:PATH")
DEFAULT_STEPS = 20
DEFAULT_ADAPTIVE_SOLVER = "dormand_prince"


def solver_names_with_error_estimate() -> list[str]:
    """Names of the solvers that carry an embedded error estimate (usable with ``--adaptive``)."""
    return [name for name, cls in SOLVERS.items() if cls().error_order is not None]


@dataclass(frozen=True)
class GridSpec:
    """A parsed ``--grid`` value.

    Attributes:
        kind: ``"uniform"``, ``"power"``, ``"log_uniform"`` or ``"design"``.
        parameter: ``rho`` for ``power``, ``t_min`` for ``log_uniform``, else ``None``.
        design: the saved ``GridDesign`` or ``SolverDesign`` for ``design``, else ``None``.
        text: the value as typed, for messages.
    """

    kind: str
    parameter: float | None = None
    design: ind.GridDesign | ind.SolverDesign | None = None
    text: str = ""

    @property
    def solver(self) -> Solver | None:
        """The solver a ``SolverDesign`` carries (its grid is made for it), else ``None``."""
        return self.design.solver if isinstance(self.design, ind.SolverDesign) else None

    def build(self, steps: int) -> ind.TimeGrid:
        """The time grid with ``steps`` steps (a design has its own step count)."""
        if self.kind == "uniform":
            return ind.TimeGrid.uniform(steps)
        if self.kind == "power":
            return ind.TimeGrid.power(steps, self.parameter)
        if self.kind == "log_uniform":
            return ind.TimeGrid.log_uniform(steps, self.parameter)
        return self.design.grid


def _finite_float(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"{what} in {spec!r} must be a finite number, got {text!r}"
        )
    return value


def parse_grid(text: str) -> GridSpec:
    """``--grid`` type: ``uniform``, ``power:RHO`` (RHO > 0), ``log_uniform:TMIN`` (0 < TMIN < 1)
    or a saved design: ``PATH.json`` or ``design:PATH``, a file written from
    ``GridDesign.to_json()`` or ``SolverDesign.to_json()`` (told apart by its ``format``).

    Raises:
        argparse.ArgumentTypeError: naming the accepted forms, for anything else.
    """
    kind, _, value = text.partition(":")
    if text == "uniform":
        return GridSpec("uniform", text=text)
    if kind == "power" and value:
        rho = _finite_float(value, "RHO", text)
        if rho <= 0:
            raise argparse.ArgumentTypeError(f"RHO in {text!r} must be > 0, got {rho}")
        return GridSpec("power", rho, text=text)
    if kind == "log_uniform" and value:
        t_min = _finite_float(value, "TMIN", text)
        if not 0 < t_min < 1:
            raise argparse.ArgumentTypeError(f"TMIN in {text!r} must be in (0, 1), got {t_min}")
        return GridSpec("log_uniform", t_min, text=text)
    if kind == "design" and value:
        return GridSpec("design", design=_read_design(Path(value)), text=text)
    if text.endswith(".json"):
        return GridSpec("design", design=_read_design(Path(text)), text=text)
    raise argparse.ArgumentTypeError(
        f"unknown grid {text!r}; use one of {', '.join(GRID_KINDS)} (e.g. power:2, "
        "log_uniform:0.01, or a file saved from GridDesign.to_json() or SolverDesign.to_json())"
    )


def _read_design(path: Path) -> ind.GridDesign | ind.SolverDesign:
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"grid design file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
        is_solver = isinstance(data, dict) and data.get("format") == "indiflow.SolverDesign"
        return (ind.SolverDesign if is_solver else ind.GridDesign).from_dict(data)
    # json.JSONDecodeError is a ValueError; ImportError: a solver class path that does not load.
    except (ValueError, TypeError, ImportError) as error:
        raise argparse.ArgumentTypeError(
            f"{str(path)!r} is not a saved indiflow.GridDesign or indiflow.SolverDesign "
            f"(write one with Path(p).write_text(design.to_json())): {error}"
        ) from error


def build_solver(grid: GridSpec, name: str | None) -> Solver:
    """The solver of a restore run: ``SOLVERS[name]`` (default ``euler``), or the solver that a
    ``SolverDesign`` given as ``--grid`` carries.

    A solver design's grid is made for its own solver (for a ``DesignedSolver``, the grid is its
    regressor times), so ``name`` may only repeat that solver (the base of a
    ``DesignedSolver``), or be left out.

    Raises:
        ValueError: ``name`` names another solver than the design's.
    """
    designed = grid.solver
    if designed is None:
        return SOLVERS["euler" if name is None else name]()
    base = designed.base if isinstance(designed, DesignedSolver) else designed
    if name is not None and SOLVERS[name]() != base:
        raise ValueError(
            f"--solver {name} contradicts the solver design {grid.text!r}, which runs "
            f"{type(base).__name__}"
            f"{' with designed coefficients' if base is not designed else ''}; leave out "
            "--solver to use the design's solver"
        )
    return designed


def build_controller(
    grid: GridSpec, steps: int | None, adaptive: bool, rtol: float, atol: float
) -> ind.FixedSteps | ind.PerSampleAdaptive:
    """The controller of a restore run: fixed steps on the grid, or error control.

    Error control is ``PerSampleAdaptive(rtol, atol)``: every image takes its own steps, so its
    result does not depend on the other images of its batch.

    ``steps`` defaults to ``DEFAULT_STEPS``; a design file fixes its own number of steps and an
    explicit different ``steps`` is an error.

    Raises:
        ValueError: if ``steps`` contradicts a design file.
    """
    if adaptive:
        return ind.PerSampleAdaptive(rtol=rtol, atol=atol)
    if grid.kind == "design" and steps is not None and steps != grid.design.steps:
        raise ValueError(
            f"--steps {steps} contradicts the grid design {grid.text!r}, which has "
            f"{grid.design.steps} steps; leave out --steps"
        )
    return ind.FixedSteps(grid.build(DEFAULT_STEPS if steps is None else steps))
