"""Where a run starts: the checkpoint that ``resume`` selects, and restoring its state."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from indiflow.training.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    load_state,
    newest_valid_checkpoint,
    remove_temporaries,
)
from indiflow.training.distributed import DistributedContext
from indiflow.training.ema import EMA
from indiflow.training.rng import capture_rng, seed_everything


def find_resume(
    out_dir: Path, resume: str | os.PathLike[str], ctx: DistributedContext
) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint (path and state) a run resumes from, or ``None`` for a fresh start.

    Rank 0 first creates ``out_dir`` and removes temporary files of killed saves. Every rank
    then reads the same checkpoint; only rank 0 warns about the files it skips.

    Args:
        out_dir: the run folder.
        resume: ``"auto"``, ``"never"``, or the path of a checkpoint file or folder.
        ctx: the process's place in the job.

    Raises:
        TypeError: ``resume`` is neither a string nor a path.
        ValueError: ``"never"`` with checkpoints already in ``out_dir``; a path that does not
            exist; a folder without a valid checkpoint.
        CheckpointError: a checkpoint file named explicitly is truncated or foreign.
    """
    if not isinstance(resume, str | os.PathLike):
        raise TypeError(
            f"resume must be 'auto', 'never' or a path, got {type(resume).__name__}: {resume!r}"
        )
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(out_dir)
    ctx.barrier()
    with warnings.catch_warnings():
        if not ctx.is_main:
            warnings.simplefilter("ignore")
        return _select(out_dir, resume, ctx.device)


def _select(
    out_dir: Path, resume: str | os.PathLike[str], device: torch.device
) -> tuple[Path, dict[str, Any]] | None:
    if resume == "never":
        existing = list_checkpoints(out_dir)
        if existing:
            raise ValueError(
                f"resume='never' but {str(out_dir)!r} already holds {len(existing)} checkpoint(s) "
                f"(newest {existing[-1].name}); resume with 'auto' or choose another out_dir"
            )
        return None
    if resume == "auto":
        return newest_valid_checkpoint(out_dir, map_location=device)
    path = Path(resume)
    if path.is_file():
        return path, load_checkpoint(path, map_location=device)
    if not path.is_dir():
        raise ValueError(
            f"resume path {str(path)!r} does not exist; give a checkpoint file, a run folder, "
            "'auto' or 'never'"
        )
    found = newest_valid_checkpoint(path, map_location=device)
    if found is None:
        raise ValueError(
            f"resume folder {str(path)!r} holds no valid checkpoint (step_*.pt); "
            "use resume='auto' to start afresh"
        )
    return found


def restore_training_state(
    state: dict[str, Any],
    model: nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load weights, EMA, optimiser, schedule and gradient-scaler state from a checkpoint.

    Raises:
        ValueError: the checkpoint comes from another architecture (naming the shapes).
    """
    load_state(model, state["model"], "model")
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler") is not None and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])


def rank_rng(rng: dict[str, Any], rank: int, seed: int) -> dict[str, Any]:
    """The global random states of ``rank`` saved in a checkpoint's ``rng`` entry.

    Rank 0's states are the top level, rank ``r``'s are ``rng["other_ranks"][r - 1]``. A
    checkpoint saved with fewer ranks has none for the extra ranks: they are reseeded with
    ``seed + rank`` (with a warning), as on a fresh start.
    """
    if rank == 0:
        return rng
    others = rng.get("other_ranks", [])
    if rank - 1 < len(others):
        return others[rank - 1]
    warnings.warn(
        f"the checkpoint holds no random state for rank {rank} (saved with fewer ranks); "
        "its global random state is reseeded",
        stacklevel=3,
    )
    seed_everything(seed + rank)
    return capture_rng()


def warn_config_changes(saved: object, current: dict[str, Any], path: Path) -> None:
    """Warn (once, listing them) about keys whose value differs from the checkpoint's config."""
    if not isinstance(saved, dict):
        return
    before, after = _flatten(saved), _flatten(current)
    changed = [
        f"{key} ({before.get(key, '(unset)')!r} -> {after.get(key, '(unset)')!r})"
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]
    if changed:
        warnings.warn(
            f"resuming {str(path)!r} with a config that differs from the one it was trained "
            f"with: {', '.join(changed)}",
            stacklevel=3,
        )


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out
