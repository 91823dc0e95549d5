"""Overhead of the training engine against a bare PyTorch loop with the same model and data.

Question: what does ``indiflow.training.train`` (EMA every step, the warm-up + cosine
schedule, metrics rows every 10 steps, a progress bar, a checkpoint every 100 steps and the
per-step seeding that makes resuming bit-identical) cost in steps per second? Gradient
clipping is switched off (``train.grad_clip=0``): it changes the optimisation, and the bare
loop does not clip.

Both arms train the same ``UNet`` (the ``sr4_photos_cpu`` config with a narrower network and
smaller patches unless told otherwise) on the same ``SyntheticPairs`` of the bundled photos,
with the same global batch, AdamW and ``ind.indi_loss`` with the config's noise and time law.
The bare loop is the textbook one: ``DataLoader`` with shuffling, loss, ``zero_grad``,
``backward``, ``step``. Each arm is timed from building the network to its last step
(``train`` also builds its data, writes ``config.toml`` and its checkpoint inside the timed
span). Arms alternate, ``--repeats`` times, and the ratio of total steps per second is
reported from wall-clock time (what a user waits for) and from process CPU time (less
sensitive to other processes on a shared machine), in total and as the median of the
per-repeat ratios (target: engine >= 0.95 x bare). One CPU thread.

    python benchmarks/train_overhead.py --steps 100 --repeats 4
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import indiflow as ind
from indiflow.nets import UNet
from indiflow.training import load_config, train
from indiflow.training.batches import training_pairs


def bare_loop(config, steps: int) -> None:
    """The textbook training loop on the engine's model, data, optimiser and loss."""
    torch.manual_seed(config.train.seed)
    model = UNet(**config.model)
    dataset = training_pairs(config)
    loader = DataLoader(
        dataset,
        batch_size=config.train.batch,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(config.train.seed),
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
    )
    interpolant = ind.Interpolant(config.loss.noise_schedule())
    time_law, generator = config.loss.time_law(), torch.Generator().manual_seed(0)
    step, epoch = 0, 0
    while step < steps:
        dataset.set_epoch(epoch)
        for x, y in loader:
            loss = ind.indi_loss(
                model,
                x,
                y,
                interpolant=interpolant,
                time_law=time_law,
                norm=config.loss.norm,
                generator=generator,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == steps:
                return
        epoch += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="sr4_photos_cpu")
    parser.add_argument("--steps", type=int, default=100, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)

    overrides = [
        f"train.steps={args.steps}",
        f"train.batch={args.batch}",
        f"data.patch={args.patch}",
        f"model.width={args.width}",
        "train.log_every=10",
        "train.checkpoint_every=100",
        "validation.every=0",
        "train.tensorboard=false",
        "train.grad_clip=0",  # the bare loop does not clip: compare the same optimisation
    ]
    config = load_config(args.config, overrides)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}")
    print(f"threads: {torch.get_num_threads()}; config {args.config} with {' '.join(overrides)}")
    bare_loop(config, 3)  # warm-up: photos read, allocator and kernels primed

    wall: dict[str, list[float]] = {"bare": [], "engine": []}
    cpu: dict[str, list[float]] = {"bare": [], "engine": []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for arm in ("bare", "engine") if repeat % 2 == 0 else ("engine", "bare"):
                start, start_cpu = time.perf_counter(), time.process_time()
                if arm == "bare":
                    bare_loop(config, args.steps)
                else:
                    result = train(config, out_dir=Path(scratch) / f"run{repeat}", resume="never")
                    if result.step != args.steps:
                        raise RuntimeError(f"the engine stopped at step {result.step}")
                wall[arm].append(time.perf_counter() - start)
                cpu[arm].append(time.process_time() - start_cpu)
                print(f"repeat {repeat} {arm:>6}: {args.steps / wall[arm][-1]:.3f} steps/s")
    for name, times in (("wall-clock", wall), ("CPU-time", cpu)):
        ratios = [b / e for b, e in zip(times["bare"], times["engine"], strict=True)]
        bare = args.steps * args.repeats / sum(times["bare"])
        engine = args.steps * args.repeats / sum(times["engine"])
        print(
            f"{name}: bare {bare:.3f} steps/s, engine {engine:.3f} steps/s; engine / bare: "
            f"total {engine / bare:.3f}, median of repeats {statistics.median(ratios):.3f}"
        )
    print("target: engine / bare >= 0.95")


if __name__ == "__main__":
    main()
