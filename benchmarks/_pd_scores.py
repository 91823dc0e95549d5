"""Scores, CSV rows and the markdown table of ``perception_distortion.py``.

A row is one image (or the mean over images) restored by one method with one noise draw.
PSNR and SSIM are on the BT.601 luma with ``crop_border`` pixels removed per side (the scale
factor for super-resolution, 0 otherwise); ST-LPIPS (alex), the Laplacian SWD (its patch and
projection draws seeded with 0, so every row sees the same draws), the spectrum gap and the
gradient W1 are on the whole RGB image.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

import indiflow as ind

METRICS = ("psnr", "ssim", "stlpips", "laplacian_swd", "spectrum_gap", "gradient_w1")
COLUMNS = ("seed", "photo", "method", "N", "evaluations", *METRICS, "rms_to_ref")
Row = dict[str, object]


class Scorer:
    """Per-image scores of restorations against the ground truth.

    Args:
        crop_border: pixels removed from each side for PSNR and SSIM.
        stlpips: compute ST-LPIPS (needs ``stlpips-pytorch``); ``False`` leaves it empty.
    """

    def __init__(self, crop_border: int, stlpips: bool) -> None:
        self.crop_border = crop_border
        self.stlpips = ind.metrics.STLPIPS("alex") if stlpips else None

    def psnr(self, x: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """Luma PSNR per image, border cropped."""
        return ind.metrics.psnr(x, gt, crop_border=self.crop_border, y_channel=True)

    def __call__(self, x: torch.Tensor, gt: torch.Tensor) -> dict[str, list[float]]:
        """``{metric: per-image values}`` for every name of ``METRICS``."""
        metrics = ind.metrics
        scores = {
            "psnr": self.psnr(x, gt),
            "ssim": metrics.ssim(x, gt, crop_border=self.crop_border, y_channel=True),
            "laplacian_swd": metrics.laplacian_swd(
                x, gt, generator=torch.Generator().manual_seed(0)
            ),
            "spectrum_gap": metrics.spectrum_gap(x, gt),
            "gradient_w1": metrics.gradient_w1(x, gt),
        }
        if self.stlpips is not None:
            with torch.no_grad():
                scores["stlpips"] = self.stlpips(x, gt)
        values = {name: [float(v) for v in value] for name, value in scores.items()}
        values.setdefault("stlpips", [float("nan")] * x.shape[0])
        return values


def image_rows(
    photos: Sequence[str],
    scores: dict[str, list[float]],
    seed: int,
    method: str,
    n: int,
    evaluations: int,
    rms_to_ref: Sequence[float] | None = None,
) -> list[Row]:
    """One row per photo; ``rms_to_ref`` empty (NaN) where not given."""
    rows = []
    for i, photo in enumerate(photos):
        row: Row = {"seed": seed, "photo": photo, "method": method, "N": n}
        row["evaluations"] = evaluations
        row.update({name: scores[name][i] for name in METRICS})
        row["rms_to_ref"] = rms_to_ref[i] if rms_to_ref is not None else float("nan")
        rows.append(row)
    return rows


def _key(row: Row) -> tuple[object, ...]:
    return row["method"], row["N"]


def mean_rows(rows: list[Row], group: Callable[[Row], tuple[object, ...]]) -> list[Row]:
    """The mean of every numeric column over the rows sharing ``group(row)``, in first order."""
    groups: dict[tuple[object, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(group(row), []).append(row)
    means = []
    for members in groups.values():
        mean: Row = dict(members[0])
        mean["photo"] = "mean"
        for name in (*METRICS, "rms_to_ref", "evaluations"):
            mean[name] = statistics.fmean(float(m[name]) for m in members)  # type: ignore[arg-type]
        means.append(mean)
    return means


def per_seed_means(rows: list[Row]) -> list[Row]:
    """Mean over photos for each (seed, method, N)."""
    return mean_rows(rows, lambda row: (row["seed"], *_key(row)))


def write_csv(path: Path, rows: list[Row]) -> None:
    """All rows, numbers with 6 significant digits, NaN as an empty cell."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row[k]) for k in COLUMNS})


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"
    return value


def markdown_table(seed_means: list[Row]) -> str:
    """Mean over photos and seeds per method; with several seeds, the spread across seeds.

    ``PSNR spread`` is ``max - min`` over seeds of the photo-mean PSNR (dB); ``SWD spread`` the
    same for the Laplacian SWD relative to its mean over seeds.
    """
    overall = mean_rows(seed_means, _key)
    seeds = {row["seed"] for row in seed_means}
    head = ["method", "N", "evals", "PSNR", "SSIM", "ST-LPIPS", "Lap. SWD", "spec. gap"]
    head += ["grad W1", "RMS to ref"]
    if len(seeds) > 1:
        head += ["PSNR spread", "SWD spread"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in overall:
        cells = [str(row["method"]), str(row["N"]), f"{row['evaluations']:.0f}"]
        cells += [f"{row['psnr']:.2f}", f"{row['ssim']:.4f}", _fmt(row["stlpips"], 4)]
        cells += [f"{row['laplacian_swd']:.4f}", f"{row['spectrum_gap']:.3f}"]
        cells += [f"{row['gradient_w1']:.4f}", _fmt(row["rms_to_ref"], 5)]
        if len(seeds) > 1:
            same = [r for r in seed_means if _key(r) == _key(row)]
            psnrs = [float(r["psnr"]) for r in same]  # type: ignore[arg-type]
            swds = [float(r["laplacian_swd"]) for r in same]  # type: ignore[arg-type]
            cells.append(f"{max(psnrs) - min(psnrs):.3f}")
            cells.append(f"{(max(swds) - min(swds)) / statistics.fmean(swds):.1%}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: object, digits: int) -> str:
    number = float(value)  # type: ignore[arg-type]
    return "–" if number != number else f"{number:.{digits}f}"
