"""The paper's Fig. 1: one-step regression against InDI on four Dirac modes at (±1, ±1).

    python -m toy.figure1 --out runs/toy/fig1          # trains the two networks if needed

(a) ``H = I``, ``sigma = 1``: the one-step regression ``F(y, 1) = E[x | y]`` lands between the
modes; InDI (20 Euler steps) lands on them. (b) ``H = diag(1, 0)``, ``sigma = 0.2``: the second
coordinate is erased, the regression returns 0 there, and InDI picks the mode whose second
coordinate has the sign of ``y``'s. Each setup is drawn for the exact oracle ``E[x | x_t]`` and
the trained network side by side; ``fig1_metrics.json`` holds the measured figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from toy.arguments import Range, folder
from toy.data import get_toy
from toy.evaluate import law_gap, restore, score
from toy.metrics import nearest_mode_index
from toy.train import TRAIN_RANGES, TrainConfig, ensure_trained

SETUPS = ("fig1a", "fig1b")


def measure(
    name: str, model: torch.nn.Module, n_eval: int, n_steps: int, seed: int
) -> tuple[dict, dict]:
    """Metrics of oracle and network on one setup, and the clouds needed for the plot."""
    toy = get_toy(name)
    g = torch.Generator().manual_seed(seed)
    x, y = toy.sample_pairs(n_eval, g)
    _, y_indep = toy.sample_pairs(n_eval, g)  # for the finite-sample floor of the law gap
    sources = {"oracle": toy.oracle(), "network": model}
    metrics: dict = {"setup": toy.description, "n_eval": n_eval, "n_steps": n_steps}
    clouds: dict = {"x": x, "y": y}
    for label, regressor in sources.items():
        one = restore(regressor, y, 1).x
        sol = restore(regressor, y, n_steps, save_trajectory=True)
        m = {"one_step": score(one, x, toy.modes), "indi": score(sol.x, x, toy.modes)}
        # Fig. 1(b) criterion: the mode InDI ends on (the nearest one) has the sign of y's second
        # coordinate. Measured on both setups for comparison.
        landed = toy.modes[nearest_mode_index(sol.x, toy.modes)].to(y.dtype)
        agree = landed[:, 1].sign() == y[:, 1].sign()
        m["indi"]["sign_agreement"] = float(agree.double().mean())
        metrics[label] = m
        clouds[label] = {"one_step": one, "indi": sol.x, "xs": sol.xs}
    metrics["network_vs_oracle"] = law_gap(
        clouds["network"]["indi"], clouds["oracle"]["indi"], paired=True
    )
    floor = restore(sources["oracle"], y_indep, n_steps).x
    metrics["oracle_vs_oracle_floor"] = law_gap(floor, clouds["oracle"]["indi"], paired=False)
    return metrics, clouds


def plot(name: str, metrics: dict, clouds: dict, out: Path, n_plot: int, n_traj: int) -> Path:
    toy = get_toy(name)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True, sharey=True)
    y = clouds["y"][:n_plot]
    for ax, label in zip(axes, ("oracle", "network"), strict=True):
        c = clouds[label]
        for i in range(min(n_traj, y.shape[0])):
            ax.plot(c["xs"][:, i, 0], c["xs"][:, i, 1], color="tab:blue", lw=0.5, alpha=0.35)
        ax.scatter(y[:, 0], y[:, 1], s=6, c="0.6", label="degraded y")
        ax.scatter(*c["one_step"][:n_plot].T, s=10, c="tab:orange", marker="x", label="one step")
        ax.scatter(*c["indi"][:n_plot].T, s=10, c="tab:blue", label="InDI end points")
        ax.scatter(*toy.modes.T, s=180, c="k", marker="*", label="clean modes")
        m = metrics[label]
        ax.set_title(
            f"{label}: nearest-mode dist. one step {m['one_step']['nearest_mode']:.3f}, "
            f"InDI {m['indi']['nearest_mode']:.3f}",
            fontsize=9,
        )
        ax.set_aspect("equal")
        ax.set_xlim(-3.2, 3.2)
        ax.set_ylim(-3.2, 3.2)
    axes[0].legend(loc="lower left", fontsize=7)
    fig.suptitle(f"Fig. 1({name[-1]}): {toy.description}; InDI = {metrics['n_steps']} Euler steps")
    fig.tight_layout()
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure1(
    models: dict[str, torch.nn.Module],
    out: Path,
    n_eval: int = 4000,
    n_steps: int = 20,
    n_plot: int = 300,
    n_traj: int = 60,
    seed: int = 1,
) -> dict:
    """Measure and draw both setups; writes ``fig1a.png``, ``fig1b.png``, ``fig1_metrics.json``."""
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in SETUPS:
        metrics, clouds = measure(name, models[name], n_eval, n_steps, seed)
        metrics["png"] = str(plot(name, metrics, clouds, out, n_plot, n_traj))
        results[name] = metrics
    (out / "fig1_metrics.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m toy.figure1", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--out", type=folder, default="runs/toy/fig1", help="folder for PNGs and JSON"
    )
    parser.add_argument(
        "--runs", type=folder, default="runs/toy", help="folder of the training runs"
    )
    parser.add_argument("--train-steps", type=TRAIN_RANGES["steps"], default=TrainConfig.steps)
    parser.add_argument("--n-eval", type=Range(int, 2), default=4000, help="at least 2")
    parser.add_argument("--n-steps", type=Range(int, 1), default=20, help="InDI Euler steps")
    parser.add_argument("--seed", type=TRAIN_RANGES["seed"], default=1)
    args = parser.parse_args(argv)
    models = {
        name: ensure_trained(
            TrainConfig(toy=name, steps=args.train_steps, out=str(Path(args.runs) / name))
        ).model
        for name in SETUPS
    }
    results = figure1(models, Path(args.out), args.n_eval, args.n_steps, seed=args.seed)
    for name, m in results.items():
        for label in ("oracle", "network"):
            one, indi = m[label]["one_step"], m[label]["indi"]
            print(
                f"{name} {label:8s} nearest-mode one-step {one['nearest_mode']:.4f}"
                f"  InDI(N={args.n_steps}) {indi['nearest_mode']:.4f}"
                f"  sign agreement {indi['sign_agreement']:.4f}"
            )
        print(f"{name} network vs oracle law gap {m['network_vs_oracle']}")
    return results


if __name__ == "__main__":
    main()
