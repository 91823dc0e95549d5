"""The training loop: ``train(config, out_dir=..., resume="auto") -> TrainResult``.

One function, read top to bottom: data, network and optimiser, resume, the loop (loss through
``ind.indi_loss``, AdamW, warm-up + cosine, clipping, EMA), then logging, validation and
checkpoints at their intervals. Single process, or one rank of a ``torchrun`` job (DDP): the
same code, with only rank 0 writing files.

The run folder ``out_dir`` receives ``config.toml`` (the resolved config), ``metrics.csv``,
``step_XXXXXXXX.pt`` checkpoints (the newest ``train.keep``) and ``tensorboard/`` when
TensorBoard is installed. On CPU a run killed at any point and resumed with ``resume="auto"``
ends bit-identical to an uninterrupted run: every random draw of a step is seeded by
``(train.seed, step)`` or by ``(seed, epoch, index)`` of the data, and the checkpoint holds
everything else (weights, EMA, optimiser, schedule, global random states, data position).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from indiflow.training.batches import training_pairs, validation_batch
from indiflow.training.checkpoint import (
    checkpoint_path,
    prune_checkpoints,
    save_checkpoint,
    training_state,
)
from indiflow.training.config import config_to_dict, config_to_toml, with_model
from indiflow.training.distributed import (
    DistributedContext,
    GlobalBatchSampler,
    setup_distributed,
)
from indiflow.training.ema import EMA
from indiflow.training.loss import NonFiniteWatch, shard_loss
from indiflow.training.metrics_log import MetricsLog, progress_bar
from indiflow.training.resume import (
    find_resume,
    rank_rng,
    restore_training_state,
    warn_config_changes,
)
from indiflow.training.rng import capture_rng, restore_rng, seed_everything, step_seed
from indiflow.training.schedule import warmup_cosine
from indiflow.training.sections import Config
from indiflow.training.validation import validate, validation_columns

StepHook = Callable[[int, nn.Module], None]


@dataclass(frozen=True)
class TrainResult:
    """What a finished :func:`train` returns (on every rank).

    Attributes:
        out_dir: the run folder.
        step: the last optimiser step taken.
        checkpoint: the newest checkpoint written (or resumed from).
        resumed_from: the checkpoint the run started from, or ``None`` for a fresh start.
        loss: mean training loss over the last logging interval (``None`` if none was logged).
        validation: the last validation metrics (``val_psnr_1``, ``val_psnr_N``; may be empty).
    """

    out_dir: Path
    step: int
    checkpoint: Path | None
    resumed_from: Path | None
    loss: float | None = None
    validation: dict[str, float] = field(default_factory=dict)


def train(
    config: Config,
    *,
    out_dir: str | os.PathLike[str],
    resume: str | os.PathLike[str] = "auto",
    on_step: StepHook | None = None,
) -> TrainResult:
    """Train ``ind.nets.UNet(**config.model)`` with the InDI loss; see the module docstring.

    Args:
        config: from :func:`~indiflow.training.load_config`.
        out_dir: the run folder (created if needed).
        resume: ``"auto"`` (the newest valid checkpoint of ``out_dir``, or a fresh start),
            ``"never"`` (a fresh start; refused if ``out_dir`` already holds checkpoints), or
            the path of a checkpoint file or of a folder holding checkpoints.
        on_step: optional ``on_step(step, model)`` called on every rank after each optimiser
            step and EMA update, with the unwrapped network (for monitoring and tests).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TypeError: ``config`` is not a ``Config``.
        ValueError: a bad ``resume``, a global batch not divisible by the number of ranks,
            fp16 without CUDA, a missing data folder, a dataset smaller than the batch.
        CheckpointError: ``resume`` names a truncated or foreign checkpoint.
        RuntimeError: the loss became NaN or infinite (the message names the step and the
            last good checkpoint, which is kept).
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be an indiflow.training.Config, got {type(config).__name__}")
    ctx = setup_distributed(config.train.device)
    try:
        return _train(config, Path(out_dir), resume, on_step, ctx)
    finally:
        ctx.close()


