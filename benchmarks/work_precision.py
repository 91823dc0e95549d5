"""Work-precision: endpoint error against evaluations per sample, indiflow against the anchors.

Question: per network evaluation, how accurate is each indiflow solver / grid / controller, and
how does that compare with torchdiffeq and k-diffusion run on the same field in the same run?
For each field (see ``_wp_fields``) every method solves the same 128 float64 inputs to ``t = 0``;
the error is taken against a tight reference solve: RMS = ``sqrt(mean_i |x_i - ref_i|^2)`` and
max = ``max_i |x_i - ref_i|`` (Euclidean norm per sample). indiflow's designed grids
(``ind.design_grid``) are optimised on a separate pilot batch (seed 1), never on the test inputs.

    python benchmarks/work_precision.py --out runs/bench/work_precision
    python benchmarks/work_precision.py --quick --fields four_modes     # smoke run, ~1 min

k-diffusion is loaded by ``_kdiffusion`` (``--kdiffusion`` wheel / directory, or an installed
``pip install --no-deps k-diffusion==0.1.1.post1``). Writes ``runs.csv``, ``summary.md``,
``work_precision.png``, the designed grids as JSON under ``grids/`` and ``meta.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from _kdiffusion import load_sampling
from _wp_anchors import anchor_jobs
from _wp_fields import Job, Problem, make_problem
from tqdm import tqdm

import indiflow as ind

FIELDS = ("four_modes", "ring_mixing", "toy_mlp")
STEPS = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 160)
TOLS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 1e-7)
MAX_EVALS = 200
BUDGETS = (10, 20, 40, 80)
Run = dict[str, object]


def errors(x: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """RMS and max over samples of the per-sample Euclidean error."""
    per_sample = (x - reference).flatten(1).norm(dim=1)
    return float(per_sample.square().mean().sqrt()), float(per_sample.max())


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


def indiflow_jobs() -> list[Job]:
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
            if evals_of(solver, n) > MAX_EVALS:
                break
            grids = {"uniform": ind.TimeGrid.uniform(n)}
            grids.update({f"power{r}": ind.TimeGrid.power(n, r) for r in (2, 3)})
            for label, grid in grids.items():
                jobs.append(Job("indiflow", name, label, str(n), partial(fixed, solver, grid)))
        if name == "Euler":
            continue  # no error estimate
        # Low-order methods need thousands of steps at tight tolerances: off the plot anyway.
        for tol in TOLS[: 7 if name in ("Heun", "ExpMultistep2") else None]:
            run = partial(controlled, solver, ind.Adaptive(rtol=tol, atol=tol))
            jobs.append(Job("indiflow", name, "adaptive", f"{tol:g}", run))
    per_sample = getattr(ind, "PerSampleAdaptive", None)  # part of the same issue, if present
    if per_sample is not None:
        for name in ("BS3", "DP5"):
            for tol in TOLS:
                run = partial(controlled, solvers[name], per_sample(rtol=tol, atol=tol))
                jobs.append(Job("indiflow", name, "per-sample adaptive", f"{tol:g}", run))
    return jobs


def measured(job: Job, problem: Problem, x: torch.Tensor, evals: float) -> Run:
    rms, worst = errors(x, problem.reference)
    labels = {"field": problem.name, "library": job.library, "method": job.method}
    labels.update(grid=job.grid, param=job.param)
    return {**labels, "evals": evals, "rms": rms, "max": worst}


def designed_runs(problem: Problem, args: argparse.Namespace) -> list[tuple[Job, Run]]:
    """Grids designed on the pilot batch for ExpMultistep3 and 4 (every budget), ExpMultistep2
    and Euler (10 and 20 steps); each is saved as JSON and run on the test inputs."""
    field = ind.InDIField(problem.regressor)
    tight = ind.Adaptive(rtol=1e-10, atol=1e-10)
    pilot_reference = ind.solve(field, ind.DormandPrince(), problem.pilot, tight, max_steps=10**6).x
    few = [n for n in args.design_steps if n in (10, 20)]
    plan = [
        ("ExpMultistep3", ind.ExpMultistep3(), args.design_steps, args.design_evals),
        ("ExpMultistep4", ind.ExpMultistep4(), args.design_steps, args.design_evals),
        ("ExpMultistep2", ind.ExpMultistep2(), few, args.design_evals / 2),
        ("Euler", ind.Euler(), few, args.design_evals / 2),
    ]
    (args.out / "grids").mkdir(parents=True, exist_ok=True)
    runs = []
    with tqdm(total=sum(len(p[2]) for p in plan), desc=f"{problem.name}: design") as bar:
        for name, solver, steps, per_step in plan:
            for n in steps:
                budget = int(per_step * n)
                design = ind.design_grid(field, solver, problem.pilot, n, pilot_reference, budget)
                path = args.out / "grids" / f"{problem.name}_{name}_{n}.json"
                path.write_text(design.to_json())
                job = Job("indiflow", name, "designed", str(n), partial(fixed, solver, design.grid))
                runs.append((job, measured(job, problem, *job.run(problem))))
                bar.update(1)
    return runs


def holdout_check(problem: Problem, jobs: dict[tuple, Job], runs: list[Run]) -> dict[int, tuple]:
    """Re-run the best indiflow run and the best anchor at 10 and 20 evaluations on the
    held-out batch: the RMS of 128 samples is at the mercy of rare inputs near a decision
    boundary, which the larger batch contains."""
    held = replace(problem, y=problem.holdout, reference=problem.holdout_reference)
    out = {}
    for budget in (10, 20):
        pair = [best_under(runs, budget, anchors) for anchors in (False, True)]
        if None in pair:
            continue
        keys = [tuple(r[k] for k in ("library", "method", "grid", "param")) for r in pair]
        out[budget] = tuple(errors(jobs[k].run(held)[0], held.reference)[0] for k in keys)
    return out


def best_under(runs: list[Run], budget: float, anchors: bool) -> Run | None:
    pool = [r for r in runs if (r["library"] != "indiflow") == anchors and r["evals"] <= budget]
    return min(pool, key=lambda r: r["rms"]) if pool else None


def describe(run: Run) -> str:
    return f"{run['library']} {run['method']} ({run['grid']}, {run['param']})"


def summary(
    problems: list[Problem], runs: list[Run], held: dict[str, dict], meta: dict[str, object]
) -> str:
    """Markdown: per field and budget, the best indiflow run, the best anchor and their ratio."""
    lines = [f"# Work-precision ({meta['machine']}, commit {meta['commit']})", ""]
    header = (
        "| budget | best indiflow | evals | RMS | max | best anchor | evals | RMS | max | ratio |"
    )
    for problem in problems:
        mine = [r for r in runs if r["field"] == problem.name]
        check = f"{problem.reference_check:.1e}"
        lines += [f"## {problem.name}: {problem.description}", ""]
        lines += [f"Reference: DP5 rtol = atol = 1e-10; max distance to DOP853 in log t {check}."]
        lines += ["", header, "|---" * 10 + "|"]
        for budget in BUDGETS:
            a, b = best_under(mine, budget, False), best_under(mine, budget, True)
            if a is None or b is None:
                continue
            lines.append(
                f"| ≤ {budget} | {describe(a)} | {a['evals']:.1f} | {a['rms']:.2e} | "
                f"{a['max']:.2e} | {describe(b)} | {b['evals']:.1f} | {b['rms']:.2e} | "
                f"{b['max']:.2e} | {a['rms'] / b['rms']:.3f} |"
            )
        n_held = problem.holdout.shape[0]
        for budget, (mine_rms, anchor_rms) in held[problem.name].items():
            lines.append(
                f"\nSame two at ≤ {budget} on {n_held} held-out inputs: RMS {mine_rms:.2e} vs "
                f"{anchor_rms:.2e}, ratio {mine_rms / anchor_rms:.3f}."
            )
        lines.append("")
    return "\n".join(lines)


def pareto(runs: list[Run]) -> tuple[list[float], list[float]]:
    """The runs no cheaper run beats: the method's work-precision front."""
    best, xs, ys = float("inf"), [], []
    for r in sorted(runs, key=lambda r: (r["evals"], r["rms"])):
        if r["rms"] < best:
            best = r["rms"]
            xs.append(r["evals"])
            ys.append(r["rms"])
    return xs, ys


