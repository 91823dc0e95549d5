"""The ``indiflow`` command: argument parsing and error reporting shared by every verb."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from indiflow.cli import evaluate, export, restore, train

VERBS = (train, restore, evaluate, export)
# Errors that describe bad input (files, options, configs); they are reported in one line.
# Anything else is a bug and keeps its traceback.
INPUT_ERRORS = (ValueError, TypeError, OSError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``indiflow`` with one sub-parser per verb."""
    from indiflow import __version__

    parser = argparse.ArgumentParser(
        prog="indiflow",
        description="InDI (Inversion by Direct Iteration) image restoration: train a network, "
        "restore images with any indiflow solver, and evaluate the results.",
        epilog="Run 'indiflow VERB --help' for the options of a verb.",
    )
    parser.add_argument("--version", action="version", version=f"indiflow {__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full Python traceback of an error instead of a one-line message",
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        verb_parser = verb.add_parser(subparsers)
        verb_parser.set_defaults(run=verb.run, verb_parser=verb_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``indiflow`` on ``argv`` (default: ``sys.argv[1:]``) and return the exit status 0.

    Bad options exit through argparse (a usage line and ``indiflow VERB: error: ...``, status
    2). Bad input found while running (a missing partner image, a malformed config, an
    unreadable checkpoint) is reported as ``indiflow: error: ...`` with status 2 and no
    traceback, unless ``--traceback`` is given; so is a training run whose loss became NaN or
    infinite (``TrainingDiverged``), with status 1.

    Raises:
        SystemExit: with status 2 on bad input, 1 on a diverged training run (0 for
            ``--help`` and ``--version``).
    """
    from indiflow.training.loss import TrainingDiverged

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args, args.verb_parser)
    except (*INPUT_ERRORS, TrainingDiverged) as error:
        if args.traceback:
            raise
        print(f"indiflow: error: {error}", file=sys.stderr)
        # A diverged run is a failed job (1), not a usage error (2).
        raise SystemExit(1 if isinstance(error, TrainingDiverged) else 2) from None
    except KeyboardInterrupt:
        print("indiflow: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
