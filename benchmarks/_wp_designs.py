"""Designed samplers of the work-precision benchmark, every one measured on held-out inputs.

Two designers, both on the same pilot batch (seed 1) against the same tight pilot reference:

* ``NM``: ``ind.design_grid`` (Nelder–Mead on the grid, RMS objective), ``--design-evals`` pilot
  solves per grid step;
* ``grad``: ``ind.design_solver`` (Adam through the solve, RMS objective), ``--design-iterations``
  Adam steps on mini-batches of ``--design-batch`` pilot inputs (``small``: 200 steps on 256;
  ``mid``: 1000 on 512),
  the grid alone, with the start time (``t0``) or with decoupled regressor times (``coef``);
* ``NM coef``: ``design_solver`` with decoupled regressor times started from the ``NM`` grid
  (``lr`` 0.01); its cost includes the ``NM`` design's.

A design saved under ``designs/`` by an earlier run with the same settings is loaded instead
of designed again (its recorded cost kept), so an interrupted run resumes. Each design is then
run on the held-out batch (seed 2, never seen by any design) and that is
its figure; the pilot RMS is printed beside it. The best anchors are re-measured on the same
held-out batch (the five best at each budget on the test inputs), so ratios compare like with
like. Design cost: forward regressor evaluations of one sample each (the shared pilot
reference counted separately), and for ``grad`` the evaluations back-propagated through.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from functools import partial

import torch
from _wp_fields import Job, Problem
from tqdm import tqdm

import indiflow as ind

Run = dict[str, object]
TOP = 5  # anchors re-measured on the held-out batch per budget


def errors(x: torch.Tensor, reference: torch.Tensor) -> tuple[float, float, float]:
    """RMS, max and trimmed RMS (without the worst 1 %) over samples of the per-sample error.

    The trimmed RMS separates the bulk of the inputs from the few near a boundary between
    modes, whose errors (a coarse solve sends them towards the other mode) dominate the RMS.
    """
    per_sample = (x - reference).flatten(1).norm(dim=1)
    kept = per_sample.sort().values[: max(1, math.ceil(0.99 * per_sample.numel()))]
    rms = float(per_sample.square().mean().sqrt())
    return rms, float(per_sample.max()), float(kept.square().mean().sqrt())


def run_fixed(solver: object, grid: ind.TimeGrid, problem: Problem) -> tuple[torch.Tensor, float]:
    sol = ind.solve(ind.InDIField(problem.regressor), solver, problem.y, ind.FixedSteps(grid))
    return sol.x, sol.stats.rows / problem.y.shape[0]


def plan(steps: list[int], nm_steps: list[int]) -> list[tuple[str, object, str, dict, list]]:
    """(method, solver, design, options, steps): what is designed for every field.

    ``grad small`` (200 Adam steps on mini-batches of 256) and ``grad mid`` (1000 on 512) are
    the cheaper settings that the cost target compares with Nelder–Mead; the others take
    ``--design-iterations`` steps on mini-batches of ``--design-batch``.
    """
    m4, euler = ind.ExpMultistep4(), ind.Euler()
    small = {"iterations": 200, "batch_size": 256}
    mid = {"iterations": 1000, "batch_size": 512, "coefficients": True}
    return [
        ("ExpMultistep4", m4, "NM", {}, nm_steps),
        ("ExpMultistep4", m4, "grad small", small, nm_steps),
        ("ExpMultistep4", m4, "grad small coef", {**small, "coefficients": True}, nm_steps),
        ("ExpMultistep4", m4, "grad mid coef", mid, nm_steps),
        ("ExpMultistep4", m4, "NM coef", {"coefficients": True, "lr": 0.01}, nm_steps),
        ("ExpMultistep4", m4, "grad", {}, steps),
        ("ExpMultistep4", m4, "grad coef", {"coefficients": True}, steps),
        ("ExpMultistep4", m4, "grad t0", {"start_time": True}, steps),
        ("Euler", euler, "grad t0", {"start_time": True}, steps),
    ]


def nm_start(
    nm_grids: dict[tuple[str, int], tuple[ind.TimeGrid, int]], method: str, steps: int
) -> tuple[ind.TimeGrid, int]:
    """The NM grid of ``method`` at ``steps`` and its cost, for the ``NM coef`` design."""
    if (method, steps) not in nm_grids:
        raise ValueError(
            f"the design {method}:NM coef starts from {method}:NM at {steps} steps; add "
            f"{method}:NM to --designs and {steps} to --nm-steps"
        )
    return nm_grids[(method, steps)]


def designed_runs(problem: Problem, args: argparse.Namespace) -> tuple[list[Run], dict]:
    """Every design of ``plan`` for ``problem``, saved as JSON and measured held out."""
    field = ind.InDIField(problem.regressor)
    tight = ind.Adaptive(rtol=1e-10, atol=1e-10)
    sol = ind.solve(field, ind.DormandPrince(), problem.pilot, tight, max_steps=10**6)
    pilot_reference, reference_cost = sol.x, sol.stats.rows
    held = replace(problem, y=problem.holdout, reference=problem.holdout_reference)
    pilot = replace(problem, y=problem.pilot, reference=pilot_reference)
    (args.out / "designs").mkdir(parents=True, exist_ok=True)
    runs = []
    todo = plan(args.design_steps, args.nm_steps)
    nm_grids: dict[tuple[str, int], tuple[ind.TimeGrid, int]] = {}
    with tqdm(total=sum(len(p[4]) for p in todo), desc=f"{problem.name}: design") as bar:
        for method, solver, kind, options, steps in todo:
            if args.designs is not None and f"{method}:{kind}" not in args.designs:
                bar.update(len(steps))
                continue
            for n in steps:
                start = time.perf_counter()
                name = f"{problem.name}_{method}_{kind.replace(' ', '-')}_{n}.json"
                saved = args.out / "designs" / name
                if saved.exists():  # a design this script saved before, with its cost
                    loader = ind.GridDesign if kind == "NM" else ind.SolverDesign
                    design = loader.from_json(saved.read_text())
                if kind == "NM" and saved.exists():
                    cost = design.objective_evaluations * n * design.pilot_size
                    backward, run_solver = 0, solver
                elif saved.exists():
                    cost, backward = design.evaluations, design.gradient_evaluations
                    run_solver = design.solver
                elif kind == "NM":
                    budget = args.design_evals * n
                    design = ind.design_grid(field, solver, problem.pilot, n, pilot_reference,
                                             budget)  # fmt: skip
                    cost = design.objective_evaluations * n * problem.pilot.shape[0]
                    backward, run_solver = 0, solver
                else:
                    generator = torch.Generator().manual_seed(0)
                    settings = {"iterations": args.design_iterations,
                                "batch_size": args.design_batch, **options}  # fmt: skip
                    if kind == "NM coef":
                        settings["start"] = nm_start(nm_grids, method, n)[0]
                    design = ind.design_solver(field, solver, problem.pilot, n,
                                               reference=pilot_reference, generator=generator,
                                               **settings)  # fmt: skip
                    cost, backward = design.evaluations, design.gradient_evaluations
                    run_solver = design.solver
                if kind == "NM coef":  # the saved design's count is of its own run alone
                    cost += nm_start(nm_grids, method, n)[1]
                if kind == "NM":
                    nm_grids[(method, n)] = (design.grid, cost)
                seconds = "saved" if saved.exists() else round(time.perf_counter() - start, 1)
                saved.write_text(design.to_json())
                job = Job("indiflow", method, f"designed {kind}", str(n),
                          partial(run_fixed, run_solver, design.grid))  # fmt: skip
                x_held, evals = job.run(held)
                rms, worst, trimmed = errors(x_held, held.reference)
                pilot_rms = errors(job.run(pilot)[0], pilot_reference)[0]
                runs.append({
                    "field": problem.name, "library": "indiflow", "method": method,
                    "grid": f"designed {kind}", "param": str(n), "evals": evals, "rms": rms,
                    "max": worst, "rms99": trimmed, "inputs": "held-out", "pilot_rms": pilot_rms,
                    "design_evals": cost, "design_backward": backward,
                    "design_seconds": seconds,
                })  # fmt: skip
                bar.update(1)
    return runs, {"reference_cost": reference_cost, "pilot": problem.pilot.shape[0]}


def best_anchors_held_out(
    problem: Problem, jobs: dict[tuple, Job], runs: list[Run], budgets: tuple[int, ...]
) -> dict[int, Run]:
    """Per budget, the best anchor on the held-out batch among the ``TOP`` best on the test set."""
    held = replace(problem, y=problem.holdout, reference=problem.holdout_reference)
    out, cache = {}, {}
    for budget in budgets:
        pool = [r for r in runs if r["library"] != "indiflow" and r["evals"] <= budget]
        best = None
        for r in sorted(pool, key=lambda r: r["rms"])[:TOP]:
            key = tuple(r[k] for k in ("library", "method", "grid", "param"))
            if key not in cache:
                x, evals = jobs[key].run(held)
                cache[key] = {**r, "evals": evals, "test_rms": r["rms"], "inputs": "held-out"}
                cache[key].update(
                    zip(("rms", "max", "rms99"), errors(x, held.reference), strict=True)
                )
            if best is None or cache[key]["rms"] < best["rms"]:
                best = cache[key]
        if best is not None:
            out[budget] = best
    return out
