"""Argument types shared by the verbs: argparse calls them on the raw text and reports their
``ArgumentTypeError`` as ``indiflow VERB: error: argument --NAME: MESSAGE`` with exit status 2."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def existing_folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        what = "a file, not a folder" if path.exists() else "no such folder"
        raise argparse.ArgumentTypeError(f"{text!r}: {what}")
    return path


def existing_path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r}: no such file or folder")
    return path


def checkpoint_path(text: str) -> Path:
    """An existing checkpoint / weights file or run folder, or a shipped weights name."""
    from indiflow.training.export import resolve_weights, shipped_weights

    path = resolve_weights(text)
    if not path.exists():
        shipped = ", ".join(shipped_weights()) or "none"
        raise argparse.ArgumentTypeError(
            f"{text!r}: no such file or folder, and no shipped weights of that name "
            f"(shipped: {shipped})"
        )
    return path


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        help="where to compute (default: cuda when available, else cpu)",
    )


def pick_device(name: str | None) -> torch.device:
    """``name`` as a device; ``None`` picks CUDA when available. ValueError for missing CUDA."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but this PyTorch sees no CUDA device")
    return torch.device(name)
