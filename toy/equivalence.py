"""Score matching vs InDI on the Fig. 1(a) toy: same optimum, same budget, same restored law?

    python -m toy.equivalence                       # four Dirac modes, H = I, sigma = 1
    python -m toy.equivalence --steps 3000 --seed 1 --out runs/toy/equivalence

For denoising (``y = x + sigma n``) the InDI regressor and the score of the VE marginal are the
same function up to an affine map, ``F = x_t + (t sigma)^2 ∇ log p_t`` (Tweedie), and the L2
InDI loss is denoising score matching (DSM) weighted by ``(t sigma)^4``. This script trains, on
identical draws ``(x, y, t)`` and with identical architecture, optimiser, schedule and EMA:

* an InDI network ``F(x_t, t)`` (``indiflow.nets.ToyMLP``) on ``indiflow.indi_loss`` (L2);
* a score network ``s(x_t, t) = ToyMLP(x_t, t) / (t sigma)`` (the noise-conditional output
  scaling of NCSN) on DSM with the usual weighting ``(t sigma)^2``.

Both are then run through the same indiflow solver, the score network via
``indiflow.param.regressor_from_score``, next to the exact oracle ``E[x | x_t]``. Reported:
energy distances between the three restored laws, each computed from independent inputs ``y``,
against a tolerance read off a bootstrap null (the energy distance between two independent
size-``n`` samples of the oracle's restored law, 95th percentile); the coupled per-input distance
between endpoints; the mean distance to the nearest mode; the regressors' mean squared distance
to the oracle on held-out ``(x_t, t)``. Writes ``equivalence.png`` and ``metrics.json`` to
``--out`` and prints a summary.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

import indiflow as ind
from toy.arguments import Range, check_fields, parse_config
from toy.data import Toy, get_toy

# Toys with an exact oracle and H = I: the only setting where the score equivalence holds.
DENOISING_TOYS = ("fig1a", "gauss4", "ring8")
SOLVERS = {"euler": ind.Euler(), "heun": ind.Heun()}  # CLI choice table


@dataclass(frozen=True)
class EquivalenceConfig:
    toy: str = "fig1a"
    steps: int = 1500  # optimiser steps, for each network
    batch: int = 512
    lr: float = 2e-3  # peak; linear warm-up over `warmup` steps, then cosine decay to lr / 100
    warmup: int = 100
    hidden: int = 128
    depth: int = 4
    ema: float = 0.995
    solver: str = "euler"  # euler | heun, on TimeGrid.uniform(n_steps)
    n_steps: int = 50
    n_eval: int = 2000  # restored samples per law
    null_reps: int = 100  # bootstrap replicates of the null energy distance
    null_level: float = 0.95  # the tolerance is this quantile of the null
    n_paths: int = 24  # trajectories drawn in the figure
    replicates: int = 2  # seeds seed, seed + 1, ...: one (InDI, score) pair each
    seed: int = 0
    threads: int = 1
    out: str = "runs/toy/equivalence"

    def __post_init__(self) -> None:
        check_fields(self, EQUIVALENCE_RANGES, EQUIVALENCE_CHOICES)


# What each setting may be: the command line's argparse types and EquivalenceConfig's checks.
EQUIVALENCE_RANGES = {
    "steps": Range(int, 1),
    "batch": Range(int, 1),
    "lr": Range(float, 0, low_open=True),
    "warmup": Range(int, 0),
    "hidden": Range(int, 1),
    "depth": Range(int, 1),
    "ema": Range(float, 0, 1, high_open=True),  # 1 would freeze the EMA at the initial weights
    "n_steps": Range(int, 1),
    "n_eval": Range(int, 2),  # the energy distance needs pairs
    "null_reps": Range(int, 1),
    "null_level": Range(float, 0, 1),  # a quantile level
    "n_paths": Range(int, 1),
    "replicates": Range(int, 1),
    "seed": Range(int, 0, 2**63 - 1),
    "threads": Range(int, 1),
}
# Only denoising toys with an exact oracle: the one setting where the score equivalence holds.
EQUIVALENCE_CHOICES = {"toy": DENOISING_TOYS, "solver": tuple(SOLVERS)}


class ScoreNet(nn.Module):
    """``s(x_t, t) = body(x_t, t) / (t sigma)``: a score model with NCSN's output scaling.

    The scaling makes the body predict ``-n`` (unit size at every ``t``) while the module itself
    returns the score, whose size grows like ``1 / (t sigma)`` near ``t = 0``.
    """

    def __init__(self, sigma: float, hidden: int, depth: int) -> None:
        super().__init__()
        self.sigma = sigma
        self.body = ind.nets.ToyMLP(2, hidden=hidden, depth=depth)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.body(x_t, t) / (t[:, None] * self.sigma)


@dataclass(frozen=True)
class GivenTimes:
    """A time law that hands back times drawn beforehand, so both losses see the same ``t``."""

    t: torch.Tensor

    def sample(self, n, generator=None, *, dtype=None, device=None) -> torch.Tensor:
        return self.t[:n].to(dtype=dtype, device=device)


def dsm_loss(
    score: nn.Module, x: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, sigma: float
) -> torch.Tensor:
    """DSM weighted by ``(t sigma)^2``: ``mean_b ||t sigma s(x_t, t) + (x_t - x) / (t sigma)||^2``.

    The target score of ``N(x_t; x, (t sigma)^2 I)`` is ``(x - x_t) / (t sigma)^2``.
    """
    level = t[:, None] * sigma
    return (level * score(x_t, t) + (x_t - x) / level).square().sum(1).mean()


def learning_rate(cfg: EquivalenceConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    lr_min = cfg.lr / 100
    return lr_min + 0.5 * (cfg.lr - lr_min) * (1 + math.cos(math.pi * progress))


def train_pair(cfg: EquivalenceConfig, toy: Toy, seed: int, progress: bool = True) -> dict:
    """Train the InDI and the score network on the same draws; return EMA models and losses.

    Both networks start from the same body weights, see the same pairs ``(x, y)`` and times ``t``
    at every step and use the same optimiser, schedule and EMA: only the parametrisation and the
    loss differ.
    """
    sigma = toy.degradation.sigma
    torch.manual_seed(seed)
    indi_net = ind.nets.ToyMLP(2, hidden=cfg.hidden, depth=cfg.depth)
    torch.manual_seed(seed)
    score_net = ScoreNet(sigma, cfg.hidden, cfg.depth)
    nets = {"indi": indi_net, "score": score_net}
    emas = {k: _frozen_copy(m) for k, m in nets.items()}
    opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr) for k, m in nets.items()}
    generator = torch.Generator().manual_seed(seed)
    time_law = ind.UniformTime()
    losses: dict[str, list[float]] = {"indi": [], "score": []}
    seconds = {"indi": 0.0, "score": 0.0}
    for step in tqdm(range(cfg.steps), disable=not progress, desc=f"train seed {seed}"):
        x, y = toy.sample_pairs(cfg.batch, generator)
        t = time_law.sample(cfg.batch, generator, dtype=x.dtype)
        x_t = x + t[:, None] * (y - x)
        for name in ("indi", "score"):
            start = time.perf_counter()
            for group in opts[name].param_groups:
                group["lr"] = learning_rate(cfg, step)
            if name == "indi":
                loss = ind.indi_loss(indi_net, x, y, time_law=GivenTimes(t))
            else:
                loss = dsm_loss(score_net, x, x_t, t, sigma)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            with torch.no_grad():
                for p_ema, p in zip(emas[name].parameters(), nets[name].parameters(), strict=True):
                    p_ema.lerp_(p, 1.0 - cfg.ema)
            losses[name].append(loss.item())
            seconds[name] += time.perf_counter() - start
    return {"models": emas, "losses": losses, "seconds": seconds}


def _frozen_copy(model: nn.Module) -> nn.Module:
    """The EMA holder: a copy of the initial weights, outside autograd."""
    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    return ema.eval()


def energy_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased (U-statistic) energy distance ``2 E|A - B| - E|A - A'| - E|B - B'|``."""
    a, b = a.double(), b.double()
    n, m = len(a), len(b)
    within_a = torch.cdist(a, a).sum() / (n * (n - 1))
    within_b = torch.cdist(b, b).sum() / (m * (m - 1))
    return float(2 * torch.cdist(a, b).mean() - within_a - within_b)


