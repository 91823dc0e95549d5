"""torchrun / DDP glue: the process's place in the job, collectives, and the data order.

Under ``torchrun`` the environment holds ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (never a
``--local_rank`` flag) and the rendezvous address; :func:`setup_distributed` then joins the
process group (gloo on CPU, NCCL on CUDA, one GPU per local rank). Without those variables the
run is a single process and every collective is a no-op.

Data order: :class:`GlobalBatchSampler` is a ``DistributedSampler`` whose rank ``r`` takes
positions ``r, r + K, r + 2K, ...`` of the epoch's permutation. With a per-rank batch of
``B / K``, batch ``i`` of all ranks together is exactly positions ``[i B, (i + 1) B)``: the
global batch of a single-process run with batch ``B``, whatever ``K``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: rank, number of ranks, local rank, and its device.

    Attributes:
        rank: global rank (0 writes checkpoints, logs and the progress bar).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this rank computes on.
        owns_group: whether :func:`setup_distributed` created the process group (and so
            destroys it in :meth:`close`).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the one that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def per_rank_batch(self, global_batch: int) -> int:
        """``global_batch / world_size``, or a ``ValueError`` if it does not divide evenly."""
        if global_batch % self.world_size:
            raise ValueError(
                f"train.batch = {global_batch} (the global batch) must be divisible by the "
                f"{self.world_size} ranks; change train.batch or --nproc_per_node"
            )
        return global_batch // self.world_size

    def barrier(self) -> None:
        """Wait for every rank (no-op for a single process)."""
        if self.distributed:
            dist.barrier()

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce ``tensor`` in place over the ranks with ``"sum"``, ``"min"`` or ``"max"``."""
        if self.distributed:
            ops = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}
            dist.all_reduce(tensor, op=ops[op])
        return tensor

    def gather_objects(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Read the torchrun environment, pick the device, and join the process group if needed.

    Args:
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.

    Raises:
        ValueError: an unknown device, ``"cuda"`` without CUDA, or a partial or non-integer
            ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` environment.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device = 'cuda' but CUDA is not available; use 'cpu' or 'auto'")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    rank, world_size, local_rank = _read_environment()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    chosen = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            init_method="env://",
            rank=rank,
            world_size=world_size,
        )
        owns = True
    return DistributedContext(rank, world_size, local_rank, chosen, owns)


def _read_environment() -> tuple[int, int, int]:
    present = [name for name in _ENV if name in os.environ]
    if not present:
        return 0, 1, 0
    if len(present) != len(_ENV):
        missing = sorted(set(_ENV) - set(present))
        raise ValueError(
            f"the torchrun environment is incomplete: {', '.join(present)} set but "
            f"{', '.join(missing)} missing; launch with torchrun or unset them"
        )
    try:
        rank, world_size, local_rank = (int(os.environ[name]) for name in _ENV)
    except ValueError as err:
        values = {name: os.environ[name] for name in _ENV}
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers, got {values}") from err
    if not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(
            f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world_size}, "
            f"LOCAL_RANK={local_rank}"
        )
    return rank, world_size, local_rank


class GlobalBatchSampler(DistributedSampler):
    """A shuffling ``DistributedSampler`` that can start an epoch part-way (for resuming).

    The permutation of epoch ``e`` is ``torch.randperm`` seeded with ``seed + e``; incomplete
    global batches at the end of an epoch are dropped (``drop_last``), so every rank has the
    same number of batches. :meth:`set_epoch` takes the number of this rank's samples already
    consumed in that epoch.

    Args:
        dataset: the training pairs.
        ctx: this process's place in the job.
        seed: seed of the permutations (the same on every rank).
    """

    def __init__(self, dataset: Dataset, ctx: DistributedContext, seed: int) -> None:
        super().__init__(
            dataset,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select epoch ``epoch`` and skip its first ``skip`` samples of this rank."""
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return self.num_samples - self.skip
