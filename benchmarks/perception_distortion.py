"""Perception–distortion sweep of a trained checkpoint on the bundled test photos (issue 11).

Question: does one InDI step give the minimum-distortion (blurry) estimate and do more steps
trade a little PSNR for much better perceptual statistics, on real photographs?

Setup: the checkpoint's network (EMA weights) and training noise; the bundled test photos'
central ``size`` x ``size`` crops, degraded by the checkpoint config's degradation with a
generator seeded ``DEGRADATION_SEED``. Each noise draw (``--seeds``) restores them with Euler on
uniform grids of N steps for every N of ``--steps``; for N >= 2 also Heun (``(N + 1) // 2``
steps, ``N`` evaluations or one fewer), ExpMultistep3 (N steps) and, with ``--design``,
ExpMultistep3 on a grid designed by ``ind.design_grid`` (one pilot: the first crop's central
quarter); a control, the N = 1 output plus white noise scaled per photo to the PSNR of the
largest Euler N up to 20; and the degraded input itself. Scores: see ``_pd_scores.py``;
``rms_to_ref`` is the RMS distance to a 50-step ExpMultistep3 solution from the same draw.
Outputs (``--out``): ``scores.csv`` (per photo and mean rows), ``perception_distortion.png``,
``pictures.png``; the mean table is printed as markdown.

    python benchmarks/perception_distortion.py --checkpoint runs/sr4_cpu --out runs/sr4_cpu/pd
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from _pd_acceptance import acceptance_checks, checks_table, trend_counts
from _pd_figures import perception_distortion_plot, picture_grid, training_curves
from _pd_methods import (
    build_methods,
    designer,
    reference_solution,
    rms_distance,
    run_method,
    white_noise_control,
)
from _pd_scores import Row, Scorer, image_rows, markdown_table, mean_rows, per_seed_means, write_csv
from tqdm import tqdm

import indiflow as ind
from indiflow.cli.restore import resolve_checkpoint
from indiflow.training import load_model
from indiflow.training.export import resolve_weights
from indiflow.training.specs import build_degradation

DEFAULT_STEPS = (1, 2, 5, 10, 20, 50)
PICTURE_STEPS = (1, 5, 20)
DEGRADATION_SEED = 20_000  # apart from the draw seeds 0..K-1 and the control's 1000 + k


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="step_*.pt, run folder, weights file, or shipped weights name (sr4_photos_cpu)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV and PNGs")
    parser.add_argument("--size", type=int, default=256, help="side of the central crops")
    parser.add_argument("--photos", type=int, default=None, help="use the first K test photos")
    parser.add_argument("--steps", type=int, nargs="+", default=list(DEFAULT_STEPS))
    parser.add_argument("--seeds", type=int, default=1, help="start-noise draws (seeds 0..K-1)")
    parser.add_argument("--no-stlpips", action="store_true", help="skip ST-LPIPS")
    parser.add_argument("--design", action="store_true", help="add designed ExpMultistep3 grids")
    parser.add_argument("--design-evaluations", type=int, default=40, help="pilot solves each")
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error(f"--size must be at least 32 (ST-LPIPS and the SWD pyramid), got {args.size}")
    if args.photos is not None and args.photos < 1:
        parser.error(f"--photos must be at least 1, got {args.photos}")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if any(n < 1 for n in args.steps):
        parser.error(f"--steps must be positive integers, got {args.steps}")
    args.steps = sorted(set(args.steps))
    return args


def checkpoint_file(path: Path) -> Path:
    """The newest valid checkpoint of a run folder, a shipped weights file by name, or ``path``.

    The resolution of ``indiflow restore --checkpoint``.
    """
    try:
        return resolve_checkpoint(resolve_weights(path))
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def test_crops(config: object, size: int, limit: int | None) -> tuple[list[str], torch.Tensor]:
    """Names and central ``size`` x ``size`` crops of the bundled test photos."""
    names = ind.data.bundled_photo_names("test")[:limit]
    crops = []
    for name, image in zip(names, ind.data.bundled_photos("test"), strict=False):
        height, width = image.shape[-2:]
        if size > min(height, width):
            raise SystemExit(f"error: --size {size} exceeds test photo {name!r} ({height}x{width})")
        top, left = (height - size) // 2, (width - size) // 2
        crops.append(image[:, top : top + size, left : left + size])
    return names, torch.stack(crops)


def sr_scale(config: object) -> int:
    """The scale of a ``BicubicSR`` among the config's degradations; 0 without one."""
    ops = config.data.degradation  # type: ignore[attr-defined]
    return next((op.scale for op in ops if isinstance(op, ind.degradations.BicubicSR)), 0)


