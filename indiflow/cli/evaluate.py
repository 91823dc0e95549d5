"""``indiflow evaluate``: restoration metrics of a folder of predictions against ground truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from indiflow.cli.arguments import (
    add_device_argument,
    existing_folder,
    nonnegative_int,
    pick_device,
)
from indiflow.cli.image_files import check_sizes, pair_images
from indiflow.cli.metric_names import (
    DEFAULT_METRICS,
    METRICS,
    build_metrics,
    metric_help,
    parse_metric_names,
)
from indiflow.cli.table import format_table, write_csv

DESCRIPTION = f"""\
Compare every image of --pred with the image of --gt that has the same name, and print one row
per image and a mean row. Names match without their extension (0001.png matches 0001.jpg); an
image without a partner or with a different size is an error, nothing is skipped.

metrics:
{metric_help()}
--y-channel and --crop-border follow BasicSR's super-resolution convention for psnr and ssim;
--crop-border also crops the images given to the other metrics.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics of restored images against ground truth",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--gt",
        required=True,
        type=existing_folder,
        metavar="DIR",
        help="folder of ground-truth images",
    )
    parser.add_argument(
        "--pred",
        required=True,
        type=existing_folder,
        metavar="DIR",
        help="folder of restored images, named like their ground truth",
    )
    parser.add_argument(
        "--y-channel",
        action="store_true",
        help="psnr and ssim on the ITU-R BT.601 luma (the super-resolution convention)",
    )
    parser.add_argument(
        "--crop-border",
        type=nonnegative_int,
        default=0,
        metavar="N",
        help="ignore N pixels on every side (super-resolution: the scale)",
    )
    parser.add_argument(
        "--metrics",
        type=parse_metric_names,
        nargs="+",
        metavar="NAMES",
        default=[list(DEFAULT_METRICS)],
        help=f"comma- or space-separated, from {', '.join(METRICS)} "
        f"(default: {','.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="also write the table, at full precision, to this CSV file",
    )
    add_device_argument(parser)
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    from indiflow.data.io import read_image

    names = [name for group in args.metrics for name in group]
    pairs = pair_images(args.gt, args.pred)
    check_sizes(pairs)
    device = pick_device(args.device)
    metrics = build_metrics(
        names, crop_border=args.crop_border, y_channel=args.y_channel, device=device
    )
    rows: list[list[str | float]] = []
    with torch.no_grad():
        for gt_path, pred_path in tqdm(pairs, desc="evaluate", unit="image", file=sys.stderr):
            ref, x = read_image(gt_path), read_image(pred_path)
            if x.shape != ref.shape:
                raise ValueError(
                    f"{pred_path} has shape {tuple(x.shape)} (C, H, W) but its ground truth "
                    f"{gt_path} has {tuple(ref.shape)}; save both as RGB or both as grey"
                )
            x, ref = x[None].to(device), ref[None].to(device)
            rows.append([pred_path.name, *(float(m(x, ref)[0]) for m in metrics.values())])
    means = torch.tensor([row[1:] for row in rows], dtype=torch.float64).mean(dim=0)
    rows.append(["mean", *means.tolist()])
    header = ["image", *metrics]
    print(format_table(header, rows))
    if args.csv is not None:
        write_csv(args.csv, header, rows)
        print(f"wrote {args.csv}")
    return 0
