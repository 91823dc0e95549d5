"""Do the distribution measures and ST-LPIPS separate clean photos from degraded ones by >= 3x?

    python benchmarks/metric_separation.py [--shift 2] [--vgg] [--per-photo]

For every photo ``x`` of ``ind.data.bundled_photos("test")`` (full size) and each measure ``d``:

- degraded vs clean: ``d(clip(D(x))[s:, s:], x[s:, s:])`` for ``D`` = ``BicubicSR(4)``
  (antialiased bicubic down by 4, bicubic back up) and ``GaussianBlur(2)``, degraded at full
  size and clipped to [0, 1] (BicubicSR's overshoot), as a saved image file would be;
- clean vs clean baseline: ``d(x[:-s, :-s], x[s:, s:])``, the same clean photo displaced by
  ``s`` pixels along both axes (default 2). It has the clean image's statistics and sharpness
  but different pixels: what a measure should call "as good as the reference". A restoration
  that is sharp but places fine detail a pixel or two off (a plausible answer to 4x
  super-resolution) looks like this baseline, a regression to the mean looks like the
  degraded images.

The separation ratio is ``|d(degraded, clean)| / |d(baseline)|``, given as the ratio of the
photo means and as the smallest per-photo ratio; ``spectrum_gap`` is signed (its sign is
shown), the ratio uses its magnitude. A markdown table goes to stdout. All figures come from
this run; the measures are deterministic (``laplacian_swd`` draws from a fixed seed).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

import indiflow as ind

Measure = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def measures(vgg: bool) -> dict[str, Measure]:
    table: dict[str, Measure] = {
        "laplacian_swd": ind.metrics.laplacian_swd,
        "spectrum_gap": ind.metrics.spectrum_gap,
        "gradient_w1": ind.metrics.gradient_w1,
        "ST-LPIPS (alex)": ind.metrics.STLPIPS("alex"),
    }
    if vgg:
        table["ST-LPIPS (vgg)"] = ind.metrics.STLPIPS("vgg")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shift", type=int, default=2, help="baseline displacement (pixels)")
    parser.add_argument("--vgg", action="store_true", help="also run ST-LPIPS with VGG-16")
    parser.add_argument("--per-photo", action="store_true", help="also print per-photo values")
    args = parser.parse_args()
    torch.set_num_threads(1)
    s = args.shift
    names = ind.data.bundled_photo_names("test")
    photos = [p[None] for p in ind.data.bundled_photos("test")]
    degradations = {
        "BicubicSR(4)": ind.degradations.BicubicSR(4),
        "GaussianBlur(2)": ind.degradations.GaussianBlur(2.0),
    }
    table = measures(args.vgg)
    # values[measure][pair] = one value per photo
    values: dict[str, dict[str, list[float]]] = {m: {} for m in table}
    start = time.perf_counter()
    with torch.no_grad():
        for x in photos:
            ref = x[..., s:, s:]
            pairs = {"baseline": x[..., :-s, :-s]}
            for label, degrade in degradations.items():
                # BicubicSR does not clip its overshoot; the metrics take images in [0, 1]
                pairs[label] = degrade(x).clamp(0, 1)[..., s:, s:]
            for name, measure in table.items():
                for label, image in pairs.items():
                    values[name].setdefault(label, []).append(float(measure(image, ref)[0]))
    elapsed = time.perf_counter() - start

    print(
        f"Test photos: {', '.join(names)} (full size); baseline: the clean photo displaced by "
        f"{s} px in x and y. Ratio = |degraded| / |baseline|: of photo means, and the smallest "
        "per-photo ratio.\n"
    )
    header = "| measure | clean baseline |"
    rule = "|---|---|"
    for label in degradations:
        header += f" {label} | ratio (means) | ratio (worst photo) |"
        rule += "---|---|---|"
    print(header)
    print(rule)
    for name, by_pair in values.items():
        base = torch.tensor(by_pair["baseline"])
        row = f"| {name} | {base.mean():.4g} |"
        for label in degradations:
            deg = torch.tensor(by_pair[label])
            ratio_means = deg.mean().abs() / base.mean().abs()
            ratio_worst = (deg.abs() / base.abs()).min()
            row += f" {deg.mean():.4g} | {ratio_means:.1f}x | {ratio_worst:.1f}x |"
        print(row)
    if args.per_photo:
        print("\n| measure | photo | baseline | " + " | ".join(degradations) + " |")
        print("|---|---|---|" + "---|" * len(degradations))
        for name, by_pair in values.items():
            for index, photo in enumerate(names):
                cells = " | ".join(f"{by_pair[label][index]:.4g}" for label in degradations)
                print(f"| {name} | {photo} | {by_pair['baseline'][index]:.4g} | {cells} |")
    print(f"\n({elapsed:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} thread)")


if __name__ == "__main__":
    main()
