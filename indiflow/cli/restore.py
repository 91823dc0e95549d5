"""``indiflow restore``: run a trained checkpoint's ODE on a file or a folder of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from indiflow.cli.arguments import (
    add_device_argument,
    checkpoint_path,
    existing_path,
    nonnegative_int,
    pick_device,
    positive_float,
    positive_int,
)
from indiflow.cli.image_files import batches_by_size, list_inputs, plan_outputs, read_batch
from indiflow.cli.schedule import (
    DEFAULT_ADAPTIVE_SOLVER,
    DEFAULT_STEPS,
    GRID_KINDS,
    SOLVERS,
    GridSpec,
    build_controller,
    build_solver,
    parse_grid,
    solver_names_with_error_estimate,
)

DEFAULT_OVERLAP = 32

DESCRIPTION = f"""\
Restore every image of --input (a file or a folder) by integrating the InDI ODE from t = 1
(the degraded image, plus the checkpoint's training noise) to t = 0, and write each result as
a PNG named like its input into --output.

The default is Algorithm 1 of the paper: euler on the uniform grid of {DEFAULT_STEPS} steps.
--steps N picks the number of steps, --grid the spacing (uniform, power:RHO with RHO > 1
concentrating steps near t = 0, log_uniform:TMIN, or a JSON file saved from
indiflow.GridDesign.to_json() or indiflow.SolverDesign.to_json(), the latter with its own
solver), --solver the integrator; --adaptive replaces the grid by
error control, each image taking its own steps (default solver {DEFAULT_ADAPTIVE_SOLVER}).
--tile T evaluates the network on T x T tiles overlapping by --overlap pixels inside every
step, so each step still sees the whole image. Images of one size go through in batches of
--batch; the noise is drawn from --seed in that order, so equal --seed and --batch give equal
outputs. Results are clamped to [0, 1] before they are written.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "restore",
        help="restore images with a trained checkpoint",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--checkpoint",
        required=True,
        type=checkpoint_path,
        metavar="CKPT",
        help="a checkpoint file written by indiflow train, a run folder (its newest valid "
        "checkpoint), a weights file written by indiflow export, or the name of a shipped "
        "weights file (e.g. sr4_photos_cpu)",
    )
    add(
        "--input",
        required=True,
        type=existing_path,
        metavar="DIR|FILE",
        help="an image file or a folder of images",
    )
    add("--output", required=True, type=Path, metavar="DIR", help="folder for the PNG results")
    add(
        "--solver",
        choices=tuple(SOLVERS),
        metavar="NAME",
        help=f"one of {', '.join(SOLVERS)} (default: euler; {DEFAULT_ADAPTIVE_SOLVER} with "
        "--adaptive)",
    )
    add(
        "--steps",
        type=positive_int,
        metavar="N",
        help=f"number of steps of the grid (default: {DEFAULT_STEPS})",
    )
    add(
        "--grid",
        type=parse_grid,
        metavar="SPEC",
        help=f"{' | '.join(GRID_KINDS)} (default: uniform)",
    )
    add(
        "--adaptive", action="store_true", help="error-controlled steps per image instead of a grid"
    )
    add("--rtol", type=positive_float, metavar="R", help="relative tolerance (default: 1e-3)")
    add("--atol", type=positive_float, metavar="A", help="absolute tolerance (default: 1e-6)")
    add("--tile", type=positive_int, metavar="T", help="tile size in pixels (default: no tiles)")
    add(
        "--overlap",
        type=nonnegative_int,
        metavar="O",
        help=f"overlap of neighbouring tiles in pixels (default: {DEFAULT_OVERLAP})",
    )
    add(
        "--tile-batch",
        type=positive_int,
        metavar="K",
        help="tiles per network call (default: 1; memory grows with it)",
    )
    add(
        "--bits",
        type=int,
        choices=(8, 16),
        default=8,
        help="bits per sample of the PNGs (default: 8)",
    )
    add("--no-ema", action="store_true", help="use the raw weights instead of their EMA")
    add(
        "--noise",
        choices=("checkpoint", "none"),
        default="checkpoint",
        help="start noise: the training noise stored in the checkpoint, or none (start at y)",
    )
    add(
        "--seed",
        type=nonnegative_int,
        default=0,
        metavar="S",
        help="seed of the noise draws (default: 0)",
    )
    add(
        "--batch",
        type=positive_int,
        default=4,
        metavar="B",
        help="images of one size per batch (default: 4)",
    )
    add("--overwrite", action="store_true", help="replace files that exist in --output")
    add_device_argument(parser)
    return parser


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject contradictory options with ``parser.error`` (usage line, exit status 2)."""
    if args.adaptive:
        if args.steps is not None or args.grid is not None:
            parser.error("--adaptive chooses its own steps; leave out --steps and --grid")
        if args.solver is None:
            args.solver = DEFAULT_ADAPTIVE_SOLVER
        if args.solver not in solver_names_with_error_estimate():
            parser.error(
                f"--adaptive needs a solver with an error estimate, not {args.solver}; use one "
                f"of {', '.join(solver_names_with_error_estimate())}"
            )
    elif args.rtol is not None or args.atol is not None:
        parser.error("--rtol and --atol apply to --adaptive only")
    args.grid = args.grid or GridSpec("uniform", text="uniform")
    if (args.overlap is not None or args.tile_batch is not None) and args.tile is None:
        parser.error("--overlap and --tile-batch apply to tiled restoration only; add --tile T")
    args.overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    if args.tile is not None and args.tile <= args.overlap:
        parser.error(
            f"--tile {args.tile} must be larger than --overlap {args.overlap}; use a larger tile "
            "or a smaller overlap"
        )


def resolve_checkpoint(path: Path) -> Path:
    """``path`` itself, or the newest valid checkpoint of the run folder ``path``.

    Raises:
        ValueError: a folder without a valid checkpoint.
    """
    from indiflow.training import newest_valid_checkpoint

    if not path.is_dir():
        return path
    found = newest_valid_checkpoint(path)
    if found is None:
        raise ValueError(
            f"--checkpoint folder {str(path)!r} holds no valid checkpoint (step_*.pt); "
            "give a checkpoint file or the --out folder of indiflow train"
        )
    return found[0]


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_arguments(args, parser)
    from tqdm import tqdm

    import indiflow as ind
    from indiflow.data.io import write_image
    from indiflow.training import load_model

    rtol = 1e-3 if args.rtol is None else args.rtol
    atol = 1e-6 if args.atol is None else args.atol
    controller = build_controller(args.grid, args.steps, args.adaptive, rtol, atol)
    solver = build_solver(args.grid, args.solver)
    inputs = list_inputs(args.input)
    outputs = plan_outputs(inputs, args.output, args.overwrite)
    device = pick_device(args.device)
    checkpoint = resolve_checkpoint(args.checkpoint)
    model, noise, config = load_model(checkpoint, ema=not args.no_ema, map_location=device)
    channels = int(config.model.get("channels", 3))
    noise = noise if args.noise == "checkpoint" else None
    generator = torch.Generator(device=device).manual_seed(args.seed)
    tiling = {}
    if args.tile is not None:
        tiling = {"tile": args.tile, "overlap": args.overlap, "tile_batch": args.tile_batch or 1}
    bar = tqdm(total=len(inputs), desc="restore", unit="image", file=sys.stderr)
    with torch.no_grad(), bar:
        for indices in batches_by_size(inputs, args.batch):
            y = read_batch([inputs[i] for i in indices], channels, checkpoint).to(device)
            x = ind.restore(
                model, y, solver, controller, noise=noise, generator=generator, **tiling
            )
            for i, image in zip(indices, x.clamp(0.0, 1.0), strict=True):
                write_image(outputs[i], image, bits=args.bits)
            bar.update(len(indices))
    print(f"restored {len(inputs)} image(s) from {checkpoint} into {args.output}")
    print(f"with {describe(args, noise)}")
    return 0


def describe(args: argparse.Namespace, noise: object) -> str:
    """How the images were restored, in one line."""
    steps = "adaptive steps" if args.adaptive else f"{args.grid.text} grid"
    if not args.adaptive and args.grid.kind != "design":
        steps = f"{DEFAULT_STEPS if args.steps is None else args.steps} steps, " + steps
    solver = args.solver or ("the design's solver" if args.grid.solver else "euler")
    return f"{solver}, {steps}, start noise {noise!r}"
