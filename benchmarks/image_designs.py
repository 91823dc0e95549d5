"""Designed grids and samplers against the best anchors at 5 and 10 evaluations, on photos.

Question: with the 4x super-resolution U-Net of ``sr4_photos_cpu``, how close to a tight
reference solve does a grid (``ind.design_grid``) or a sampler (``ind.design_solver``) designed
on a small pilot of training patches get on held-out photos, compared with the best of the
usual samplers at the same number of network evaluations per image?

* Pilot: ``--pilot`` random ``--patch``-pixel crops of the bundled training photos, degraded
  by the checkpoint's degradation with a seeded generator; held-out: the central ``--crop``
  pixels of the four bundled test photos. Both start from ``x_1 = y + eps * eta`` (the
  checkpoint's noise, one seeded draw per batch) and every method starts from that same state.
* Reference (pilot and held-out alike): ``ExpMultistep3`` on ``uniform(2 R)``, checked against
  ``uniform(R)`` (``--ref-steps R``); the gap is reported, and must be far below the errors.
* Designs per budget ``B``: ``design_grid`` for ``Euler`` and for ``ExpMultistep3`` (Nelder–Mead,
  ``--grid-evals`` pilot solves), then ``design_solver`` for ``ExpMultistep3`` with a designed
  start time and coefficients (``DesignedSolver``), warm-started from the ExpMultistep3 grid
  (``--solver-iters`` Adam steps on the whole pilot, ``L_2`` objective = the RMS error).
  Saved to ``OUT/designs/*.json``; they load into ``indiflow restore --grid FILE``.
* Anchors at ``B``: see ``_image_methods.anchor_methods``; a power grid with the pilot's best
  ``rho`` (found by ``design_grid``'s start scan) is added where it is not in the list.

Reported per method: evaluations per image (measured), per-pixel RMS to the reference, PSNR to
the ground truth (clamped to [0, 1]), and the design cost in pilot image-evaluations (forward;
back-propagated ones separately). Ratio = best designed RMS / best anchor RMS at each budget.

Run (CPU, a few tens of minutes):

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/image_designs.py
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from _image_methods import (
    Method,
    anchor_methods,
    central_crops,
    counted_run,
    degrade_and_start,
    fixed,
    random_patches,
    reference_solutions,
    rms,
)
from _kdiffusion import load_sampling

import indiflow as ind

FIELDS = (
    "family", "name", "grid", "budget", "evaluations", "rms", "psnr",
    "design_evaluations", "gradient_evaluations", "design_seconds",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--checkpoint", default="sr4_photos_cpu", help="checkpoint, weights file or shipped name")
    add("--out", type=Path, default=Path("runs/image_designs"))
    add("--budgets", type=int, nargs="+", default=[5, 10])
    add("--pilot", type=int, default=16, help="pilot patches")
    add("--patch", type=int, default=64, help="pilot patch size")
    add("--crop", type=int, default=128, help="held-out central crop size")
    add("--ref-steps", type=int, default=24, help="reference: ExpMultistep3 on uniform(2R)")
    add("--grid-evals", type=int, default=20, help="pilot solves per design_grid")
    add("--solver-iters", type=int, default=24, help="Adam steps per design_solver")
    add("--lr", type=float, default=0.01, help="design_solver's learning rate")
    add("--coefficient-lr", type=float, default=0.005,
        help="design_solver's learning rate on the regressor-time offsets")  # fmt: skip
    add("--seed", type=int, default=0)
    add("--summary-only", action="store_true", help="rewrite summary.md from results.csv")
    add("--skip-designs", action="store_true", help="references and anchors only")
    add("--grids-from", type=Path, default=None, metavar="DIR",
        help="reuse the grid designs saved in DIR (their recorded cost kept; 0 s)")  # fmt: skip
    add("--anchors", nargs="+", default=None, metavar="FAMILY/GRID",
        help="only these anchors (e.g. torchdiffeq/uniform); default: all")  # fmt: skip
    add("--kdiffusion", default=None, help="k-diffusion wheel or directory (default: installed)")
    return parser.parse_args(argv)


def evaluate(
    model: torch.nn.Module, method: Method, x_1: torch.Tensor, ref: torch.Tensor,
    clean: torch.Tensor, cost: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> dict[str, object]:  # fmt: skip
    """One row: ``method`` on the held-out start ``x_1``, scored against ``ref`` and ``clean``."""
    x, evaluations = counted_run(model, method.run, x_1)
    psnr = float(ind.metrics.psnr(x.clamp(0.0, 1.0), clean).mean())
    return {
        "family": method.family, "name": method.name, "grid": method.grid,
        "budget": method.budget, "evaluations": evaluations, "rms": rms(x, ref), "psnr": psnr,
        "design_evaluations": cost[0], "gradient_evaluations": cost[1], "design_seconds": cost[2],
    }  # fmt: skip


def best_rho(label: str) -> float | None:
    """``rho`` of a ``design_grid`` start label ``power(n, rho=R)``; ``None`` otherwise."""
    return float(label.split("rho=")[1].rstrip(")")) if "rho=" in label else None


def design_methods(
    model: torch.nn.Module, pilot_x1: torch.Tensor, pilot_ref: torch.Tensor, budget: int,
    args: argparse.Namespace, folder: Path,
) -> list[tuple[Method, tuple[float, float, float], float | None]]:  # fmt: skip
    """The designs at ``budget``: ``(method, (forward, backward, seconds) cost, pilot rho)``."""
    field, size = ind.InDIField(model), pilot_x1.shape[0]
    folder.mkdir(parents=True, exist_ok=True)
    found = []
    grids = {}
    for label, solver in (("euler", ind.Euler()), ("expms3", ind.ExpMultistep3())):
        start = time.perf_counter()
        saved = None if args.grids_from is None else args.grids_from / f"grid_{label}_{budget}.json"
        if saved is not None:
            design = ind.GridDesign.from_json(saved.read_text())
        else:
            with torch.no_grad():
                design = ind.design_grid(
                    field, solver, pilot_x1, budget, reference=pilot_ref,
                    evaluations=args.grid_evals,
                )  # fmt: skip
        seconds = time.perf_counter() - start
        (folder / f"grid_{label}_{budget}.json").write_text(design.to_json())
        ind.GridDesign.from_json((folder / f"grid_{label}_{budget}.json").read_text())
        forward = design.objective_evaluations * design.evaluations_per_sample * size
        grids[label] = (design, forward, seconds)
        method = Method(
            "designed", f"design_grid {label}", "designed", budget, fixed(solver, design.grid)
        )
        found.append((method, (forward, 0.0, seconds), best_rho(design.start)))
        print(
            f"  design_grid {label} B={budget}: pilot RMS {design.start_error:.3e} -> "
            f"{design.pilot_error:.3e} ({design.start}), {seconds:.0f} s",
            flush=True,
        )
    warm, warm_forward, warm_seconds = grids["expms3"]
    start = time.perf_counter()
    design = ind.design_solver(
        field, ind.ExpMultistep3(), pilot_x1, budget, reference=pilot_ref,
        iterations=args.solver_iters, lr=args.lr, coefficient_lr=args.coefficient_lr,
        batch_size=size, start_time=True,
        coefficients=True, loss_power=2.0, start=warm.grid,
        generator=torch.Generator().manual_seed(args.seed),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    path = folder / f"solver_expms3_{budget}.json"
    path.write_text(design.to_json())
    ind.SolverDesign.from_json(path.read_text())
    cost = (
        warm_forward + design.evaluations,
        float(design.gradient_evaluations),
        warm_seconds + seconds,
    )
    method = Method(
        "designed",
        "design_solver expms3",
        "designed t0+coefs",
        budget,
        fixed(design.solver, design.grid),
    )
    found.append((method, cost, None))
    print(f"  design_solver expms3 B={budget}: pilot RMS/image {design.start_error:.3e} -> "
          f"{design.pilot_error:.3e}, {seconds:.0f} s", flush=True)  # fmt: skip
    return found


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def summary(rows: list[dict[str, object]], budgets: list[int], notes: list[str]) -> str:
    """The markdown table, sorted by budget then RMS, and the ratio per budget."""
    lines = [
        "| budget | method | grid | evals/image | RMS to reference | PSNR (dB) | design cost "
        "(pilot image-evals, forward + backward) |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    ratios = []
    for budget in budgets:
        here = sorted((r for r in rows if r["budget"] == budget), key=lambda r: r["rms"])
        for r in here:
            cost = "" if r["family"] != "designed" else (
                f"{r['design_evaluations']:.0f} + {r['gradient_evaluations']:.0f} "
                f"({r['design_seconds']:.0f} s)"
            )  # fmt: skip
            lines.append(
                f"| {budget:g} | {r['family']} {r['name']} | {r['grid']} | {r['evaluations']:g} | "
                f"{r['rms']:.3e} | {r['psnr']:.2f} | {cost} |"
            )
        anchors = [r for r in here if r["family"] != "designed" and r["evaluations"] <= budget]
        designs = [r for r in here if r["family"] == "designed"]
        if anchors and designs:
            a, d = anchors[0], designs[0]
            ratio = d["rms"] / a["rms"]
            ratios.append(
                f"- {budget:g} evaluations: designed / best anchor = {ratio:.2f} "
                f"({d['name']} {d['rms']:.3e} vs {a['family']} {a['name']} {a['grid']} "
                f"{a['rms']:.3e}); target <= 0.5: {'met' if ratio <= 0.5 else 'missed'}"
            )
    return "\n".join([*lines, "", *ratios, "", *notes]) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.summary_only:
        finish(args.out, args.budgets, None)
        return
    from indiflow.training import load_model
    from indiflow.training.specs import build_degradation

    torch.manual_seed(args.seed)
    model, noise, config = load_model(args.checkpoint)
    model.eval().requires_grad_(False)
    degradation = build_degradation(config.data.degradation, config.data.noise_sigma)
    gen = torch.Generator().manual_seed(args.seed)
    pilot_clean = random_patches(ind.data.bundled_photos("train"), args.pilot, args.patch, gen)
    _, pilot_x1 = degrade_and_start(pilot_clean, degradation, noise, args.seed + 1)
    clean = central_crops(ind.data.bundled_photos("test"), args.crop)
    _, x_1 = degrade_and_start(clean, degradation, noise, args.seed + 2)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    pilot_ref, pilot_gap, pilot_ref_evals = reference_solutions(model, pilot_x1, args.ref_steps)
    ref, gap, _ = reference_solutions(model, x_1, args.ref_steps)
    ref_psnr = float(ind.metrics.psnr(ref.clamp(0, 1), clean).mean())
    print(f"references: pilot gap {pilot_gap:.2e}, held-out gap {gap:.2e}, "
          f"PSNR {ref_psnr:.2f} dB ({time.perf_counter() - begin:.0f} s)", flush=True)  # fmt: skip
    notes = [
        f"Pilot: {args.pilot} random {args.patch}x{args.patch} training patches; held-out: "
        f"central {args.crop}x{args.crop} crops of the 4 test photos; start noise {noise!r}.",
        f"Reference: ExpMultistep3 on uniform({2 * args.ref_steps}); RMS gap to "
        f"uniform({args.ref_steps}): pilot {pilot_gap:.2e}, held-out {gap:.2e}; reference "
        f"PSNR {ref_psnr:.2f} dB; pilot reference cost {pilot_ref_evals * args.pilot:.0f} "
        "pilot image-evaluations (shared by all designs, not in the cost column).",
        f"Design settings: design_grid evaluations={args.grid_evals}; design_solver "
        f"iterations={args.solver_iters}, lr={args.lr}, coefficient_lr={args.coefficient_lr}, "
        "L2 objective, warm start from the "
        "ExpMultistep3 grid design (its cost included).",
    ]
    (out / "notes.json").write_text(json.dumps(notes))
    sampling = load_sampling(args.kdiffusion)
    rows: list[dict[str, object]] = []
    for budget in args.budgets:
        designs = []
        if not args.skip_designs:
            designs = design_methods(model, pilot_x1, pilot_ref, budget, args, out / "designs")
        for method, cost, _ in designs:
            rows.append(evaluate(model, method, x_1, ref, clean, cost))
            print(f"  {budget} designed {method.name}: {rows[-1]['rms']:.3e}", flush=True)
            write_csv(out / "results.csv", rows)
        anchors = anchor_methods(budget, sampling)
        for method, _, rho in designs:  # the pilot's best power grid, where not listed
            if rho is not None and rho not in (1.0, 2.0):
                solver = ind.Euler() if "euler" in method.name else ind.ExpMultistep3()
                name = "euler" if "euler" in method.name else "expms3"
                grid = fixed(solver, ind.TimeGrid.power(budget, rho))
                anchors.append(Method("indiflow", name, f"power rho={rho:g}", budget, grid))
        if args.anchors is not None:
            anchors = [a for a in anchors if f"{a.family}/{a.grid}" in args.anchors]
        for method in anchors:
            rows.append(evaluate(model, method, x_1, ref, clean))
            print(f"  {budget} {method.family} {method.name} {method.grid}: "
                  f"{rows[-1]['rms']:.3e}", flush=True)  # fmt: skip
            write_csv(out / "results.csv", rows)
    finish(out, args.budgets, time.perf_counter() - begin)


def finish(out: Path, budgets: list[int], seconds: float | None) -> None:
    """Write ``summary.md`` from ``results.csv`` and ``notes.json`` and print it."""
    with (out / "results.csv").open() as handle:
        rows = [
            {k: v if k in ("family", "name", "grid") else float(v) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]
    notes = json.loads((out / "notes.json").read_text())
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    wall = "" if seconds is None else f"total wall time {seconds:.0f} s; "
    notes.append(
        f"{wall}{when}; {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)."
    )
    text = summary(rows, [float(b) for b in budgets], notes)
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
