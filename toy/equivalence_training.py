"""Training an InDI and a score network on identical draws, for ``python -m toy.equivalence``.

``ScoreNet`` is ``s(x_t, t) = ToyMLP(x_t, t) / (t sigma)`` (NCSN's noise-conditional output
scaling) and ``dsm_loss`` is denoising score matching weighted by ``(t sigma)^2``; ``train_pair``
trains it next to an InDI ``ToyMLP`` on ``indiflow.indi_loss`` with the same initial body
weights, pairs ``(x, y)``, times ``t`` (handed to the InDI loss through ``GivenTimes``),
optimiser, learning-rate schedule (``learning_rate``) and EMA.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

import indiflow as ind
from toy.data import Toy
from toy.equivalence_config import EquivalenceConfig


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
