"""Grid and solver design files for the ``indiflow restore`` tests, as the library saves them.

Imported by the ``tests/test_cli_restore_*.py`` files (``tests/`` is on ``sys.path``, see
``conftest.py``): ``save_design`` writes an ``indiflow.GridDesign``, ``save_solver_design`` an
``indiflow.SolverDesign``, and ``designed_solver`` is a solver with designed coefficients.
"""

import indiflow as ind


def save_design(path, grid):
    design = ind.GridDesign(
        grid=grid,
        solver="Euler()",
        steps=grid.steps,
        evaluations_per_sample=float(grid.steps),
        pilot_size=8,
        pilot_error=0.1,
        start="uniform",
        start_error=0.2,
        objective_evaluations=3,
    )
    path.write_text(design.to_json())
    return path


def save_solver_design(path, solver, grid):
    design = ind.SolverDesign(
        grid=grid,
        solver=solver,
        steps=grid.steps,
        loss_power=2.0,
        pilot_size=4,
        pilot_error=0.1,
        pilot_loss=0.1,
        start="given",
        start_error=0.2,
        start_loss=0.2,
        iterations=3,
        evaluations=30,
        gradient_evaluations=12,
    )
    path.write_text(design.to_json())
    return path


def designed_solver():
    """ExpMultistep3 on the nodes 1, 0.5, 0.1, 0 with the network at 0.9, 0.45, 0.08, 0."""
    from indiflow.designed_solver import DesignedSolver

    return DesignedSolver(ind.ExpMultistep3(), (1.0, 0.5, 0.1, 0.0), (0.9, 0.45, 0.08, 0.0))
