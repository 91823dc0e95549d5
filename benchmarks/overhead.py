"""Overhead of ``ind.solve`` on a fixed grid against a bare loop and against torchdiffeq.

Question: how much does indiflow's loop (validation, stats, deferred finiteness check) cost on
top of the regressor calls themselves? Each method does the same regressor calls on the same
grid (50 steps from t = 1 to 0.02: torchdiffeq's Heun would evaluate its second stage at t = 0
on a grid ending at 0, where the field is singular). Timings are interleaved (every repeat runs
every method once, in a rotating order) and reported as medians and ratios to the bare loop.

    python benchmarks/overhead.py --out runs/overhead
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchdiffeq
from torch import nn

import indiflow as ind


class SmallMLP(nn.Module):
    """Three hidden layers of 64 with the time appended to the input: a deliberately cheap
    regressor, so that loop overhead is as visible as it can be."""

    def __init__(self, dim: int = 2, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim + 1, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x_t, t[:, None]], dim=1))


def bare_euler(net: nn.Module, y: torch.Tensor, ts: list[float]) -> torch.Tensor:
    x = y
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        f = net(x, torch.full((x.shape[0],), t))
        r = (t - s) / t
        x = r * f + (1 - r) * x
    return x


def bare_heun(net: nn.Module, y: torch.Tensor, ts: list[float]) -> torch.Tensor:
    x = y
    b = x.shape[0]
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        h = s - t
        k1 = (x - net(x, torch.full((b,), t))) / t
        x_pred = x + h * k1
        k2 = (x_pred - net(x_pred, torch.full((b,), s))) / s
        x = x + (h / 2) * (k1 + k2)
    return x


def torchdiffeq_solve(net: nn.Module, y: torch.Tensor, ts: list[float], method: str):
    b = y.shape[0]

    def func(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (x - net(x, t.expand(b))) / t

    grid = torch.tensor(ts, dtype=y.dtype)
    return torchdiffeq.odeint(func, y, grid, method=method)[-1]


def time_methods(
    methods: dict[str, Callable[[], torch.Tensor]], repeats: int
) -> dict[str, list[float]]:
    names = list(methods)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            methods[name]()
            samples[name].append(time.perf_counter() - start)
    return samples


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, torch {torch.__version__}, 1 thread"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/overhead"))
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = SmallMLP().eval()
    ts = torch.linspace(1.0, 0.02, args.steps + 1, dtype=torch.float64).tolist()
    controller = ind.FixedSteps(ind.TimeGrid(ts))
    field = ind.InDIField(net)
    rows = []
    with torch.inference_mode():
        for batch in args.batches:
            y = torch.randn(batch, 2)
            methods = {
                "bare euler": lambda y=y: bare_euler(net, y, ts),
                "indiflow euler": lambda y=y: ind.solve(field, ind.Euler(), y, controller).x,
                "torchdiffeq euler": lambda y=y: torchdiffeq_solve(net, y, ts, "euler"),
                "bare heun": lambda y=y: bare_heun(net, y, ts),
                "indiflow heun": lambda y=y: ind.solve(field, ind.Heun(), y, controller).x,
                "torchdiffeq heun2": lambda y=y: torchdiffeq_solve(net, y, ts, "heun2"),
            }
            ref_e, ref_h = methods["bare euler"](), methods["bare heun"]()
            for name, fn in methods.items():
                ref = ref_e if "eul" in name else ref_h
                gap = (fn() - ref).abs().max().item()
                if gap > 1e-4:
                    raise RuntimeError(f"{name} disagrees with the bare loop by {gap}")
            time_methods(methods, args.warmup)
            samples = time_methods(methods, args.repeats)
            med = {n: statistics.median(v) for n, v in samples.items()}
            for name, m in med.items():
                base = med["bare euler"] if "eul" in name else med["bare heun"]
                rows.append(
                    {
                        "batch": batch,
                        "method": name,
                        "median_ms": 1e3 * m,
                        "ratio_to_bare": m / base,
                    }
                )

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": machine(), "commit": commit(), "steps": args.steps, "repeats": args.repeats}
    (args.out / "overhead.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(
        f"{meta['machine']}; commit {meta['commit']}; {args.steps} steps; median of {args.repeats}"
    )
    print(f"{'batch':>6} {'method':<20} {'median ms':>10} {'/ bare':>8}")
    for r in rows:
        print(
            f"{r['batch']:>6} {r['method']:<20} {r['median_ms']:>10.3f} {r['ratio_to_bare']:>8.3f}"
        )


if __name__ == "__main__":
    main()