def plot(fields: list[str], runs: list[Run], path: Path) -> None:
    """One log-log panel per field: each method's front (indiflow solid, anchors dashed/dotted)."""
    plt.switch_backend("agg")
    fig, axes = plt.subplots(1, len(fields), figsize=(7 * len(fields), 6), squeeze=False)
    styles = {"indiflow": "-", "torchdiffeq": ":", "k-diffusion": "--"}
    groups = sorted({(r["library"], r["method"], r["grid"] == "designed") for r in runs})
    colors = dict(zip(groups, plt.cm.tab20(np.linspace(0, 1, len(groups))), strict=True))
    for ax, name in zip(axes[0], fields, strict=True):
        mine = [r for r in runs if r["field"] == name]
        for key in groups:
            library, method, designed = key
            group = [r for r in mine if (r["library"], r["method"], r["grid"] == "designed") == key]
            if not group:
                continue
            xs, ys = pareto(group)
            label = f"{library} {method}" + (" (designed grid)" if designed else "")
            ax.loglog(xs, ys, styles[library], color=colors[key], label=label,
                      marker="o" if designed else ".", lw=2.2 if designed else 1.2)  # fmt: skip
        for budget in (10, 20):
            ax.axvline(budget, color="grey", lw=0.5)
        ax.set(title=name, xlabel="mean evaluations per sample", ylabel="RMS error")
        ax.set_xlim(1.5, MAX_EVALS * 1.2)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


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
    add("--pilot", type=int, default=2048, help="pilot inputs for grid design")
    add("--holdout", type=int, default=4096, help="held-out inputs to re-measure the winners")
    add("--design-evals", type=int, default=120, help="pilot solves per design per grid step")
    add("--design-steps", default="4,6,8,10,15,20", help="steps of the designed grids")
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
    if args.quick:
        args.pilot, args.holdout, args.design_evals = 256, 512, 30
        args.design_steps = [5, 10, 20]
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
    problems, runs, held = [], [], {}
    for name in args.fields.split(","):
        start = time.perf_counter()
        checkpoint = (
            args.mlp_checkpoint
            or args.out / f"toy_mlp_f{args.mlp_max_freq:g}_{args.train_steps}.pt"
        )
        problem = make_problem(name, args.samples, args.pilot, args.holdout,
                               args.train_steps, checkpoint, args.mlp_max_freq)  # fmt: skip
        problems.append(problem)
        pairs = designed_runs(problem, args)
        for job in tqdm(indiflow_jobs() + anchor_jobs(sampling, STEPS, TOLS[:8], MAX_EVALS),
                        desc=f"{name}: solves"):  # fmt: skip
            pairs.append((job, measured(job, problem, *job.run(problem))))
        field_runs = [run for _, run in pairs]
        jobs = {(j.library, j.method, j.grid, j.param): j for j, _ in pairs}
        held[name] = holdout_check(problem, jobs, field_runs)
        runs += field_runs
        print(f"{name}: {len(field_runs)} runs in {time.perf_counter() - start:.0f} s")
    with open(args.out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    text = summary(problems, runs, held, meta)
    (args.out / "summary.md").write_text(text + "\n")
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1))
    plot([p.name for p in problems], runs, args.out / "work_precision.png")
    print(text)
    return runs


if __name__ == "__main__":
    main()
