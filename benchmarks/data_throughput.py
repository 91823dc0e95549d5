"""Does data loading keep up with training? SyntheticPairs against a small U-Net training step.

Question: with ``SyntheticPairs(bundled_photos("train"), BicubicSR(4), patch=64)``, batches of
16 and a DataLoader with 2 workers, how many batches per second does loading deliver, compared
with the training steps per second of ``ind.nets.UNet()`` (its default, small configuration)
on the same batches? The issue's target is a ratio of at least 5.

Measured in one run, each sized by a count, not by wall time:
- loading: after the first batch (worker start-up, reported separately), the time to draw the
  next ``--batches`` batches;
- training: after one warm-up step, ``--steps`` steps of ``indi_loss`` + backward + AdamW on a
  fixed batch held in memory;
- fed training (context): ``--steps`` steps drawing each batch from the 2-worker loader, to
  show what loading costs a real loop when workers and training share the CPU.

    OMP_NUM_THREADS=1 python benchmarks/data_throughput.py --batches 40 --steps 5
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch.utils.data import DataLoader

import indiflow as ind


def loader_for(data: ind.data.SyntheticPairs, batch: int, workers: int) -> DataLoader:
    return DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


def time_loading(loader: DataLoader, batches: int) -> tuple[float, float]:
    """Return (seconds to the first batch, batches per second over the next ``batches``)."""
    start = time.perf_counter()
    iterator = iter(loader)
    next(iterator)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return first, batches / (time.perf_counter() - start)


def train_step(net, optimizer, x, y, generator) -> None:
    optimizer.zero_grad(set_to_none=True)
    ind.indi_loss(net, x, y, generator=generator).backward()
    optimizer.step()


def time_training(batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> float:
    """Training steps per second of a fresh UNet() on one batch held in memory."""
    torch.manual_seed(0)
    net = ind.nets.UNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    train_step(net, optimizer, *batch, generator)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        train_step(net, optimizer, *batch, generator)
    return steps / (time.perf_counter() - start)


def time_fed_training(loader: DataLoader, steps: int) -> float:
    """Training steps per second when each batch comes from ``loader``."""
    torch.manual_seed(0)
    net = ind.nets.UNet()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    iterator = iter(loader)
    train_step(net, optimizer, *next(iterator), generator)  # warm-up, workers started
    start = time.perf_counter()
    for _ in range(steps):
        train_step(net, optimizer, *next(iterator), generator)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40, help="loading: batches timed")
    parser.add_argument("--steps", type=int, default=5, help="training: steps timed")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    photos = ind.data.bundled_photos("train")
    length = args.batch * (max(args.batches, args.steps) + 2)  # one epoch covers every timing
    data = ind.data.SyntheticPairs(
        photos, ind.degradations.BicubicSR(4), patch=args.patch, length=length
    )
    loader = loader_for(data, args.batch, args.workers)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, training threads {torch.get_num_threads()}, "
        f"{args.workers} loader workers, batch {args.batch}, patch {args.patch}"
    )
    first, batches_per_s = time_loading(loader, args.batches)
    x, y = next(iter(loader_for(data, args.batch, 0)))
    steps_per_s = time_training((x, y), args.steps)
    fed_steps_per_s = time_fed_training(loader, args.steps)
    print(
        f"loading:  {batches_per_s:8.2f} batches/s  ({args.batches} batches; "
        f"first batch {first:.2f} s)"
    )
    print(f"training: {steps_per_s:8.2f} steps/s    ({args.steps} steps, batch in memory)")
    print(
        f"fed:      {fed_steps_per_s:8.2f} steps/s    ({args.steps} steps, batches from the loader)"
    )
    ratio = batches_per_s / steps_per_s
    verdict = "meets" if ratio >= 5 else "misses"
    print(f"ratio loading / training = {ratio:.1f}x ({verdict} the target of >= 5x)")
    print(f"fed / in-memory training = {fed_steps_per_s / steps_per_s:.2f}")


if __name__ == "__main__":
    main()
