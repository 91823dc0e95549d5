"""Perception–distortion sweeps: steps N x solver, and the training choices.

    python -m toy.sweep --out runs/toy/sweep                   # oracles + trained nets + choices
    python -m toy.sweep --toys fig1a ring8 --nets --no-choices  # oracles only, two toys
    python -m toy.sweep --toys fig1a --nets checkerboard moons --skip --no-choices

Part 1 (solvers): for each toy and each source (exact oracle; trained network where given), run
InDI with N in {1, 2, 5, 10, 20, 50, 100} uniform steps of each solver and record distortion
(MSE to the true x) and perception (sliced W1 and energy distance between the restored cloud
and the clean one; mean distance to the nearest mode for mixture priors). The paper's Fig. 3
trend is MSE rising and the law distance falling as N grows. Part 2 (training choices): train
the Fig. 1(a) toy under p(t) uniform / mixture (a = 0.5, 1) / power, L1 against L2, and noise
none / constant / Brownian, then restore (stochastic InDI for the noisy ones) and compare with
the oracle of the same process. Writes ``sweep.csv``, ``pd_<toy>.png``, ``choices.csv``,
``choices.png``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

from toy.arguments import Range, folder
from toy.data import TOYS, get_toy
from toy.evaluate import SOLVERS, restore, score
from toy.train import TRAIN_RANGES, TrainConfig, ensure_trained, make_noise

STEPS = (1, 2, 5, 10, 20, 50, 100)
ORACLE_TOYS = ("fig1a", "fig1b", "gauss4", "ring8", "ring8_mix")

# Training choices on the Fig. 1(a) toy: (label, changes to the default TrainConfig).
CHOICES: tuple[tuple[str, dict], ...] = (
    ("uniform / l2 / none", {}),
    ("mixture a=0.5", {"time_law": "mixture", "a": 0.5}),
    ("mixture a=1", {"time_law": "mixture", "a": 1.0}),
    ("power k=1", {"time_law": "power", "k": 1.0}),
    ("l1", {"norm": "l1"}),
    ("constant eps=0.2", {"noise": "constant", "eps": 0.2}),
    ("brownian eps0=0.2", {"noise": "brownian", "eps": 0.2}),
)


def solver_sweep(
    toys: list[str],
    nets: dict[str, torch.nn.Module],
    steps: tuple[int, ...] = STEPS,
    solvers: tuple[str, ...] = tuple(SOLVERS),
    n_eval: int = 2000,
    seed: int = 2,
    progress: bool = True,
) -> list[dict]:
    """One row per (toy, source, solver, N) with the metrics of :func:`toy.evaluate.score`."""
    jobs = [(name, "oracle", get_toy(name).oracle()) for name in toys]
    jobs += [(name, "network", net) for name, net in nets.items()]
    rows = []
    bar = tqdm(total=len(jobs) * len(solvers) * len(steps), disable=not progress, desc="sweep")
    for name, source, regressor in jobs:
        if regressor is None:
            raise ValueError(f"toy {name!r} has no closed-form oracle; sweep it with a network")
        toy = get_toy(name)
        x, y = toy.sample_pairs(n_eval, torch.Generator().manual_seed(seed))
        for solver in solvers:
            for n in steps:
                sol = restore(regressor, y, n, SOLVERS[solver])
                rows.append(
                    {
                        "toy": name,
                        "source": source,
                        "solver": solver,
                        "N": n,
                        "nfe": sol.stats.nfe,
                        **score(sol.x, x, toy.modes),
                    }
                )
                bar.update(1)
    bar.close()
    return rows


def trend_holds(rows: list[dict], toy: str, source: str, solver: str) -> bool:
    """Fig. 3 trend: for all N >= 10, MSE above and both law distances below their N = 1 values."""
    sel = {r["N"]: r for r in rows if (r["toy"], r["source"], r["solver"]) == (toy, source, solver)}
    if 1 not in sel or not any(n >= 10 for n in sel):
        return False
    one = sel[1]
    return all(
        r["mse"] > one["mse"] and r["sw1"] < one["sw1"] and r["energy"] < one["energy"]
        for n, r in sel.items()
        if n >= 10
    )


def plot_pd(rows: list[dict], toy: str, out: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    colors = dict(zip(SOLVERS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
    for (source, solver), style in _series(rows, toy):
        sel = sorted(
            (r for r in rows if (r["toy"], r["source"], r["solver"]) == (toy, source, solver)),
            key=lambda r: r["N"],
        )
        ns = [r["N"] for r in sel]
        kw = {
            "color": colors[solver],
            "ls": style,
            "marker": "o",
            "ms": 3,
            "label": f"{source} {solver}",
        }
        axes[0].plot(ns, [r["mse"] for r in sel], **kw)
        axes[1].plot(ns, [r["sw1"] for r in sel], **kw)
        axes[2].plot([r["mse"] for r in sel], [r["sw1"] for r in sel], **kw)
        if source == "oracle" and solver == "euler":
            for r in sel:
                axes[2].annotate(f"N={r['N']}", (r["mse"], r["sw1"]), fontsize=7)
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("steps N")
    axes[0].set_ylabel("distortion: MSE to x")
    axes[1].set_ylabel("perception: sliced W1 to the clean law")
    axes[2].set_xlabel("distortion (MSE)")
    axes[2].set_ylabel("perception (sliced W1)")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"{toy}: {get_toy(toy).description}")
    fig.tight_layout()
    path = out / f"pd_{toy}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _series(rows: list[dict], toy: str) -> list[tuple[tuple[str, str], str]]:
    keys = sorted({(r["source"], r["solver"]) for r in rows if r["toy"] == toy})
    return [(k, "-" if k[0] == "oracle" else "--") for k in keys]


def choice_sweep(
    runs: Path,
    base: TrainConfig,
    n_eval: int = 2000,
    n_steps: int = 20,
    seed: int = 3,
    progress: bool = True,
) -> list[dict]:
    """Train each choice of :data:`CHOICES` on ``base.toy`` and score it against its oracle."""
    toy = get_toy(base.toy)
    x, y = toy.sample_pairs(n_eval, torch.Generator().manual_seed(seed))
    rows = []
    for label, change in CHOICES:
        cfg = dataclasses.replace(base, **change)
        # Every choice, the baseline included, has its own run folder and the same step count.
        cfg = dataclasses.replace(cfg, out=str(runs / "choices" / _slug(label)))
        start = time.perf_counter()
        result = ensure_trained(cfg, progress=progress)
        seconds = time.perf_counter() - start
        noise = make_noise(cfg)
        oracle = toy.oracle(noise)
        row = {
            "choice": label,
            "time_law": cfg.time_law,
            "norm": cfg.norm,
            "noise": cfg.noise,
            "train_s": round(seconds, 1),
        }
        for source, regressor in (("oracle", oracle), ("network", result.model)):
            for n in (1, n_steps):
                # The same generator seed gives oracle and network the same noise draws, so the
                # per-input distance between them measures the regressor alone.
                g = torch.Generator().manual_seed(seed + 1)
                sol = restore(regressor, y, n, noise=noise, generator=g)
                m = score(sol.x, x, toy.modes)
                row.update({f"{source}_{k}_N{n}": v for k, v in m.items()})
                if source == "oracle":
                    row[f"_oracle_x_N{n}"] = sol.x
                else:
                    gap = (sol.x - row.pop(f"_oracle_x_N{n}")).norm(dim=1).mean()
                    row[f"coupling_gap_N{n}"] = float(gap)
        rows.append(row)
    return rows


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


def plot_choices(rows: list[dict], n_steps: int, out: Path) -> Path:
    labels = [r["choice"] for r in rows]
    panels = (
        (f"network_nearest_mode_N{n_steps}", f"nearest-mode distance, N = {n_steps}"),
        (f"coupling_gap_N{n_steps}", f"mean |network - oracle|, N = {n_steps}"),
        (f"network_sw1_N{n_steps}", f"sliced W1 to clean law, N = {n_steps}"),
        ("network_mse_N1", "MSE of the one-step regression"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.5))
    for ax, (key, title) in zip(axes, panels, strict=True):
        ax.barh(labels, [r[key] for r in rows], color="tab:blue")
        oracle_key = key.replace("network_", "oracle_")
        if oracle_key != key:
            ax.scatter(
                [r[oracle_key] for r in rows],
                labels,
                c="k",
                marker="|",
                s=200,
                label="oracle",
                zorder=3,
            )
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.tight_layout()
    path = out / "choices.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_csv(rows: list[dict], path: Path) -> Path:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def sweep(
    out: Path,
    runs: Path,
    toys: list[str],
    nets: dict[str, torch.nn.Module],
    base: TrainConfig | None,
    n_eval: int = 2000,
    steps: tuple[int, ...] = STEPS,
    solvers: tuple[str, ...] = tuple(SOLVERS),
    progress: bool = True,
) -> dict:
    """Run both parts (the choices only when ``base`` is given) and write CSVs and plots."""
    out.mkdir(parents=True, exist_ok=True)
    rows = solver_sweep(toys, nets, steps, solvers, n_eval, progress=progress)
    write_csv(rows, out / "sweep.csv")
    for name in dict.fromkeys([*toys, *nets]):
        plot_pd(rows, name, out)
    trends = {
        f"{name}/{source}/{solver}": trend_holds(rows, name, source, solver)
        for name, source, solver in dict.fromkeys(
            (r["toy"], r["source"], r["solver"]) for r in rows
        )
    }
    result: dict = {"rows": rows, "trends": trends, "choices": []}
    if base is not None:
        result["choices"] = choice_sweep(runs, base, n_eval, progress=progress)
        write_csv(result["choices"], out / "choices.csv")
        plot_choices(result["choices"], 20, out)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m toy.sweep", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=folder, default="runs/toy/sweep")
    parser.add_argument(
        "--runs", type=folder, default="runs/toy", help="folder of the training runs"
    )
    parser.add_argument(
        "--toys", nargs="+", default=list(ORACLE_TOYS), choices=ORACLE_TOYS, help="oracle toys"
    )
    parser.add_argument(
        "--nets", nargs="*", default=["fig1a", "fig1b"], choices=tuple(TOYS), help="toys to train"
    )
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    parser.add_argument("--train-steps", type=TRAIN_RANGES["steps"], default=TrainConfig.steps)
    parser.add_argument("--n-eval", type=Range(int, 2), default=2000, help="at least 2")
    parser.add_argument("--no-choices", action="store_true", help="skip the training choices")
    parser.add_argument(
        "--skip", action="store_true", help="train the --nets as F = x_t - t MLP (see ToyMLP)"
    )
    args = parser.parse_args(argv)
    runs = Path(args.runs)

    def cfg(name: str, skip: bool) -> TrainConfig:
        folder = runs / (f"{name}_skip" if skip else name)
        return TrainConfig(toy=name, steps=args.train_steps, skip=skip, out=str(folder))

    nets = {name: ensure_trained(cfg(name, args.skip)).model for name in args.nets}
    base = None if args.no_choices else cfg("fig1a", skip=False)
    result = sweep(
        Path(args.out), runs, args.toys, nets, base, args.n_eval, STEPS, tuple(args.solvers)
    )
    for key, ok in result["trends"].items():
        print(f"trend (MSE up, distances down from N=1 to N>=10) {key}: {'yes' if ok else 'NO'}")
    return result


if __name__ == "__main__":
    main()
