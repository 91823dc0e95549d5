"""Per-sample against batch-global adaptivity, and against torchdiffeq's dopri5, at equal error.

Field: the exact posterior mean of four Gaussian modes at (±1, ±1), mode std 0.1, ``H = I``,
sigma = 1, float64. Batches mix easy inputs (far from the mode boundaries: ``min |y_j| > 0.5``)
and hard ones (near them: ``min |y_j| < 0.05``), drawn from the model's own pairs; ``natural``
is a batch of plain draws. Reference: scipy's DOP853 in ``log t`` at ``rtol = atol = 1e-12``
down to ``t = 1e-8``, then the limit step.

Questions:
1. Compaction: rows evaluated (and wall time) by ``PerSampleAdaptive`` against ``Adaptive`` at
   equal max error. Each controller sweeps its tolerance; cost at a given max error is read off
   its Pareto front, interpolated in log-log.
2. Mean evaluations per sample (rows / B) of per-sample DP5 at max error 1e-3 against
   ``torchdiffeq.odeint`` dopri5, swept over tolerance and stopping time ``t_min`` (with
   ``step_t`` so that no stage lands below ``t_min``), then ``F(x, t_min)``; and against the
   ``TorchDiffEq("dopri5")`` backend.
3. Host synchronisations and time per step of each loop, with a trivial regressor (batch 1):
   tensor-to-Python conversions, ``nonzero`` and boolean-mask indexing are counted.

    python benchmarks/adaptivity.py --out runs/adaptivity
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.integrate
import torch
import torchdiffeq
from tqdm import tqdm

import indiflow as ind

F64 = torch.float64
ERRORS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)


def four_modes() -> ind.oracles.PosteriorMean:
    means = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=F64)
    prior = ind.oracles.GaussianMixture(means, 0.1)
    return ind.oracles.PosteriorMean(prior, ind.oracles.LinearDegradation(torch.eye(2), 1.0))


class WithNetworkCost(torch.nn.Module):
    """The exact posterior mean plus ``0 *`` an MLP of the given width: the same values, with a
    cost per row like a network's, so that wall time follows the rows evaluated."""

    def __init__(self, pm, width: int) -> None:
        super().__init__()
        self.pm = pm
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(3, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
            torch.nn.SiLU(), torch.nn.Linear(width, 2),
        ).double()  # fmt: skip

    @torch.no_grad()
    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        load = self.mlp(torch.cat([x_t, t.to(x_t.dtype).expand(x_t.shape[0])[:, None]], dim=1))
        return self.pm(x_t, t) + 0.0 * load


