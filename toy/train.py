"""Train an InDI regressor ``F(x_t, t)`` on a 2-D toy, in one readable file.

    python -m toy.train                         # four Dirac modes, H = I, sigma = 1 (Fig. 1(a))
    python -m toy.train --toy fig1b --out runs/toy/fig1b
    python -m toy.train --time-law mixture --a 1 --norm l1 --noise brownian --eps 0.2
    python -m toy.train --resume                # continue from <out>/ckpt.pt, bit for bit

Fresh pairs ``(x, y)`` are drawn every step (infinite data), ``t`` from the chosen time law and
``x_t`` from the interpolant; the loss is ``indiflow.indi_loss``. Every random draw goes through
one ``torch.Generator`` whose state is checkpointed with the weights, the exponential moving
average (EMA) of the weights and the Adam state, so a resumed run continues exactly as an
uninterrupted one. Checkpoints are written atomically (temporary file, then ``os.replace``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

import indiflow as ind
from toy.arguments import Range, check_fields, parse_config
from toy.data import TOYS, get_toy


@dataclass(frozen=True)
class TrainConfig:
    toy: str = "fig1a"  # a name from toy.data.TOYS
    steps: int = 3000
    batch: int = 512
    lr: float = 2e-3  # peak learning rate; linear warm-up, then cosine decay to lr_min
    lr_min: float = 2e-5
    warmup: int = 100
    hidden: int = 128
    depth: int = 4
    skip: bool = False  # F = x_t - t * MLP(x_t, t) (velocity parametrisation)
    time_law: str = "uniform"  # uniform | mixture | power
    a: float = 1.0  # MixtureTime weight ratio (point mass at t = 1 has weight a / (1 + a))
    k: float = 1.0  # PowerTime exponent, density ∝ t^k
    norm: str = "l2"  # l2 | l1
    noise: str = "none"  # none | constant | brownian
    eps: float = 0.2  # eps (constant) or eps0 (brownian)
    ema: float = 0.995  # EMA decay of the weights used for sampling; 0 disables it
    seed: int = 0
    threads: int = 1
    out: str = "runs/toy/fig1a"
    ckpt_every: int = 1000
    resume: bool = False

    def __post_init__(self) -> None:
        check_fields(self, TRAIN_RANGES, TRAIN_CHOICES)
        if self.lr_min > self.lr:
            raise ValueError(
                f"lr_min must be <= lr (the schedule decays from lr to lr_min), got "
                f"lr_min = {self.lr_min:g} > lr = {self.lr:g}"
            )


# What each setting may be: the command line's argparse types and TrainConfig's own checks.
TRAIN_RANGES = {
    "steps": Range(int, 1),
    "batch": Range(int, 1),
    "lr": Range(float, 0, low_open=True),
    "lr_min": Range(float, 0),
    "warmup": Range(int, 0),
    "hidden": Range(int, 1),
    "depth": Range(int, 1),
    "a": Range(float, 0, low_open=True),
    "k": Range(float, 0),
    "eps": Range(float, 0),
    "ema": Range(float, 0, 1, high_open=True),  # 1 would freeze the EMA at the initial weights
    "seed": Range(int, 0, 2**63 - 1),
    "threads": Range(int, 1),
    "ckpt_every": Range(int, 1),
}
TRAIN_CHOICES = {
    "toy": tuple(TOYS),
    "time_law": ("uniform", "mixture", "power"),
    "norm": ("l2", "l1"),
    "noise": ("none", "constant", "brownian"),
}


# Fields that may differ between a run and its resumption without changing the result.
_RUNTIME_FIELDS = ("out", "ckpt_every", "resume", "threads")


@dataclass
class TrainResult:
    config: TrainConfig
    model: torch.nn.Module  # the EMA weights when ema > 0: what sampling should use
    raw_model: torch.nn.Module
    losses: list[float]
    step: int
    seconds: float
    checkpoint: Path


def make_time_law(cfg: TrainConfig) -> ind.UniformTime | ind.MixtureTime | ind.PowerTime:
    if cfg.time_law == "uniform":
        return ind.UniformTime()
    if cfg.time_law == "mixture":
        return ind.MixtureTime(cfg.a)
    if cfg.time_law == "power":
        return ind.PowerTime(cfg.k)
    raise ValueError(f"time_law must be uniform, mixture or power, got {cfg.time_law!r}")


def make_noise(cfg: TrainConfig) -> ind.ConstantNoise | ind.BrownianNoise | None:
    if cfg.noise == "none":
        return None
    if cfg.noise == "constant":
        return ind.ConstantNoise(cfg.eps)
    if cfg.noise == "brownian":
        return ind.BrownianNoise(cfg.eps)
    raise ValueError(f"noise must be none, constant or brownian, got {cfg.noise!r}")


def make_model(cfg: TrainConfig) -> ind.nets.ToyMLP:
    return ind.nets.ToyMLP(2, hidden=cfg.hidden, depth=cfg.depth, skip=cfg.skip)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr_min`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(progress, 1.0)))


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path) -> tuple[torch.nn.Module, TrainConfig]:
    """The sampling model (EMA weights when present) and the config of a checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = TrainConfig(**state["config"])
    model = make_model(cfg)
    model.load_state_dict(state["ema"] if state["ema"] is not None else state["model"])
    return model.eval(), cfg


