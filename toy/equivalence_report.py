"""What ``python -m toy.equivalence`` shows: the three-panel figure and the printed summary.

``plot`` draws, from ``toy.equivalence.evaluate``'s result, the replicate-0 trajectories of the
InDI network, the score network and the oracle on shared inputs; the restored endpoints around
their nearest mode (or the restored laws, for toys without modes); and the energy distances
against the bootstrap null. ``summary`` renders a ``metrics.json`` dictionary as text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from toy.data import Toy
from toy.equivalence_config import EquivalenceConfig


def plot(cfg: EquivalenceConfig, toy: Toy, ev: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrays = ev["_arrays"]
    style = {
        "oracle": {"color": "black", "ls": "-", "lw": 1.6, "label": "oracle E[x | x_t]"},
        "indi0": {"color": "tab:blue", "ls": "-", "lw": 1.0, "label": "InDI network"},
        "score0": {"color": "tab:orange", "ls": "--", "lw": 1.0, "label": "score network"},
    }
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    ax = axes[0]
    for name, st in style.items():
        xs = arrays["paths"][name]
        for i in range(xs.shape[1]):
            ax.plot(xs[:, i, 0], xs[:, i, 1], color=st["color"], ls=st["ls"], lw=st["lw"])
        ax.plot([], [], **st)
    ax.scatter(*arrays["y_paths"].T, s=10, c="grey", label="inputs y", zorder=3)
    if toy.modes is not None:
        ax.scatter(*toy.modes.T, marker="*", s=160, c="red", label="clean modes", zorder=4)
    ax.set_title(f"trajectories (seed {cfg.seed}), {cfg.solver} x {cfg.n_steps} steps")
    ax.legend(loc="best", fontsize=8)
    ax.set_aspect("equal")

    ax = axes[1]
    if toy.modes is not None:
        # Offsets from the nearest mode, reflected so that "away from the origin" points up-right
        # for every mode of a symmetric toy: a shared bias shows as a shifted cloud.
        modes = toy.modes.double()
        for name in ("score0", "indi0", "oracle"):  # the widest cloud first
            st = style[name]
            pts = arrays["restored"][name]
            nearest = modes[torch.cdist(pts, modes).argmin(1)]
            off = (pts - nearest) * torch.sign(nearest)
            ax.scatter(*off.T, s=4, alpha=0.35, c=st["color"], label=st["label"])
            centre = off.mean(0)
            ax.scatter(*centre, s=90, marker="X", c=st["color"], edgecolors="k", zorder=5)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        lim = 4 * max(1e-3, max(ev["nearest_mode_distance"][k] or 0 for k in style))
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title("endpoint - nearest mode (outward = up-right); X: mean")
    else:
        for name, st in style.items():
            pts = arrays["restored"][name][:800]
            ax.scatter(*pts.T, s=4, alpha=0.4, c=st["color"], label=st["label"])
        ax.set_title("restored laws")
    ax.legend(loc="lower left", fontsize=8, markerscale=3)
    ax.set_aspect("equal")

    ax = axes[2]
    null = arrays["null"].numpy()
    ax.hist(null, bins=30, color="lightgrey", label="null: oracle vs oracle")
    top = ax.get_ylim()[1]
    marks = {"cross": ("tab:green", "InDI vs score"), "within": ("tab:purple", "seed vs seed")}
    marks["to_oracle"] = ("black", "network vs oracle")
    for row, (group, (color, label)) in enumerate(marks.items()):
        values = list(ev["groups"][group].values())
        if values:
            ax.scatter(values, [top * (0.3 + 0.15 * row)] * len(values), c=color, label=label)
    ax.axvline(ev["resolution"], color="k", ls=":", label=f"resolution (q{cfg.null_level:g})")
    if ev["seed_spread"] is not None:
        ax.axvline(ev["seed_spread"], color="tab:purple", ls=":", label="seed spread (max)")
    ax.set_xlabel("energy distance")
    ax.set_title(f"energy distances, n = {cfg.n_eval} per law")
    ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"{toy.name}: {toy.description}; score vs InDI parametrisation, same budget")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(m: dict) -> str:
    cfg = m["config"]
    lines = [
        f"toy {m['toy']['name']} ({m['toy']['description']}): {cfg['replicates']} seed(s) x "
        f"(InDI net, score net), {cfg['steps']} steps each, {cfg['solver']} x {cfg['n_steps']}",
        f"energy distance, n = {cfg['n_eval']} restored samples per law:",
        f"  resolution (q{m['null']['level']:g} of {m['null']['reps']} oracle-vs-oracle draws) "
        f"{m['resolution']:.2e}",
    ]
    if m["seed_spread"] is not None:
        lines.append(f"  seed spread (same parametrisation, other seed) {m['seed_spread']:.2e}")
    for group, label in (("cross", "InDI vs score"), ("within", "seed vs seed")):
        for k, v in m["groups"][group].items():
            lines.append(f"  {label:16s} {k:14s} {v:+.2e}")
    for k, v in m["groups"]["to_oracle"].items():
        ok = "within" if m["to_oracle_within_resolution"][k] else "above"
        lines.append(f"  {'to oracle':16s} {k:14s} {v:+.2e}  ({ok} resolution)")
    verdict = "EQUIVALENT" if m["equivalent_within_tolerance"] else "NOT equivalent"
    lines.append(
        f"  => InDI vs score worst {m['worst_cross']:.2e} vs tolerance {m['tolerance']:.2e}: "
        f"{verdict} within tolerance"
    )
    nm = m["nearest_mode_distance"]
    if nm["oracle"] is not None:
        lines.append("nearest-mode distance: " + ", ".join(f"{k} {v:.4f}" for k, v in nm.items()))
    lines.append(
        "coupled endpoint distance (seed 0, same inputs): "
        + ", ".join(f"{k} {v:.4f}" for k, v in m["coupled_endpoint_distance"].items())
    )
    if m["modes"]["oracle"] is not None:
        lines.append(
            "endpoint bias |mean offset to mode|: "
            + ", ".join(f"{k} {v['bias']:.4f}" for k, v in m["modes"].items())
        )
    lines.append(
        "regressor MSE to oracle: "
        + ", ".join(f"{k} {v:.2e}" for k, v in m["regressor_mse_to_oracle"].items())
    )
    first = next(iter(m["regressor_mse_to_oracle_by_t"].values()))
    lines.append("regressor MSE to oracle by t: " + " ".join(f"{b:>12s}" for b in first))
    for k, v in m["regressor_mse_to_oracle_by_t"].items():
        lines.append(f"  {k:>28s}: " + " ".join(f"{x:12.2e}" for x in v.values()))
    lines.append(f"total {m['total_seconds']:.1f} s; wrote {cfg['out']}")
    return "\n".join(lines)