def null_energy_distances(pool: torch.Tensor, n: int, reps: int, generator: torch.Generator):
    """Energy distances between disjoint random size-``n`` halves of ``pool`` (one law)."""
    out = []
    for _ in range(reps):
        perm = torch.randperm(len(pool), generator=generator)
        out.append(energy_distance(pool[perm[:n]], pool[perm[n : 2 * n]]))
    return torch.tensor(out, dtype=torch.float64)


def nearest_mode_distance(x: torch.Tensor, modes: torch.Tensor | None) -> float | None:
    if modes is None:
        return None
    return float(torch.cdist(x.double(), modes.double()).min(1).values.mean())


def mode_statistics(x: torch.Tensor, modes: torch.Tensor | None) -> dict | None:
    """Mass per nearest mode and the endpoint bias: ``|mean offset to the mode|``, mass-weighted.

    Spread (``nearest_mode_distance``) and bias separate two failure modes that the energy
    distance weighs very differently: a blob centred on the mode costs about ``0.15 x`` its
    mean radius per unit mass, a common shift about ``0.5 x`` its length.
    """
    if modes is None:
        return None
    modes = modes.double()
    idx = torch.cdist(x.double(), modes).argmin(1)
    offset = x.double() - modes[idx]
    mass = torch.bincount(idx, minlength=len(modes)).double() / len(x)
    bias = sum(
        float(mass[k] * offset[idx == k].mean(0).norm()) for k in range(len(modes)) if mass[k] > 0
    )
    return {"mass": mass.tolist(), "bias": bias}