def train(cfg: TrainConfig, stop_at: int | None = None, progress: bool = True) -> TrainResult:
    """Train (or resume) per ``cfg``; ``stop_at`` halts after that step (to test resuming)."""
    torch.set_num_threads(cfg.threads)
    ckpt_path = Path(cfg.out) / "ckpt.pt"
    toy = get_toy(cfg.toy)
    time_law, noise = make_time_law(cfg), make_noise(cfg)
    interpolant = ind.Interpolant(noise)

    torch.manual_seed(cfg.seed)  # weight initialisation
    model = make_model(cfg)
    ema = make_model(cfg) if cfg.ema > 0 else None
    if ema is not None:
        ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    step, losses = 0, []

    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = {k: v for k, v in state["config"].items() if k not in _RUNTIME_FIELDS}
        asked = _comparable(cfg)
        if saved != asked:
            diff = {k: (saved.get(k), v) for k, v in asked.items() if saved.get(k) != v}
            raise ValueError(f"--resume with a different config (saved, asked): {diff}")
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step, losses = state["step"], list(state["losses"])

    def checkpoint() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "config": dataclasses.asdict(cfg),
                "model": model.state_dict(),
                "ema": None if ema is None else ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "losses": losses,
            },
        )

    last = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    start = time.perf_counter()
    bar = tqdm(total=last, initial=step, disable=not progress, desc=f"train {cfg.toy}")
    model.train()
    while step < last:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        x, y = toy.sample_pairs(cfg.batch, generator)
        loss = ind.indi_loss(
            model,
            x,
            y,
            interpolant=interpolant,
            time_law=time_law,
            norm=cfg.norm,
            generator=generator,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
                    p_ema.lerp_(p, 1.0 - cfg.ema)
        losses.append(loss.item())
        step += 1
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}")
        if step % cfg.ckpt_every == 0:
            checkpoint()
    bar.close()
    checkpoint()
    sampler = ema if ema is not None else model
    return TrainResult(
        cfg, sampler.eval(), model.eval(), losses, step, time.perf_counter() - start, ckpt_path
    )


def ensure_trained(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Reuse ``<out>/ckpt.pt`` if made with this config (finishing it), else train afresh."""
    ckpt_path = Path(cfg.out) / "ckpt.pt"
    same = False
    if ckpt_path.exists():
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)["config"]
        same = all(saved.get(k) == v for k, v in _comparable(cfg).items())
    return train(dataclasses.replace(cfg, resume=same), progress=progress)


def _comparable(cfg: TrainConfig) -> dict:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RUNTIME_FIELDS}


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """The config from the command line; a bad value exits with status 2 before any work."""
    return parse_config(
        TrainConfig,
        argv,
        prog="python -m toy.train",
        description=__doc__.split("\n\n")[0],
        ranges=TRAIN_RANGES,
        choices=TRAIN_CHOICES,
    )


def main(argv: list[str] | None = None) -> TrainResult:
    cfg = parse_args(argv)
    result = train(cfg)
    tail = result.losses[-100:]
    print(
        f"toy={cfg.toy} steps={result.step} final loss (mean of last {len(tail)}) = "
        f"{sum(tail) / max(1, len(tail)):.4f}  time={result.seconds:.1f}s  "
        f"checkpoint={result.checkpoint}"
    )
    return result


if __name__ == "__main__":
    main()
