"""Tiled against untiled restoration of a 1024x1024 image: peak memory and agreement.

Question: does evaluating the network on 256x256 tiles inside every ODE step bound the memory,
and how far apart are the tiled and untiled restorations?

Setup: a small ``ind.nets.UNet`` (3 levels, width 16, no attention: attention over the whole
image would be quadratic in its 65,536 coarsest positions) is briefly trained with
``ind.indi_loss`` to denoise (``y = x + 0.1 n``) 64x64 patches of the bundled training photos,
so that its output depends on the image as a real network's does (a fresh UNet outputs 0).
The test image is the bundled ``astronaut`` photo brought to 1024x1024 by bicubic interpolation.
Each mode then restores it with Euler on ``TimeGrid.uniform(steps)`` in a fresh subprocess (one
thread), which reports the growth of its peak resident set size during ``ind.restore`` (``VmHWM``
of /proc/self/status, which belongs to the process's own memory map, unlike
``getrusage``'s ``ru_maxrss``, which Linux carries over from the parent across ``exec``) over
its resident size just before the call, when the network and the input are already loaded, and
its time. PSNR is ``10 log10(1 / MSE)`` over all
pixels and channels. Targets (issue 10): peak memory of tiled <= 0.35 x untiled, restorations
within 0.1 dB of each other.

    python benchmarks/tiled_restore.py --train-steps 150 --steps 4
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as functional

import indiflow as ind

SIGMA = 0.1
NET = {
    "width": 16,
    "multipliers": [1, 2, 4],
    "attention": [False, False, False],
    "output": "residual",
}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(float((a.double() - b.double()).square().mean()))


def status_mb(field: str) -> float:
    """A memory line of /proc/self/status (``VmRSS``: resident now, ``VmHWM``: its peak), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def train(steps: int, batch: int, seed: int, norm: str) -> ind.nets.UNet:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    photos = ind.data.bundled_photos("train")
    net = ind.nets.UNet(**NET, norm=norm)
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3)
    for step in range(steps):
        patches = []
        for _ in range(batch):
            photo = photos[int(torch.randint(len(photos), (1,), generator=generator))]
            top = int(torch.randint(photo.shape[1] - 63, (1,), generator=generator))
            left = int(torch.randint(photo.shape[2] - 63, (1,), generator=generator))
            patches.append(photo[:, top : top + 64, left : left + 64])
        x = torch.stack(patches)
        y = x + SIGMA * torch.randn(x.shape, generator=generator)
        loss = ind.indi_loss(net, x, y, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"  train step {step:4d}  loss {loss.item():.5f}", flush=True)
    return net.eval()


def child(workdir: Path, mode: str, steps: int, tile: int, overlap: int) -> None:
    """One restoration in this process; prints a JSON line with its memory and time."""
    torch.set_num_threads(1)
    saved = torch.load(workdir / "inputs.pt", weights_only=True)
    net = ind.nets.UNet.from_config(json.loads((workdir / "config.json").read_text()))
    net.load_state_dict(saved["model"])
    y = saved["y"]
    controller = ind.FixedSteps(ind.TimeGrid.uniform(steps))
    before = status_mb("VmRSS")
    start = time.perf_counter()
    if mode == "tiled":
        x = ind.restore(net, y, ind.Euler(), controller, tile=tile, overlap=overlap)
    else:
        x = ind.restore(net, y, ind.Euler(), controller)
    seconds = time.perf_counter() - start
    peak = status_mb("VmHWM")
    torch.save(x, workdir / f"{mode}.pt")
    report = {"rss_before_mb": before, "peak_rss_mb": peak, "seconds": seconds}
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="Euler steps of the restoration")
    parser.add_argument("--train-steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--norm", choices=["group", "layer"], default="layer")
    parser.add_argument("--child", choices=["tiled", "untiled"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.workdir, args.child, args.steps, args.tile, args.overlap)
        return

    torch.set_num_threads(1)
    print(
        f"training UNet({NET}, norm={args.norm!r}) for {args.train_steps} steps at batch "
        f"{args.batch}",
        flush=True,
    )
    net = train(args.train_steps, args.batch, args.seed, args.norm)
    photo = ind.data.bundled_photos("test")[0][None]  # astronaut, 512x512
    clean = functional.interpolate(photo, size=(args.size, args.size), mode="bicubic")
    clean = clean.clamp(0.0, 1.0)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(args.seed + 1))
    y = clean + SIGMA * noise

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        torch.save({"model": net.state_dict(), "y": y}, workdir / "inputs.pt")
        (workdir / "config.json").write_text(json.dumps(net.to_config()))
        for mode in ("untiled", "tiled"):
            command = [sys.executable, __file__, "--child", mode, "--workdir", str(workdir)]
            command += ["--steps", str(args.steps), "--tile", str(args.tile)]
            command += ["--overlap", str(args.overlap)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[mode] = json.loads(out.strip().splitlines()[-1])
            results[mode]["x"] = torch.load(workdir / f"{mode}.pt", weights_only=True)

    tiled, untiled = results["tiled"], results["untiled"]
    for r in results.values():
        r["growth_mb"] = r["peak_rss_mb"] - r["rss_before_mb"]
        r["psnr_clean"] = psnr(r["x"], clean)
    print(
        f"\n{args.size}x{args.size} RGB, tile {args.tile}, overlap {args.overlap}, Euler "
        f"{args.steps} steps, UNet {net.num_parameters():,} parameters, 1 thread, "
        f"torch {torch.__version__}; PSNR(y, clean) = {psnr(y, clean):.2f} dB"
    )
    print(f"{'mode':<8} {'peak RSS MB':>12} {'growth MB':>10} {'seconds':>8} {'PSNR clean':>11}")
    for mode, r in results.items():
        print(
            f"{mode:<8} {r['peak_rss_mb']:>12.0f} {r['growth_mb']:>10.0f} {r['seconds']:>8.1f} "
            f"{r['psnr_clean']:>11.3f}"
        )
    print(
        f"peak memory growth tiled / untiled: {tiled['growth_mb'] / untiled['growth_mb']:.3f} "
        f"(whole-process peak RSS: {tiled['peak_rss_mb'] / untiled['peak_rss_mb']:.3f})"
    )
    print(
        f"PSNR(tiled, untiled) = {psnr(tiled['x'], untiled['x']):.2f} dB; PSNR to the clean image "
        f"differs by {abs(tiled['psnr_clean'] - untiled['psnr_clean']):.4f} dB"
    )


if __name__ == "__main__":
    main()
