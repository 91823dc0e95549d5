"""Figures of ``perception_distortion.py``: the perception–distortion plot and a picture grid."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

Row = dict[str, object]
STYLE = {
    "euler": ("o-", "tab:blue"),
    "heun": ("s--", "tab:orange"),
    "expms3": ("^--", "tab:green"),
    "designed": ("D--", "tab:purple"),
}


def perception_distortion_plot(means: list[Row], path: Path) -> None:
    """PSNR (x) against Laplacian SWD and ST-LPIPS (y, one panel each), points labelled by N.

    ``means`` holds one row per (method, N) averaged over photos and seeds, including the rows
    ``input`` (the degraded image) and ``control`` (N = 1 plus white noise).
    """
    panels = [("laplacian_swd", "Laplacian SWD (lower: closer statistics)")]
    panels.append(("stlpips", "ST-LPIPS alex (lower: more similar)"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (metric, label) in zip(axes, panels, strict=True):
        for method, (fmt, colour) in STYLE.items():
            rows = [r for r in means if r["method"] == method]
            if not rows:
                continue
            xs = [float(r["psnr"]) for r in rows]  # type: ignore[arg-type]
            ys = [float(r[metric]) for r in rows]  # type: ignore[arg-type]
            ax.plot(xs, ys, fmt, color=colour, label=method, markersize=5)
            if method == "euler":
                for r, x, y in zip(rows, xs, ys, strict=True):
                    ax.annotate(f"N={r['N']}", (x, y), textcoords="offset points", xytext=(4, 4))
        for method, marker, colour in (("input", "X", "black"), ("control", "*", "tab:red")):
            for r in (r for r in means if r["method"] == method):
                text = "y" if method == "input" else "N=1 + noise"
                x, y = float(r["psnr"]), float(r[metric])  # type: ignore[arg-type]
                ax.plot([x], [y], marker, color=colour, markersize=9, label=text)
        ax.set_xlabel("PSNR, Y channel (dB): higher is less distortion")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if all(math.isnan(float(r[metric])) for r in means):  # type: ignore[arg-type]
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center")
    axes[0].legend(fontsize=8)
    fig.suptitle("Perception–distortion trade-off: mean over test crops")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def picture_grid(columns: dict[str, torch.Tensor], photos: list[str], path: Path) -> None:
    """Per photo, a row of full images and a row of their central zoom (a quarter of the side).

    ``columns`` maps a title (``GT``, ``y``, ``N=1``...) to images ``(B, 3, H, W)`` in [0, 1].
    """
    titles = list(columns)
    rows = 2 * len(photos)
    fig, axes = plt.subplots(rows, len(titles), figsize=(2.4 * len(titles), 2.4 * rows))
    axes = axes.reshape(rows, len(titles))
    for p, photo in enumerate(photos):
        for c, title in enumerate(titles):
            image = columns[title][p].permute(1, 2, 0).clamp(0, 1).numpy()
            height, width = image.shape[:2]
            side = max(8, min(height, width) // 4)
            top, left = (height - side) // 2, (width - side) // 2
            full, zoom = axes[2 * p, c], axes[2 * p + 1, c]
            full.imshow(image)
            full.add_patch(Rectangle((left, top), side, side, fill=False, color="yellow", lw=1))
            zoom.imshow(image[top : top + side, left : left + side], interpolation="nearest")
            full.set_title(title if p == 0 else "", fontsize=10)
            if c == 0:
                full.set_ylabel(photo, fontsize=9)
                zoom.set_ylabel("zoom", fontsize=9)
            for ax in (full, zoom):
                ax.set_xticks([])
                ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_curves(metrics_csv: Path, path: Path) -> bool:
    """Loss and validation PSNR against the step, from a run's ``metrics.csv``.

    The loss panel is logarithmic; the PSNR panel has one line per ``val_psnr_N`` column (one
    step and N steps). Returns ``False`` (and draws nothing) when the file holds no rows.
    """
    import csv

    with metrics_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return False
    steps = [int(r["step"]) for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.semilogy(steps, [float(r["loss"]) for r in rows], color="tab:blue")
    left.set(xlabel="step", ylabel="training loss (mean per sample)", title="loss")
    for column in (c for c in rows[0] if c.startswith("val_psnr_")):
        points = [(s, float(r[column])) for s, r in zip(steps, rows, strict=True) if r[column]]
        if points:
            xs, ys = zip(*points, strict=True)
            right.plot(xs, ys, "o-", label=f"{column.removeprefix('val_psnr_')} step(s)")
    right.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR (EMA weights)")
    if right.lines:
        right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