T_BINS = (0.0, 0.03, 0.1, 0.3, 0.6, 1.0)


def _kind(name: str) -> str:
    return name.rstrip("0123456789")


def evaluate(cfg: EquivalenceConfig, toy: Toy, nets: dict[str, nn.Module]) -> dict:
    """Restore with every network and the oracle and compare the laws (module docstring).

    ``nets`` maps ``indi<r>`` / ``score<r>`` (replicate ``r``) to trained models.
    """
    sigma = toy.degradation.sigma
    regressors: dict[str, object] = {}
    for name, net in nets.items():
        is_score = _kind(name) == "score"
        regressors[name] = ind.param.regressor_from_score(net, sigma) if is_score else net
    regressors["oracle"] = toy.oracle()
    dtype = {name: torch.float32 for name in nets} | {"oracle": torch.float64}
    solver, grid = SOLVERS[cfg.solver], ind.FixedSteps(ind.TimeGrid.uniform(cfg.n_steps))
    g = torch.Generator().manual_seed(cfg.seed + 10_000)

    def restore(name: str, y: torch.Tensor, save: bool = False):
        with torch.inference_mode():
            field = ind.InDIField(regressors[name])
            return ind.solve(field, solver, y.to(dtype[name]), grid, save_trajectory=save)

    def inputs(n: int) -> torch.Tensor:
        return toy.sample_pairs(n, g, torch.float64)[1]

    # Independent inputs for every law, so that each distance is an independent two-sample
    # statistic (it follows the null below when the two laws agree).
    restored = {name: restore(name, inputs(cfg.n_eval)).x.double() for name in regressors}
    pool = restore("oracle", inputs(8 * cfg.n_eval)).x.double()
    null = null_energy_distances(pool, cfg.n_eval, cfg.null_reps, g)
    resolution = float(torch.quantile(null, cfg.null_level))

    names = list(regressors)
    energy = {
        f"{a}|{b}": energy_distance(restored[a], restored[b])
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    groups: dict[str, dict[str, float]] = {"cross": {}, "within": {}, "to_oracle": {}}
    for key, value in energy.items():
        a, b = key.split("|")
        if b == "oracle":
            groups["to_oracle"][key] = value
        elif _kind(a) == _kind(b):
            groups["within"][key] = value
        else:
            groups["cross"][key] = value
    seed_spread = max(groups["within"].values()) if groups["within"] else None
    tolerance = resolution if seed_spread is None else max(resolution, seed_spread)
    worst_cross = max(groups["cross"].values())

    # Replicate 0 on shared inputs: coupled endpoint distances and the drawn trajectories.
    shown = ("indi0", "score0", "oracle")
    y_shared = inputs(cfg.n_eval)
    coupled = {name: restore(name, y_shared).x.double() for name in shown}
    y_paths = y_shared[: cfg.n_paths]
    paths = {name: restore(name, y_paths, save=True).xs.double() for name in shown}
    coupled_pairs = {"indi0|score0": ("indi0", "score0"), "indi0|oracle": ("indi0", "oracle")}
    coupled_pairs["score0|oracle"] = ("score0", "oracle")

    # Regressors against the oracle on held-out (x_t, t): the quantity both losses minimise.
    x, y = toy.sample_pairs(16384, g, torch.float64)
    t = ind.UniformTime().sample(16384, g, dtype=torch.float64)
    x_t = x + t[:, None] * (y - x)
    with torch.inference_mode():
        f = {k: r(x_t.to(dtype[k]), t.to(dtype[k])).double() for k, r in regressors.items()}
    sq = {k: (f[k] - f["oracle"]).square().sum(1) for k in nets}
    bins = list(zip(T_BINS[:-1], T_BINS[1:], strict=True))
    mse_by_t = {
        k: {f"({lo:g}, {hi:g}]": float(v[(t > lo) & (t <= hi)].mean()) for lo, hi in bins}
        for k, v in sq.items()
    }
    return {
        "energy_distance": energy,
        "groups": groups,
        "resolution": resolution,
        "seed_spread": seed_spread,
        "tolerance": tolerance,
        "equivalent_within_tolerance": worst_cross <= tolerance,
        "worst_cross": worst_cross,
        "to_oracle_within_resolution": {k: v <= resolution for k, v in groups["to_oracle"].items()},
        "null": {
            "reps": cfg.null_reps,
            "level": cfg.null_level,
            "median": float(null.median()),
            "quantile": resolution,
            "max": float(null.max()),
        },
        "coupled_endpoint_distance": {
            k: float((coupled[a] - coupled[b]).norm(dim=1).mean())
            for k, (a, b) in coupled_pairs.items()
        },
        "nearest_mode_distance": {
            k: nearest_mode_distance(v, toy.modes) for k, v in restored.items()
        },
        "regressor_mse_to_oracle": {k: float(v.mean()) for k, v in sq.items()},
        "regressor_mse_to_oracle_by_t": mse_by_t,
        "modes": {k: mode_statistics(v, toy.modes) for k, v in restored.items()},
        "_arrays": {"restored": restored, "paths": paths, "y_paths": y_paths, "null": null},
    }


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


def run(cfg: EquivalenceConfig, progress: bool = True) -> dict:
    """Train, evaluate, plot and write ``metrics.json`` (``cfg`` checked itself when built)."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    toy = get_toy(cfg.toy)
    start = time.perf_counter()
    nets, train_seconds, final_loss = {}, {}, {}
    tail = max(1, min(100, cfg.steps))
    for r in range(cfg.replicates):
        trained = train_pair(cfg, toy, cfg.seed + r, progress)
        for kind in ("indi", "score"):
            nets[f"{kind}{r}"] = trained["models"][kind]
            train_seconds[f"{kind}{r}"] = trained["seconds"][kind]
            final_loss[f"{kind}{r}"] = sum(trained["losses"][kind][-tail:]) / tail
    ev = evaluate(cfg, toy, nets)
    plot(cfg, toy, ev, out / "equivalence.png")
    metrics = {
        "config": dataclasses.asdict(cfg),
        "toy": {"name": toy.name, "description": toy.description, "sigma": toy.degradation.sigma},
        "train_seconds": train_seconds,
        "final_loss": final_loss,
        **{k: v for k, v in ev.items() if not k.startswith("_")},
        "total_seconds": time.perf_counter() - start,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


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


def parse_args(argv: list[str] | None = None) -> EquivalenceConfig:
    """The config from the command line; a bad value exits with status 2 before any work."""
    return parse_config(
        EquivalenceConfig,
        argv,
        prog="python -m toy.equivalence",
        description=__doc__.split("\n\n")[0],
        ranges=EQUIVALENCE_RANGES,
        choices=EQUIVALENCE_CHOICES,
    )


def main(argv: list[str] | None = None) -> dict:
    metrics = run(parse_args(argv))
    print(summary(metrics))
    return metrics


if __name__ == "__main__":
    main()