def make_batch(pm, n: int, mix: str, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if mix == "natural":
        return pm.sample_pairs(n, generator=g)[1]
    n_hard = round(float(mix) * n)
    easy, hard = [], []
    while sum(map(len, easy)) < n - n_hard or sum(map(len, hard)) < n_hard:
        y = pm.sample_pairs(20_000, generator=g)[1]
        edge = y.abs().min(dim=1).values
        easy.append(y[edge > 0.5])
        hard.append(y[edge < 0.05])
    return torch.cat([torch.cat(easy)[: n - n_hard], torch.cat(hard)[:n_hard]])


def reference(pm, y: torch.Tensor) -> torch.Tensor:
    """DOP853 on ``dx/dlog t = x - F`` down to ``t = 1e-8``, then ``x(0) = F(x, 1e-8)``."""

    def rhs(lam: float, z: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(z).reshape(y.shape)
        return (x - pm(x, math.exp(lam))).reshape(-1).numpy()

    t_min = 1e-8
    out = scipy.integrate.solve_ivp(rhs, (0.0, math.log(t_min)), y.reshape(-1).numpy(),
                                    method="DOP853", rtol=1e-12, atol=1e-12)  # fmt: skip
    return pm(torch.from_numpy(out.y[:, -1]).reshape(y.shape), t_min)


def timed(fn: Callable[..., object], repeats: int, *args: object) -> tuple[object, float]:
    walls, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        walls.append(time.perf_counter() - start)
    return out, statistics.median(walls)


class CountingField:
    """``dx/dt`` for raw torchdiffeq, counting its calls (each evaluates the whole batch)."""

    def __init__(self, pm) -> None:
        self.pm, self.calls = pm, 0

    def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return (x - self.pm(x, t.expand(x.shape[0]))) / t


def raw_dopri5(pm, y: torch.Tensor, tol: float, t_min: float) -> tuple[torch.Tensor, int]:
    f = CountingField(pm)
    grid = torch.tensor([1.0, t_min], dtype=F64)
    options = {"step_t": torch.tensor([t_min], dtype=F64)}
    x = torchdiffeq.odeint(f, y, grid, rtol=tol, atol=tol, method="dopri5", options=options)[-1]
    return pm(x, torch.full((y.shape[0],), t_min, dtype=F64)), f.calls + 1


def errors(x: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    err = (x - ref).norm(dim=1)
    return {"max_error": err.max().item(), "rms_error": err.square().mean().sqrt().item()}


def pareto_cost(points: list[tuple[float, float]], error: float) -> float:
    """Cost to reach max error ``error``: log-log interpolation on the Pareto front."""
    front: list[tuple[float, float]] = []
    for e, c in sorted(points):
        if not front or c < front[-1][1]:
            front.append((e, c))
    for (e0, c0), (e1, c1) in zip(front, front[1:], strict=False):
        if e0 <= error <= e1:
            w = (math.log(error) - math.log(e0)) / (math.log(e1) - math.log(e0))
            return math.exp((1 - w) * math.log(c0) + w * math.log(c1))
    if front and front[-1][0] <= error:
        return front[-1][1]
    return math.nan


def sweep_mix(pm, mix: str, args: argparse.Namespace) -> tuple[list[dict], dict]:
    torch.manual_seed(args.seed)
    y = make_batch(pm, args.batch, mix, args.seed)
    ref = reference(pm, y)
    regressor = WithNetworkCost(pm, args.mlp_width) if args.mlp_width > 0 else pm
    field, b = ind.InDIField(regressor), y.shape[0]
    check = ind.solve(field, ind.DormandPrince(), y, ind.PerSampleAdaptive(rtol=1e-11, atol=1e-11))
    rows: list[dict] = []
    tols = np.logspace(-2, -7, args.n_tols).tolist()
    configs = [
        (f"{kind} {type(s).__name__}", s, ctrl)
        for s in (ind.DormandPrince(), ind.BogackiShampine())
        for kind, ctrl in (("global", ind.Adaptive), ("per-sample", ind.PerSampleAdaptive))
    ] + [("backend dopri5", ind.backends.TorchDiffEq("dopri5"), ind.Adaptive)]
    for name, solver, ctrl in tqdm(configs, desc=f"mix {mix}", leave=False):
        for tol in tols:
            controller = ctrl(rtol=tol, atol=tol)
            sol, wall = timed(ind.solve, args.repeats, field, solver, y, controller)
            rows.append({"mix": mix, "method": name, "tol": tol, "t_min": 0.0,
                         **errors(sol.x, ref), "rows_per_sample": sol.stats.rows / b,
                         "calls": sol.stats.nfe, "wall_s": wall})  # fmt: skip
    for t_min in (1e-2, 3e-3, 1e-3, 1e-4):
        for tol in tols[: max(1, len(tols) - 3)]:
            (x0, calls), wall = timed(raw_dopri5, args.repeats, regressor, y, tol, t_min)
            rows.append({"mix": mix, "method": "torchdiffeq dopri5", "tol": tol, "t_min": t_min,
                         **errors(x0, ref), "rows_per_sample": float(calls), "calls": calls,
                         "wall_s": wall})  # fmt: skip
    return rows, {"reference_vs_tight_dp5": (check.x - ref).norm(dim=1).max().item()}


def summarise(rows: list[dict], mix: str) -> dict:
    def curve(method: str, key: str) -> list[tuple[float, float]]:
        return [(r["max_error"], r[key]) for r in rows if r["mix"] == mix and r["method"] == method]

    out: dict = {"mix": mix}
    for solver in ("DormandPrince", "BogackiShampine"):
        for e in ERRORS:
            for key, label in (("rows_per_sample", "rows"), ("wall_s", "wall")):
                g = pareto_cost(curve(f"global {solver}", key), e)
                p = pareto_cost(curve(f"per-sample {solver}", key), e)
                out[f"{solver} {label} ratio @{e:g}"] = p / g
                out[f"{solver} global {label} @{e:g}"] = g
                out[f"{solver} per-sample {label} @{e:g}"] = p
    for method in ("torchdiffeq dopri5", "backend dopri5", "per-sample DormandPrince"):
        out[f"{method} evals/sample @1e-3"] = pareto_cost(curve(method, "rows_per_sample"), 1e-3)
    out["per-sample / torchdiffeq dopri5 @1e-3"] = (
        out["per-sample DormandPrince evals/sample @1e-3"]
        / out["torchdiffeq dopri5 evals/sample @1e-3"]
    )
    return out


class SyncCounter:
    """Counts host synchronisation points: tensor-to-Python conversions, ``nonzero`` and
    boolean-mask indexing (what would stall a GPU stream)."""

    NAMES = ("__bool__", "item", "__float__", "__int__", "tolist", "nonzero")

    def __init__(self) -> None:
        self.count = 0
        self.saved: dict[str, object] = {}

    def __enter__(self) -> SyncCounter:
        for name in (*self.NAMES, "__getitem__"):
            original = getattr(torch.Tensor, name)
            self.saved[name] = original

            def wrapper(tensor, *a, _original=original, _name=name):
                if _name != "__getitem__" or (
                    isinstance(a[0], torch.Tensor) and a[0].dtype == torch.bool
                ):
                    self.count += 1
                return _original(tensor, *a)

            setattr(torch.Tensor, name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self.saved.items():
            setattr(torch.Tensor, name, original)


def loop_overheads(repeats: int) -> list[dict]:
    """Syncs and microseconds per step with a trivial regressor at batch 1."""

    def shrink(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # One Gaussian N(0, 0.25 I): the cheapest regressor with a smooth limit at t = 0.
        return 0.25 / (0.25 + t[:, None] ** 2) * x

    field = ind.InDIField(shrink)
    y = torch.tensor([[0.7, -1.2]], dtype=F64)
    grid = ind.FixedSteps(ind.TimeGrid.uniform(40))
    tight = {"rtol": 1e-7, "atol": 1e-7}
    cases = {
        "indiflow fixed grid (DormandPrince)": (ind.DormandPrince(), grid),
        "indiflow Adaptive (DormandPrince)": (ind.DormandPrince(), ind.Adaptive(**tight)),
        "indiflow PerSampleAdaptive (DormandPrince)": (ind.DormandPrince(),
                                                       ind.PerSampleAdaptive(**tight)),
        "backend torchdiffeq rk4 (fixed grid)": (ind.backends.TorchDiffEq("rk4"), grid),
        "backend torchdiffeq dopri5 (Adaptive)": (ind.backends.TorchDiffEq("dopri5"),
                                                  ind.Adaptive(**tight)),
    }  # fmt: skip
    out = []
    for name, (solver, ctrl) in cases.items():
        sol, wall = timed(ind.solve, repeats, field, solver, y, ctrl)
        with SyncCounter() as counter:
            ind.solve(field, solver, y, ctrl)
        out.append({"loop": name, "steps": sol.stats.steps, "calls": sol.stats.nfe,
                    "syncs_per_step": counter.count / sol.stats.steps,
                    "us_per_step": 1e6 * wall / sol.stats.steps})  # fmt: skip

    class Raw:
        def __init__(self) -> None:
            self.calls = self.steps = 0

        def __call__(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return (x - shrink(x, t.expand(x.shape[0]))) / t

        def callback_step(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
            self.steps += 1

    def raw() -> Raw:
        f = Raw()
        grid = torch.tensor([1.0, 1e-3], dtype=F64)
        torchdiffeq.odeint(f, y, grid, method="dopri5", options={"step_t": grid[1:]}, **tight)
        return f

    f, wall = timed(raw, repeats)
    with SyncCounter() as counter:
        raw()
    out.append({"loop": "raw torchdiffeq dopri5 to t = 1e-3", "steps": f.steps,
                "calls": f.calls, "syncs_per_step": counter.count / f.steps,
                "us_per_step": 1e6 * wall / f.steps})  # fmt: skip
    return out


def plot(rows: list[dict], mixes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(mixes), figsize=(5 * len(mixes), 4.2), squeeze=False)
    for ax, mix in zip(axes[0], mixes, strict=True):
        for method in sorted({r["method"] for r in rows}):
            pts = sorted((r["rows_per_sample"], r["max_error"]) for r in rows
                         if r["mix"] == mix and r["method"] == method)  # fmt: skip
            # torchdiffeq's points span several stopping times: markers only, no curve.
            style = {"global": "--", "torchdiffeq": "none"}.get(method.split()[0], "-")
            marker = "x" if style == "none" else "."
            ax.loglog(*zip(*pts, strict=True), linestyle=style, marker=marker, label=method)
        ax.axhline(1e-3, color="grey", lw=0.5)
        ax.set(title=f"mix: {mix}", xlabel="mean evaluations per sample (rows / B)",
               ylabel="max error over the batch")  # fmt: skip
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/adaptivity"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--mixes", default="0.5,0.25,0.1,natural",
                        help="hard-sample fractions, or 'natural' for plain draws")  # fmt: skip
    parser.add_argument("--n-tols", type=int, default=16, help="tolerances from 1e-2 to 1e-7")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mlp-width",
        type=int,
        default=0,
        help="add a network-like cost per row (an MLP of this width, times 0)",
    )
    parser.add_argument("--skip-loops", action="store_true", help="skip the overhead table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    pm = four_modes()
    mixes = args.mixes.split(",")
    rows, summaries = [], []
    for mix in tqdm(mixes, desc="mixes"):
        mix_rows, extra = sweep_mix(pm, mix, args)
        rows += mix_rows
        summaries.append({**summarise(mix_rows, mix), **extra})
    overheads = [] if args.skip_loops else loop_overheads(args.repeats)
    with open(args.out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    meta = {"machine": platform.processor() or platform.machine(), "commit": commit,
            "torch": torch.__version__, "batch": args.batch, "seed": args.seed,
            "mlp_width": args.mlp_width}  # fmt: skip
    (args.out / "summary.json").write_text(
        json.dumps({"meta": meta, "summaries": summaries, "loops": overheads}, indent=2)
    )
    plot(rows, mixes, args.out / "adaptivity.png")

    print(
        f"\nrows and wall time of per-sample / batch-global at equal max error (B = {args.batch})"
    )
    print(f"{'mix':>8} {'solver':>16} " + " ".join(f"{e:>11g}" for e in ERRORS))
    for s in summaries:
        for solver in ("DormandPrince", "BogackiShampine"):
            cells = [f"{s[f'{solver} rows ratio @{e:g}']:5.2f}/"
                     f"{s[f'{solver} wall ratio @{e:g}']:<5.2f}" for e in ERRORS]  # fmt: skip
            print(f"{s['mix']:>8} {solver:>16} " + " ".join(cells))
    print("\nmean evaluations per sample at max error 1e-3")
    for s in summaries:
        ps = s["per-sample DormandPrince evals/sample @1e-3"]
        print(f"{s['mix']:>8}: per-sample DP5 {ps:.1f}, "
              f"torchdiffeq dopri5 {s['torchdiffeq dopri5 evals/sample @1e-3']:.1f}, "
              f"backend dopri5 {s['backend dopri5 evals/sample @1e-3']:.1f}, "
              f"ratio {s['per-sample / torchdiffeq dopri5 @1e-3']:.2f}; reference check "
              f"{s['reference_vs_tight_dp5']:.1e}")  # fmt: skip
    print("\nloop overhead with a trivial regressor, batch 1")
    for o in overheads:
        print(
            f"{o['loop']:>44}: {o['syncs_per_step']:5.1f} syncs/step, "
            f"{o['us_per_step']:7.1f} us/step"
        )
    print(f"\nwrote {args.out}/runs.csv, summary.json, adaptivity.png")


if __name__ == "__main__":
    main()
