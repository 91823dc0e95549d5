"""Shared pieces of the console-script tests: running ``main`` and a tiny training setup."""

from pathlib import Path

import torch

from indiflow.cli import main
from indiflow.data.io import write_image

# A run that takes a second on one CPU core: 16x16 crops of six 24x24 pairs, a two-level U-Net
# of width 8, constant interpolant noise so that restore has a checkpoint noise to reuse.
TINY_CONFIG = """\
[data]
source = "folders"
gt_dir = "gt"
lq_dir = "lq"
patch = 16

[model]
channels = 3
width = 8
multipliers = [1, 2]
attention = [false, false]
heads = 1
groups = 4
time_dim = 16
fourier_freqs = 4
output = "residual"

[train]
steps = 2
batch = 2
checkpoint_every = 1
keep = 5
log_every = 1
device = "cpu"
progress = false
tensorboard = false

[loss]
noise = "constant"
eps = 0.02

[validation]
every = 0
"""


def run_cli(argv, capsys):
    """``main(argv)``: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as stop:
        status = stop.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write_images(folder: Path, images: dict, suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        write_image(folder / f"{name}{suffix}", image)
    return folder


def random_images(n, shape=(3, 16, 20), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {f"img{i:02d}": torch.rand(shape, generator=generator) for i in range(n)}


def write_tiny_config(folder: Path) -> Path:
    """The tiny config and its six training pairs (clean, and blurred + offset) in ``folder``."""
    clean = random_images(6, shape=(3, 24, 24), seed=11)
    degraded = {k: (0.5 * v + 0.25 * v.roll(1, dims=-1) + 0.1) for k, v in clean.items()}
    write_images(folder / "gt", clean)
    write_images(folder / "lq", degraded)
    path = folder / "tiny.toml"
    path.write_text(TINY_CONFIG)
    return path
