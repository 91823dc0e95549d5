"""``indiflow train``: train a network from a TOML config (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

# section.key or section.sub.key, then "=", then anything (the value is parsed by the config
# loader, as TOML where it reads as TOML and as a string otherwise).
OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+\s*=.*$", re.DOTALL)

DESCRIPTION = """\
Train the network of CONFIG: a shipped config name (see indiflow/configs, e.g. sr4_photos_cpu)
or the path of a TOML file. Checkpoints, the resolved config and a metrics CSV go to --out.
Any key can be changed with --set section.key=value (repeatable); values read as TOML
(2e-4, true, [1, 2], "text"), anything else as a string.

A run killed at any point continues where it stopped with --resume auto (the default): the
newest valid checkpoint of --out is loaded, a truncated one is skipped with a warning.

Several processes or GPUs: torchrun --nproc_per_node=K -m indiflow train CONFIG
(rank, world size and local rank are read from the environment torchrun sets).
"""


def parse_override(text: str) -> str:
    """``--set`` type: ``section.key=value`` (returned unchanged for the config loader)."""
    if not OVERRIDE.match(text):
        raise argparse.ArgumentTypeError(
            f"expected section.key=value (e.g. train.steps=200), got {text!r}"
        )
    return text


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a network from a TOML config",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", metavar="CONFIG", help="shipped config name or TOML path")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="run folder (default: runs/NAME, NAME the config's file name)",
    )
    parser.add_argument(
        "--resume",
        default="auto",
        metavar="auto|PATH|never",
        help="auto: newest valid checkpoint of --out if any; PATH: that "
        "checkpoint; never: start afresh (default: auto)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        type=parse_override,
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key",
    )
    return parser


def default_out(config: str) -> Path:
    """``runs/NAME``: NAME is the shipped config's name or the TOML file's name without suffix."""
    return Path("runs") / Path(config).stem


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from indiflow.training import load_config, train

    config = load_config(args.config, overrides=args.overrides)
    out = default_out(args.config) if args.out is None else args.out
    result = train(config, out_dir=out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: one summary, from rank 0
        start = f"resumed from {result.resumed_from}" if result.resumed_from else "fresh start"
        print(f"trained to step {result.step} ({start}) in {result.out_dir}")
        if result.checkpoint is not None:
            print(f"newest checkpoint: {result.checkpoint}")
        scores = {"loss": result.loss, **result.validation}
        shown = [f"{name} {value:.6g}" for name, value in scores.items() if value is not None]
        if shown:
            print("last " + ", ".join(shown))
    return 0
