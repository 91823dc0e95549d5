"""Work-precision: endpoint error against evaluations per sample, indiflow against the anchors.

Question: per network evaluation, how accurate is each indiflow solver / grid / controller, and
how does that compare with torchdiffeq and k-diffusion run on the same field in the same run?
For each field (see ``_wp_fields``) every method solves the same 128 float64 inputs to ``t = 0``;
the error is taken against a tight reference solve: RMS = ``sqrt(mean_i |x_i - ref_i|^2)`` and
max = ``max_i |x_i - ref_i|`` (Euclidean norm per sample). Designed samplers (``ind.design_grid``,
``ind.design_solver``; see ``_wp_designs``) are designed on a pilot batch (seed 1) and every
figure of theirs is measured on a held-out batch (seed 2) that no design saw, the pilot RMS
printed beside it; the best anchors are re-measured on the same held-out batch.

    python benchmarks/work_precision.py --out runs/bench/work_precision
    python benchmarks/work_precision.py --quick --fields four_modes     # smoke run

k-diffusion is loaded by ``_kdiffusion`` (``--kdiffusion`` wheel / directory, or an installed
``pip install --no-deps k-diffusion==0.1.1.post1``). Writes ``runs.csv``, ``summary.md`` (after
every field), ``work_precision.png``, every design as JSON under ``designs/`` and ``meta.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import time
from functools import partial
from pathlib import Path

import torch
from _kdiffusion import load_sampling
from _wp_anchors import anchor_jobs
from _wp_designs import best_anchors_held_out, designed_runs, errors
from _wp_fields import Job, Problem, make_problem
from _wp_report import plot, summary
from tqdm import tqdm

import indiflow as ind

FIELDS = ("ring_mixing", "random_modes_h", "random_modes", "four_modes", "toy_mlp")
STEPS = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 160)
TOLS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 1e-7)
MAX_EVALS = 200
BUDGETS = (10, 20, 40, 80)
Run = dict[str, object]


def evals_of(solver: object, n: int) -> int:
    """Evaluations per sample of a fixed grid of ``n`` steps ending at 0 (limit step free)."""
    per_step = {ind.Heun: 2, ind.BogackiShampine: 3, ind.DormandPrince: 6}.get(type(solver), 1)
    return per_step * (n - 1) + 1


def fixed(solver: object, grid: ind.TimeGrid, problem: Problem) -> tuple[torch.Tensor, float]:
    sol = ind.solve(ind.InDIField(problem.regressor), solver, problem.y, ind.FixedSteps(grid))
    return sol.x, sol.stats.rows / problem.y.shape[0]


def controlled(solver: object, controller: object, problem: Problem) -> tuple[torch.Tensor, float]:
    field = ind.InDIField(problem.regressor)
    sol = ind.solve(field, solver, problem.y, controller, max_steps=100_000)
    return sol.x, sol.stats.rows / problem.y.shape[0]


def indiflow_jobs(max_evals: int, tols: tuple[float, ...]) -> list[Job]:
    """Every indiflow solver on uniform and power grids, and under the adaptive controllers."""
    solvers = {
        "Euler": ind.Euler(),
        "Heun": ind.Heun(),
        "BS3": ind.BogackiShampine(),
        "DP5": ind.DormandPrince(),
        "ExpMultistep2": ind.ExpMultistep2(),
        "ExpMultistep3": ind.ExpMultistep3(),
        "ExpMultistep3-AB": ind.ExpMultistep3(corrector=False),
        "ExpMultistep4": ind.ExpMultistep4(),
    }
    jobs = []
    for name, solver in solvers.items():
        for n in STEPS:
            if evals_of(solver, n) > max_evals:
                break
            grids = {"uniform": ind.TimeGrid.uniform(n)}
            grids.update({f"power{r}": ind.TimeGrid.power(n, r) for r in (2, 3)})
            for label, grid in grids.items():
                jobs.append(Job("indiflow", name, label, str(n), partial(fixed, solver, grid)))
        if name == "Euler":
            continue  # no error estimate
        # Low-order methods need thousands of steps at tight tolerances: off the plot anyway.
        for tol in tols[: 7 if name in ("Heun", "ExpMultistep2") else None]:
            run = partial(controlled, solver, ind.Adaptive(rtol=tol, atol=tol))
            jobs.append(Job("indiflow", name, "adaptive", f"{tol:g}", run))
    per_sample = getattr(ind, "PerSampleAdaptive", None)  # part of the same issue, if present
    if per_sample is not None:
        for name in ("BS3", "DP5"):
            for tol in tols:
                run = partial(controlled, solvers[name], per_sample(rtol=tol, atol=tol))
                jobs.append(Job("indiflow", name, "per-sample adaptive", f"{tol:g}", run))
    return jobs


def measured(job: Job, problem: Problem, x: torch.Tensor, evals: float) -> Run:
    rms, worst, trimmed = errors(x, problem.reference)
    labels = {"field": problem.name, "library": job.library, "method": job.method}
    labels.update(grid=job.grid, param=job.param)
    blank = dict.fromkeys(("pilot_rms", "design_evals", "design_backward", "design_seconds"), "")
    return {
        **labels,
        "evals": evals,
        "rms": rms,
        "max": worst,
        "rms99": trimmed,
        "inputs": "test",
        **blank,
    }


def machine_and_commit() -> tuple[str, str]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    names = [
        ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")
    ]
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()
    return (names[0] if names else platform.processor()), commit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", type=Path, default=Path("runs/bench/work_precision"))
    add("--fields", default=",".join(FIELDS), help="comma-separated subset of " + str(FIELDS))
    add("--samples", type=int, default=128, help="test inputs per field")
    add("--pilot", type=int, default=8192, help="pilot inputs for grid design")
    add("--holdout", type=int, default=4096, help="held-out inputs to re-measure the winners")
    add("--design-evals", type=int, default=120, help="pilot solves per design per grid step")
    add("--design-steps", default="10,20", help="steps of the designed samplers")
    add("--design-iterations", type=int, default=1000, help="Adam steps of design_solver")
    add("--design-batch", type=int, default=2048, help="pilot inputs per Adam step")
    add("--designs", default=None,
        help="comma-separated METHOD:KIND subset of _wp_designs.plan (default: all)")  # fmt: skip
    add("--nm-steps", default="10,20", help="steps of the Nelder-Mead designs")
    add("--max-evals", type=int, default=MAX_EVALS, help="largest fixed-grid cost run")
    add("--tols", type=int, default=len(TOLS), help="how many of TOLS the adaptive runs use")
    add("--train-steps", type=int, default=6000, help="ToyMLP training steps (~20 s here)")
    add("--mlp-max-freq", type=float, default=4.0, help="ToyMLP time-embedding max frequency")
    add("--mlp-checkpoint", type=Path, default=None,
        help="ToyMLP weights to load, or to write after training "
             "(default: <out>/toy_mlp_f<max-freq>_<steps>.pt)")  # fmt: skip
    add("--kdiffusion", default=None, help="k-diffusion wheel or directory (default: installed)")
    add("--quick", action="store_true", help="smoke run: small pilot, three designs")
    add("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    args.design_steps = [int(v) for v in args.design_steps.split(",")]
    args.nm_steps = [int(v) for v in args.nm_steps.split(",") if v]
    args.designs = None if args.designs is None else args.designs.split(",")
    if args.quick:
        args.pilot, args.holdout, args.design_evals = 256, 512, 30
        args.design_iterations, args.design_batch = 50, 256
        args.design_steps, args.nm_steps, args.max_evals, args.tols = [5, 10], [10], 40, 3
    return args


def main(argv: list[str] | None = None) -> list[Run]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    machine, commit = machine_and_commit()
    settings = {k: str(v) for k, v in vars(args).items()}
    meta = {"machine": machine, "commit": commit, "torch": torch.__version__, "args": settings}
    try:
        sampling = load_sampling(args.kdiffusion)
    except FileNotFoundError as err:
        print(f"k-diffusion anchors skipped: {err}")
        sampling = None
    problems, runs, anchors, costs = [], [], {}, {}
    budgets = tuple(b for b in BUDGETS if b <= args.max_evals)
    tols = TOLS[: args.tols]
    for name in args.fields.split(","):
        start = time.perf_counter()
        checkpoint = (
            args.mlp_checkpoint
            or args.out / f"toy_mlp_f{args.mlp_max_freq:g}_{args.train_steps}.pt"
        )
        problem = make_problem(name, args.samples, args.pilot, args.holdout,
                               args.train_steps, checkpoint, args.mlp_max_freq)  # fmt: skip
        problems.append(problem)
        field_runs, costs[name] = designed_runs(problem, args)
        pairs = []
        for job in tqdm(indiflow_jobs(args.max_evals, tols)
                        + anchor_jobs(sampling, STEPS, tols[:8], args.max_evals),
                        desc=f"{name}: solves"):  # fmt: skip
            pairs.append((job, measured(job, problem, *job.run(problem))))
        field_runs += [run for _, run in pairs]
        jobs = {(j.library, j.method, j.grid, j.param): j for j, _ in pairs}
        anchors[name] = best_anchors_held_out(problem, jobs, field_runs, budgets)
        runs += field_runs
        print(f"{name}: {len(field_runs)} runs in {time.perf_counter() - start:.0f} s")
        with open(args.out / "runs.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(runs[0]))
            writer.writeheader()
            writer.writerows(runs)
        text = summary(problems, runs, anchors, costs, budgets, meta)
        (args.out / "summary.md").write_text(text + "\n")
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1))
    plot([p.name for p in problems], runs, args.out / "work_precision.png", args.max_evals)
    print(text)
    return runs


if __name__ == "__main__":
    main()
