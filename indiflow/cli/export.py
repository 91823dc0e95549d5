"""``indiflow export``: reduce a training checkpoint to the weights restoration needs."""

from __future__ import annotations

import argparse
from pathlib import Path

from indiflow.cli.arguments import existing_path

DESCRIPTION = """\
Write the EMA weights, the resolved config and the step of a training checkpoint (or of the
newest valid checkpoint of a run folder) to one small file that indiflow restore, indiflow
evaluate's callers and indiflow.training.load_model read like a checkpoint. It drops the raw
weights, the optimiser state and the random states, so it cannot resume training; with
--dtype float16 or bfloat16 the weights take half the space again (loaded back as float32).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="reduce a checkpoint to a small weights file for restoration",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "checkpoint", metavar="CKPT", type=existing_path, help="checkpoint file or run folder"
    )
    parser.add_argument("output", metavar="OUT", type=Path, help="the weights file to write")
    parser.add_argument(
        "--dtype",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="storage type of the weights (default: float32)",
    )
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from indiflow.cli.restore import resolve_checkpoint
    from indiflow.training import export_weights

    if args.output.is_dir():
        parser.error(f"OUT {str(args.output)!r} is a folder; give a file name such as model.pt")
    checkpoint = resolve_checkpoint(args.checkpoint)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    export_weights(checkpoint, args.output, dtype=args.dtype)
    size = args.output.stat().st_size / 2**20
    print(f"wrote {args.output} ({size:.1f} MiB, {args.dtype}) from {checkpoint}")
    return 0
