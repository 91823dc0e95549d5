"""Settings of ``python -m toy.equivalence``: the frozen config and what each field may be.

``EquivalenceConfig`` checks itself when built (``toy.arguments.check_fields``) against
``EQUIVALENCE_RANGES`` and ``EQUIVALENCE_CHOICES``; the command line reads the same tables, so a
bad value is refused before any training, whichever way the config was made.
"""

from __future__ import annotations

from dataclasses import dataclass

import indiflow as ind
from toy.arguments import Range, check_fields

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
