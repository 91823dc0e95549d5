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

This module holds the two-sample statistics, the evaluation and the command line; the settings
are in ``toy.equivalence_config``, the paired training in ``toy.equivalence_training``, the
figure and the summary in ``toy.equivalence_report``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
from torch import nn

import indiflow as ind
from toy.arguments import parse_config
from toy.data import Toy, get_toy
from toy.equivalence_config import (
    DENOISING_TOYS,
    EQUIVALENCE_CHOICES,
    EQUIVALENCE_RANGES,
    SOLVERS,
    EquivalenceConfig,
)
from toy.equivalence_report import plot, summary
from toy.equivalence_training import GivenTimes, ScoreNet, dsm_loss, learning_rate, train_pair

# The script's names, wherever they are defined, stay importable from here.
__all__ = [
    "DENOISING_TOYS",
    "EQUIVALENCE_CHOICES",
    "EQUIVALENCE_RANGES",
    "SOLVERS",
    "T_BINS",
    "EquivalenceConfig",
    "GivenTimes",
    "ScoreNet",
    "dsm_loss",
    "energy_distance",
    "evaluate",
    "learning_rate",
    "main",
    "mode_statistics",
    "nearest_mode_distance",
    "null_energy_distances",
    "parse_args",
    "plot",
    "run",
    "summary",
    "train_pair",
]


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
