"""Checkpoints you cannot lose: atomic writes, newest-K retention, validated loading.

A checkpoint is one file ``step_XXXXXXXX.pt`` holding a dict with the keys ``format``,
``version``, ``step``, ``model`` and ``ema`` (state dicts), ``optimizer``, ``scheduler``,
``scaler`` (``None`` unless fp16), ``rng`` (see :mod:`indiflow.training.rng`, plus ``data``: the
epoch and position of the data order, and ``other_ranks``: the global random states of ranks
1..K-1) and ``config`` (the resolved config as plain data). Everything is a tensor or plain
data, so it loads with ``torch.load(weights_only=True)``.

API::

    save_checkpoint(state, path)            # temp file in the same folder, fsync, os.replace
    load_checkpoint(path) -> dict           # CheckpointError when truncated, corrupt or foreign
    newest_valid_checkpoint(folder) -> (path, state) | None   # skips bad files with a warning
    load_model(path, ema=True) -> (model, noise, config)      # a network ready for ind.restore
                                            # (also from a weights file, see export.py)
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from indiflow.training.ema import EMA

FORMAT = "indiflow.checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "step", "model", "ema", "optimizer", "scheduler", "rng")
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
_TEMPORARY = re.compile(r"^\.step_\d{8,}\.pt\.tmp\.\d+$")


class CheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupt, or not an indiflow checkpoint."""


def checkpoint_path(folder: str | os.PathLike[str], step: int) -> Path:
    """``folder / "step_{step:08d}.pt"``: names sort in step order."""
    return Path(folder) / f"step_{step:08d}.pt"


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder, which is flushed and ``fsync``ed, then
    renamed over ``path`` with ``os.replace`` (atomic on POSIX and Windows), and the folder is
    ``fsync``ed so the rename survives a power cut. A crash at any point leaves either the old
    file set or the new one, never a partial ``step_*.pt``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(temporary, "wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    _publish(temporary, path)
    return path


def _publish(temporary: Path, path: Path) -> None:
    """Rename the finished temporary file onto its final name and make the rename durable."""
    os.replace(temporary, path)
    if hasattr(os, "O_DIRECTORY"):  # POSIX: fsync the folder entry; Windows has no such call
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def training_state(
    step: int,
    model: nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    rng: dict[str, Any],
) -> dict[str, Any]:
    """The checkpoint dict of a training state; the caller adds ``config`` (plain data)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": rng,
    }


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read and check a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        ValueError: ``path`` is not a file.
        CheckpointError: the file is truncated or corrupt, or is not an indiflow checkpoint of
            a version this library reads.
    """
    state = read_torch_file(path, map_location)
    check_checkpoint(state, path)
    return state


def read_torch_file(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> object:
    """``torch.load(path, weights_only=True)`` with input errors reported as such.

    Raises:
        ValueError: ``path`` is not a file.
        CheckpointError: the file is truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} is not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt ({type(err).__name__}: {err}); "
            "delete it or resume from an older checkpoint"
        ) from err


def check_checkpoint(state: object, path: str | os.PathLike[str]) -> None:
    """Raise ``CheckpointError`` unless ``state`` is a training checkpoint this library reads."""
    path = Path(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an indiflow training checkpoint")
    check_version_and_keys(state, path, "checkpoint", VERSION, REQUIRED_KEYS)


def check_version_and_keys(
    state: dict[str, Any],
    path: str | os.PathLike[str],
    what: str,
    version: int,
    keys: tuple[str, ...],
) -> None:
    """Raise ``CheckpointError`` unless ``state`` has an int version <= ``version`` and ``keys``.

    ``what`` names the kind of file in the messages (``"checkpoint"``, ``"weights file"``).
    """
    if not isinstance(state.get("version"), int) or state["version"] > version:
        raise CheckpointError(
            f"{what} {str(path)!r} has version {state.get('version')!r}; this indiflow "
            f"reads versions up to {version}: upgrade indiflow"
        )
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointError(f"{what} {str(path)!r} lacks the key(s) {', '.join(missing)}")


def list_checkpoints(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``step_*.pt`` files of ``folder``, oldest step first (empty if there is no folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [path for _, path in sorted(found)]


def newest_valid_checkpoint(
    folder: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``folder`` that loads, with its state; ``None`` if none does.

    Each unreadable one (truncated, corrupt) is skipped with a ``UserWarning`` naming it.
    """
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path, map_location=map_location)
        except CheckpointError as err:
            warnings.warn(f"skipped: {err}", stacklevel=2)
    return None


def prune_checkpoints(folder: str | os.PathLike[str], keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoints of ``folder``; return the deleted paths."""
    doomed = list_checkpoints(folder)[:-keep] if keep > 0 else list_checkpoints(folder)
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def remove_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files left by saves that were killed before their rename."""
    folder = Path(folder)
    leftovers = [p for p in folder.iterdir() if _TEMPORARY.match(p.name)] if folder.is_dir() else []
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def load_state(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state)`` with an error that lists differing names and shapes.

    Raises:
        ValueError: the state dict comes from another architecture; the message lists up to
            eight differences (missing, unexpected, or ``name: checkpoint shape vs network
            shape``).
    """
    own = module.state_dict()
    problems = [f"missing from the checkpoint: {k}" for k in own if k not in state]
    problems += [f"not in the network: {k}" for k in state if k not in own]
    problems += [
        f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if problems:
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        raise ValueError(
            f"the {what} weights come from another architecture: {'; '.join(problems[:8])}"
            f"{more}. Build the network with the checkpoint's [model] config"
        )
    module.load_state_dict(state)


def load_model(
    path: str | os.PathLike[str], *, ema: bool = True, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, Any, Any]:
    """Rebuild the network of a training checkpoint, ready for ``ind.restore``.

    Args:
        path: a ``step_*.pt`` file written by :func:`indiflow.training.train`, or a weights
            file written by :func:`indiflow.training.export_weights`, or the name of a shipped
            one (``"sr4_photos_cpu"``, see :func:`indiflow.training.shipped_weights`).
        ema: load the EMA weights (the default, as restoration should) or the raw weights.
        map_location: device of the returned network.

    Returns:
        ``(model, noise, config)``: the ``ind.nets.UNet`` in eval mode, the interpolant noise of
        its training (``ind.ConstantNoise``, ``ind.BrownianNoise`` or ``None``; pass it to
        ``ind.restore(..., noise=noise)``) and the resolved :class:`~indiflow.training.Config`.

    Raises:
        ValueError / CheckpointError: see :func:`load_checkpoint`; a checkpoint without config.
    """
    from indiflow.nets import UNet
    from indiflow.training.config import parse_config
    from indiflow.training.export import read_restoration_state

    weights, plain_config = read_restoration_state(path, ema=ema, map_location=map_location)
    config = parse_config(plain_config)
    model = UNet(**config.model)
    load_state(model, weights, "EMA" if ema else "model")
    return model.to(map_location).eval(), config.loss.noise_schedule(), config
