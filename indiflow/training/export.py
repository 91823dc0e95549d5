"""Weights files: a training checkpoint reduced to what restoration needs.

A training checkpoint carries the raw weights, the EMA weights, the optimiser moments, the
schedule and every random state, about four times the network's size. A weights file keeps the
EMA weights (optionally cast to float16 or bfloat16 to halve them again), the resolved config
and the step, in a dict with ``format = "indiflow.weights"``; it loads with
``torch.load(weights_only=True)`` and everywhere a checkpoint is read for restoration
(:func:`~indiflow.training.load_model`, ``indiflow restore``), but it cannot resume training.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from indiflow.training.checkpoint import (
    CheckpointError,
    check_checkpoint,
    check_version_and_keys,
    load_checkpoint,
    read_torch_file,
    save_checkpoint,
)

WEIGHTS_FORMAT = "indiflow.weights"
WEIGHTS_VERSION = 1
WEIGHTS_KEYS = ("step", "ema", "config")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def export_weights(
    checkpoint: str | os.PathLike[str], path: str | os.PathLike[str], *, dtype: str = "float32"
) -> os.PathLike[str]:
    """Write the EMA weights and config of a training checkpoint to a weights file.

    Args:
        checkpoint: a ``step_*.pt`` file written by :func:`indiflow.training.train`.
        path: the file to write (atomically, as checkpoints are).
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"``: storage type of the floating-point
            tensors (``load_model`` casts them back to float32).

    Returns:
        ``path``.

    Raises:
        ValueError: an unknown ``dtype``; see :func:`~indiflow.training.load_checkpoint`.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    state = load_checkpoint(checkpoint)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} holds no config; nothing to export")
    weights = {
        name: t.to(_DTYPES[dtype]) if t.is_floating_point() else t
        for name, t in state["ema"].items()
    }
    exported = {
        "format": WEIGHTS_FORMAT,
        "version": WEIGHTS_VERSION,
        "step": state["step"],
        "ema": weights,
        "config": state["config"],
    }
    return save_checkpoint(exported, path)


def shipped_weights() -> list[str]:
    """Names of the weights files shipped in ``indiflow/checkpoints`` (sorted)."""
    folder = resources.files("indiflow") / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".pt")] for p in folder.iterdir() if p.name.endswith(".pt"))


def resolve_weights(name_or_path: str | os.PathLike[str]) -> Path:
    """``name_or_path`` itself when it exists, else the shipped weights file of that name."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in shipped_weights():
        return Path(str(resources.files("indiflow") / "checkpoints" / f"{name_or_path}.pt"))
    return path


def read_restoration_state(
    path: str | os.PathLike[str], *, ema: bool, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict (EMA or raw weights) and plain config of a checkpoint or weights file.

    ``path`` may also name a shipped weights file (see :func:`shipped_weights`).

    Raises:
        ValueError / CheckpointError: not a file, truncated, foreign, without config, or raw
            weights asked of a weights file (it holds the EMA weights only).
    """
    path = resolve_weights(path)
    state = read_torch_file(path, map_location)
    if isinstance(state, dict) and state.get("format") == WEIGHTS_FORMAT:
        check_version_and_keys(state, path, "weights file", WEIGHTS_VERSION, WEIGHTS_KEYS)
        if not ema:
            raise ValueError(
                f"{str(path)!r} is a weights file and holds only the EMA weights; drop the "
                "request for the raw weights (--no-ema) or give a training checkpoint"
            )
    else:
        check_checkpoint(state, path)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds no config to rebuild its network")
    weights = state["ema" if ema else "model"]
    weights = {n: t.float() if t.is_floating_point() else t for n, t in weights.items()}
    return weights, state["config"]