def sweep_seed(
    model: torch.nn.Module,
    noise: object,
    gt: torch.Tensor,
    y: torch.Tensor,
    methods: list,
    seed: int,
    names: list[str],
    scorer: Scorer,
    bar: tqdm,
) -> tuple[list[Row], dict[int, torch.Tensor]]:
    """Rows of one noise draw and its Euler outputs by N."""
    reference = reference_solution(model, noise, y, seed)
    bar.update(1)
    rows = image_rows(names, scorer(y.clamp(0, 1), gt), seed, "input", 0, 0)
    euler: dict[int, torch.Tensor] = {}
    for method in methods:
        x, evaluations = run_method(model, noise, y, method, seed)
        rms = rms_distance(x, reference)
        rows += image_rows(
            names, scorer(x, gt), seed, method.label, method.budget, evaluations, rms
        )
        if method.label == "euler":
            euler[method.budget] = x
        bar.update(1)
    if 1 in euler and len(euler) > 1:
        above_one = [n for n in euler if n > 1]
        target_n = max((n for n in above_one if n <= 20), default=max(above_one))
        generator = torch.Generator().manual_seed(1000 + seed)
        target = scorer.psnr(euler[target_n], gt)
        control = white_noise_control(euler[1], gt, target, scorer.psnr, generator)
        scores = scorer(control, gt)
        missed = max(abs(a - b) for a, b in zip(scores["psnr"], target.tolist(), strict=True))
        if missed > 0.05:
            print(
                f"note: the control misses N={target_n}'s PSNR by up to {missed:.2f} dB "
                "(no noise scale reaches it after clipping)"
            )
        rows += image_rows(names, scores, seed, "control", target_n, 1)
    return rows, euler


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A context, not torch.set_grad_enabled(False): callers (the tests) keep autograd afterwards.
    with torch.no_grad():
        return run(args)


def run(args: argparse.Namespace) -> int:
    checkpoint = checkpoint_file(args.checkpoint)
    model, noise, config = load_model(checkpoint)
    names, gt = test_crops(config, args.size, args.photos)
    degrade = build_degradation(config.data.degradation, config.data.noise_sigma)
    # Not seed 0: restoration draw k starts from y + eps * randn(seed k), and a degradation
    # noise drawn from seed 0 would be that very draw, doubling draw 0's noise.
    y = degrade(gt, generator=torch.Generator().manual_seed(DEGRADATION_SEED))
    scale = sr_scale(config)
    scorer = Scorer(crop_border=scale, stlpips=not args.no_stlpips)
    design = None
    if args.design:
        quarter = args.size // 4
        pilot = y[:1, :, quarter : 3 * quarter, quarter : 3 * quarter]
        design = designer(model, noise, pilot, args.design_evaluations)
    started = time.perf_counter()
    methods = build_methods(args.steps, design)
    rows: list[Row] = []
    euler: dict[int, torch.Tensor] = {}
    bar = tqdm(total=args.seeds * (len(methods) + 1), desc="restore and score", unit="solve")
    for seed in range(args.seeds):
        seed_rows, seed_euler = sweep_seed(model, noise, gt, y, methods, seed, names, scorer, bar)
        rows += seed_rows
        euler = euler or seed_euler
    bar.close()
    elapsed = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    seed_means = per_seed_means(rows)
    write_csv(args.out / "scores.csv", rows + seed_means)
    overall = mean_rows(seed_means, lambda row: (row["method"], row["N"]))
    perception_distortion_plot(overall, args.out / "perception_distortion.png")
    columns = {"GT": gt, "y": y.clamp(0, 1)}
    columns.update({f"N={n}": euler[n] for n in PICTURE_STEPS if n in euler})
    picture_grid(columns, names, args.out / "pictures.png")
    written = ["scores.csv", "perception_distortion.png", "pictures.png"]
    metrics_csv = checkpoint.parent / "metrics.csv"
    if metrics_csv.is_file() and training_curves(metrics_csv, args.out / "training.png"):
        written.append("training.png")
    report = checks_table(acceptance_checks(seed_means), trend_counts(rows))
    (args.out / "acceptance.md").write_text(report + "\n")
    written.append("acceptance.md")

    print(f"checkpoint {checkpoint}, start noise {noise}")
    print(f"{len(names)} test crops of {args.size}x{args.size}, PSNR/SSIM crop border {scale}")
    print(
        f"{args.seeds} noise draw(s), {len(methods)} methods: {elapsed:.1f} s restoring and scoring"
    )
    print()
    print(markdown_table(seed_means))
    print()
    print(report)
    print()
    print(f"wrote {', '.join(written)} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