def _train(
    config: Config,
    out_dir: Path,
    resume: str | os.PathLike[str],
    on_step: StepHook | None,
    ctx: DistributedContext,
) -> TrainResult:
    cfg = config.train
    per_rank = ctx.per_rank_batch(cfg.batch)
    if cfg.autocast == "fp16" and ctx.device.type != "cuda":
        raise ValueError('train.autocast = "fp16" needs a CUDA device; use "bf16" on CPU')

    # Data: the training pairs and, on rank 0, the fixed held-out batch.
    dataset = training_pairs(config)
    batches_per_epoch = len(dataset) // cfg.batch
    if batches_per_epoch == 0:
        raise ValueError(
            f"the training set has {len(dataset)} pairs, fewer than train.batch = {cfg.batch}; "
            "lower train.batch or add data (data.length for bundled photos)"
        )
    held_out = validation_batch(config) if ctx.is_main else None

    # Network, EMA, optimiser, schedule: seeded, so every rank starts from the same weights.
    from indiflow.nets import UNet

    seed_everything(cfg.seed)
    model = UNet(**config.model).to(ctx.device)
    config = with_model(config, model.to_config())  # every UNet argument, defaults included
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = EMA(model, cfg.ema)
    parameters = list(model.parameters())  # listed once: walking the modules costs every step
    optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup, cfg.steps))
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.autocast == "fp16")
    seed_everything(cfg.seed + ctx.rank)

    # Resume: every rank reads the same checkpoint.
    found = find_resume(out_dir, resume, ctx)
    step, epoch, position, resumed_from = 0, 0, 0, None
    if found is not None:
        resumed_from, state = found
        if ctx.is_main:
            warn_config_changes(state.get("config"), config_to_dict(config), resumed_from)
        restore_training_state(state, model, ema, optimizer, scheduler, scaler)
        rng = state["rng"]
        restore_rng(rank_rng(rng, ctx.rank, cfg.seed))
        step, epoch, position = state["step"], rng["data"]["epoch"], rng["data"]["batch"]
    last_checkpoint = resumed_from

    net: nn.Module = model
    if ctx.distributed:
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=device_ids)
    if cfg.compile:
        net = torch.compile(net)

    columns = ["loss", "lr", "grad_norm", "steps_per_s"]
    if held_out is not None:
        columns += validation_columns(config.validation.steps)
        held_out = tuple(t.to(ctx.device) for t in held_out)
    log = bar = None
    if ctx.is_main:
        (out_dir / "config.toml").write_text(config_to_toml(config), encoding="utf-8")
        log = MetricsLog(out_dir, columns, start_step=step, tensorboard=cfg.tensorboard)
        bar = progress_bar(cfg.steps, step) if cfg.progress else None

    noise, time_law = config.loss.noise_schedule(), config.loss.time_law()
    autocast = torch.autocast(
        ctx.device.type,
        dtype=torch.float16 if cfg.autocast == "fp16" else torch.bfloat16,
        enabled=cfg.autocast != "none",
    )
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    generator = torch.Generator(device=ctx.device)
    sampler = GlobalBatchSampler(dataset, ctx, cfg.seed)
    loss_sum = torch.zeros((), device=ctx.device)
    non_finite = NonFiniteWatch(ctx)
    logged_loss, metrics, since, tick = None, {}, 0, time.perf_counter()

    while step < cfg.steps:
        # One epoch (or its remainder): the permutation of `epoch`, from batch `position` on.
        sampler.set_epoch(epoch, skip=position * per_rank)
        dataset.set_epoch(epoch)
        loader = DataLoader(
            dataset,
            batch_size=per_rank,
            sampler=sampler,
            num_workers=config.data.workers,
            drop_last=True,
            pin_memory=ctx.device.type == "cuda",
            generator=torch.Generator().manual_seed(step_seed(cfg.seed, epoch)),
        )
        for x, y in loader:
            x = x.to(ctx.device, non_blocking=True, memory_format=memory_format)
            y = y.to(ctx.device, non_blocking=True, memory_format=memory_format)
            generator.manual_seed(step_seed(cfg.seed, step))
            with autocast:
                loss = shard_loss(
                    net,
                    x,
                    y,
                    noise=noise,
                    time_law=time_law,
                    norm=config.loss.norm,
                    generator=generator,
                    rank=ctx.rank,
                    world_size=ctx.world_size,
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            grad_norm = None
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                grad_norm = nn.utils.clip_grad_norm_(parameters, cfg.grad_clip)
            lr = optimizer.param_groups[0]["lr"]
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            ema.update(step)
            step, position, since = step + 1, position + 1, since + 1
            loss_sum += loss.detach().float()
            non_finite.record(loss, step)
            if on_step is not None:
                on_step(step, model)
            if bar is not None:
                bar.update(1)
            last = step == cfg.steps

            row: dict[str, float] = {}
            if step % cfg.log_every == 0 or last:
                non_finite.check(last_checkpoint)
                logged_loss = float(ctx.all_reduce(loss_sum, "sum")) / (since * ctx.world_size)
                now = time.perf_counter()
                row = {"loss": logged_loss, "lr": lr, "steps_per_s": since / (now - tick)}
                if grad_norm is not None:
                    row["grad_norm"] = float(grad_norm)
                loss_sum.zero_()
                since, tick = 0, now
                if bar is not None:
                    bar.set_postfix(loss=f"{logged_loss:.4g}", refresh=False)
            every = config.validation.every
            if every > 0 and (step % every == 0 or last):
                if held_out is not None:  # rank 0 validates while the others wait
                    metrics = validate(
                        ema.module,
                        *held_out,
                        noise=noise,
                        steps=config.validation.steps,
                        seed=config.validation.seed,
                    )
                    row |= metrics
                ctx.barrier()
            if row and log is not None:
                log.write(step, row)

            if step % cfg.checkpoint_every == 0 or last:
                non_finite.check(last_checkpoint)  # never save weights that went NaN
                ranks_rng = ctx.gather_objects(capture_rng())
                if ctx.is_main:
                    rng = ranks_rng[0] | {
                        "data": {"epoch": epoch, "batch": position},
                        "other_ranks": ranks_rng[1:],
                    }
                    state = training_state(step, model, ema, optimizer, scheduler, scaler, rng)
                    state["config"] = config_to_dict(config)
                    save_checkpoint(state, checkpoint_path(out_dir, step))
                    prune_checkpoints(out_dir, cfg.keep)
                last_checkpoint = checkpoint_path(out_dir, step)
                ctx.barrier()
            if last:
                break
        else:
            epoch, position = epoch + 1, 0

    if bar is not None:
        bar.close()
    if log is not None:
        log.close()
    return TrainResult(out_dir, step, last_checkpoint, resumed_from, logged_loss, metrics)
