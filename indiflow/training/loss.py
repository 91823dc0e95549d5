"""The InDI loss of one rank's share of a global batch, with draws independent of the rank count.

Every rank draws the times ``t`` and the interpolant noise ``eta`` of the whole global batch
from one generator seeded by ``(seed, step)``, and keeps the rows of its own samples: rank
``r`` of ``K`` holds global positions ``r, r + K, ...`` (the order of
:class:`~indiflow.training.distributed.GlobalBatchSampler`). So each sample sees the same
``t`` and ``eta`` for any ``K``, and the averaged gradient equals the single-process one.

The loss itself is ``ind.indi_loss`` with these pre-drawn times and with the noise folded into
the degraded image: ``x_t = (1 - t) x + t (y + eps_t eta)`` is the noisy interpolant
``(1 - t) x + t y + t eps_t eta`` of :class:`~indiflow.Interpolant`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from indiflow.interpolant import BrownianNoise, ConstantNoise, Interpolant
from indiflow.losses import Norm, indi_loss
from indiflow.time_laws import TimeLaw
from indiflow.training.distributed import DistributedContext


@dataclass(frozen=True)
class GivenTimes:
    """A time law that returns times drawn beforehand (the rank's rows of the global draw)."""

    t: torch.Tensor

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        if n != self.t.shape[0]:
            raise ValueError(f"{self.t.shape[0]} times were drawn for a batch of {n}")
        return self.t.to(dtype=dtype, device=device)


def shard_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    noise: ConstantNoise | BrownianNoise | None,
    time_law: TimeLaw,
    norm: Norm,
    generator: torch.Generator,
    rank: int,
    world_size: int,
) -> torch.Tensor:
    """``ind.indi_loss`` on this rank's ``(x, y)``, with the global batch's draws.

    Args:
        model: the regressor ``F(x_t, t)``.
        x, y: this rank's clean and degraded images, ``(B / K, C, H, W)``.
        noise: the interpolant noise schedule, or ``None``.
        time_law: the law of ``t``.
        norm: ``"l1"`` or ``"l2"``.
        generator: seeded for this step, on ``x``'s device; draws ``t`` (``B`` values) first,
            then ``eta`` (``(B, C, H, W)``, only with noise).
        rank, world_size: this rank's place among ``K = world_size``.

    Returns:
        The mean loss over this rank's samples (DDP then averages the gradients over ranks).
    """
    rows = slice(rank, None, world_size)
    total = x.shape[0] * world_size
    t = time_law.sample(total, generator, dtype=x.dtype, device=x.device)[rows]
    if noise is not None:
        eta = torch.randn(
            (total, *x.shape[1:]), generator=generator, dtype=x.dtype, device=x.device
        )[rows]
        y = y + noise.eps_at(t).view(-1, *[1] * (y.dim() - 1)) * eta
    return indi_loss(model, x, y, interpolant=Interpolant(), time_law=GivenTimes(t), norm=norm)


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message names the step and the checkpoint
    kept (the run resumes from it after a change of ``train.lr`` or ``train.grad_clip``)."""


class NonFiniteWatch:
    """The first step whose loss was NaN or infinite, tracked on the device.

    :meth:`record` costs no host-device synchronisation; :meth:`check` synchronises once (and
    takes the minimum over ranks), so the trainer calls it only when it logs or saves.
    """

    _NONE = 2**62

    def __init__(self, ctx: DistributedContext) -> None:
        self.ctx = ctx
        self.first = torch.full((), self._NONE, dtype=torch.int64, device=ctx.device)

    def record(self, loss: torch.Tensor, step: int) -> None:
        bad = torch.where(torch.isfinite(loss.detach()), self._NONE, step)
        torch.minimum(self.first, bad, out=self.first)

    def check(self, last_checkpoint: object) -> None:
        """Raise ``TrainingDiverged`` naming the step and ``last_checkpoint`` if a loss went bad."""
        step = int(self.ctx.all_reduce(self.first.clone(), "min"))
        if step != self._NONE:
            kept = last_checkpoint if last_checkpoint is not None else "none was written yet"
            raise TrainingDiverged(
                f"the training loss became NaN or infinite at step {step}; training stopped. "
                f"The last good checkpoint is kept: {kept}. Lower train.lr, set train.grad_clip "
                "or check the data, then resume"
            )
