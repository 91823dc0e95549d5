"""The sections of an experiment configuration, as frozen dataclasses.

Each class docstring lists its keys (the field annotations give types and defaults);
``docs/training.md`` repeats them as tables. Values are checked here (ranges, combinations);
types are checked by the parser in :mod:`indiflow.training.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from indiflow.interpolant import BrownianNoise, ConstantNoise
from indiflow.time_laws import MixtureTime, PowerTime, TimeLaw, UniformTime


def _at_least(where: str, value: int | float, minimum: int | float) -> None:
    if value < minimum:
        raise ValueError(f"config key {where} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where the training pairs come from.

    Attributes:
        source: ``"bundled"`` (the bundled photographs, degraded on the fly by ``degradation``)
            or ``"folders"`` (pairs read from ``gt_dir`` / ``lq_dir``).
        gt_dir: folder of clean images (``source = "folders"``).
        lq_dir: folder of degraded images with the same file names (``source = "folders"``).
        val_gt_dir: clean validation images (``source = "folders"``; needed when validating).
        val_lq_dir: degraded validation images (``source = "folders"``).
        degradation: the synthetic degradation (``source = "bundled"``): operators of
            :mod:`indiflow.degradations` built from tables such as
            ``{kind = "bicubic_sr", scale = 4}`` (see :mod:`indiflow.training.specs`); an array
            is applied in order.
        noise_sigma: std of additive Gaussian noise after ``degradation`` (0: none).
        patch: side of the square random crops used for training.
        length: training pairs per epoch for ``source = "bundled"`` (default: 64 per photo).
        augment: random flips and 90-degree rotations of the training crops.
        workers: ``DataLoader`` worker processes per rank (0: load in the training process).
    """

    source: Literal["bundled", "folders"] = "bundled"
    gt_dir: str | None = None
    lq_dir: str | None = None
    val_gt_dir: str | None = None
    val_lq_dir: str | None = None
    degradation: tuple[Any, ...] = ()
    noise_sigma: float = 0.0
    patch: int = 64
    length: int | None = None
    augment: bool = True
    workers: int = 0

    def __post_init__(self) -> None:
        _at_least("data.noise_sigma", self.noise_sigma, 0)
        _at_least("data.patch", self.patch, 1)
        _at_least("data.workers", self.workers, 0)
        if self.length is not None:
            _at_least("data.length", self.length, 1)
        if self.source == "bundled" and not self.degradation and self.noise_sigma == 0:
            raise ValueError(
                'data.source = "bundled" needs a degradation, e.g. '
                'degradation = { kind = "bicubic_sr", scale = 4 }, or data.noise_sigma > 0'
            )
        if self.source == "folders" and (self.gt_dir is None or self.lq_dir is None):
            raise ValueError('data.source = "folders" needs both data.gt_dir and data.lq_dir')
        if (self.val_gt_dir is None) != (self.val_lq_dir is None):
            raise ValueError("give both data.val_gt_dir and data.val_lq_dir, or neither")


@dataclass(frozen=True)
class TrainConfig:
    """``[train]``: the optimisation.

    Attributes:
        steps: total optimiser steps.
        batch: global batch (pairs per step over all ranks); divisible by the number of ranks.
        lr: peak AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        warmup: steps of linear warm-up from 0 to ``lr``; a cosine decay to 0 follows.
        grad_clip: maximum global gradient norm (0: no clipping).
        ema: decay of the exponential moving average of the weights, capped at
            ``(1 + n) / (10 + n)`` at step ``n`` (warm-up; 0: the EMA is the weights).
        checkpoint_every: steps between checkpoints (one is also written at the last step).
        keep: how many of the newest checkpoints to keep.
        log_every: steps between rows of ``metrics.csv``.
        seed: seed of the weights, the data order and every draw of the loss.
        autocast: ``"none"``, ``"bf16"`` (CPU or GPU) or ``"fp16"`` (GPU, with a gradient scaler).
        channels_last: NHWC memory layout for the network and batches.
        compile: wrap the network in ``torch.compile``.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        progress: a tqdm progress bar on rank 0 (when tqdm is installed).
        tensorboard: also log to TensorBoard in the run folder (when it is installed).
    """

    steps: int = 1000
    batch: int = 16
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup: int = 0
    grad_clip: float = 1.0
    ema: float = 0.999
    checkpoint_every: int = 1000
    keep: int = 3
    log_every: int = 50
    seed: int = 0
    autocast: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "checkpoint_every", "keep", "log_every"):
            _at_least(f"train.{name}", getattr(self, name), 1)
        for name in ("weight_decay", "warmup", "grad_clip", "seed"):
            _at_least(f"train.{name}", getattr(self, name), 0)
        if self.lr <= 0:
            raise ValueError(f"config key train.lr must be > 0, got {self.lr}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"config key train.ema must lie in [0, 1), got {self.ema}")


@dataclass(frozen=True)
class LossConfig:
    """``[loss]``: the InDI loss (``ind.indi_loss``) and the interpolant noise.

    Attributes:
        noise: interpolant noise, ``"none"``, ``"constant"`` (``ind.ConstantNoise(eps)``) or
            ``"brownian"`` (``ind.BrownianNoise(eps)``); restoration reuses it.
        eps: the noise level (``eps`` or ``eps0``); must be > 0 with noise, 0 without.
        time: law of ``t``: ``"uniform"`` (``UniformTime``), ``"mixture"``
            (``MixtureTime(time_a)``) or ``"power"`` (``PowerTime(time_k)``).
        time_a: weight ``a`` of the point mass at ``t = 1`` (``time = "mixture"`` only).
        time_k: exponent ``k`` of ``p(t) ∝ t^k`` (``time = "power"`` only).
        norm: ``"l2"`` (squared; minimiser ``E[x | x_t]``) or ``"l1"``.
    """

    noise: Literal["none", "constant", "brownian"] = "none"
    eps: float = 0.0
    time: Literal["uniform", "mixture", "power"] = "uniform"
    time_a: float | None = None
    time_k: float | None = None
    norm: Literal["l1", "l2"] = "l2"

    def __post_init__(self) -> None:
        if self.noise == "none" and self.eps != 0:
            raise ValueError(f'loss.eps = {self.eps} needs loss.noise = "constant" or "brownian"')
        if self.noise != "none" and self.eps <= 0:
            raise ValueError(f"loss.noise = {self.noise!r} needs loss.eps > 0, got {self.eps}")
        for key, law in (("time_a", "mixture"), ("time_k", "power")):
            given = getattr(self, key) is not None
            if given != (self.time == law):
                raise ValueError(
                    f'loss.{key} is used by, and needed for, loss.time = "{law}" only; '
                    f"got time = {self.time!r} and {key} = {getattr(self, key)}"
                )

    def noise_schedule(self) -> ConstantNoise | BrownianNoise | None:
        """The interpolant noise object of this section (``None`` without noise)."""
        if self.noise == "constant":
            return ConstantNoise(self.eps)
        if self.noise == "brownian":
            return BrownianNoise(self.eps)
        return None

    def time_law(self) -> TimeLaw:
        """The time-law object of this section."""
        if self.time == "mixture":
            return MixtureTime(self.time_a)
        if self.time == "power":
            return PowerTime(self.time_k)
        return UniformTime()


@dataclass(frozen=True)
class ValidationConfig:
    """``[validation]``: PSNR of the EMA weights on a fixed held-out batch.

    Attributes:
        every: steps between validations (0: never).
        steps: ``N`` of the second measurement (``N`` Euler steps on ``TimeGrid.uniform(N)``;
            the first is one step).
        photos: number of held-out images in the batch.
        patch: side of the centre crop of each held-out image.
        seed: seed of the start noise of the restorations (with interpolant noise).
    """

    every: int = 1000
    steps: int = 20
    photos: int = 4
    patch: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        _at_least("validation.every", self.every, 0)
        for name in ("steps", "photos", "patch"):
            _at_least(f"validation.{name}", getattr(self, name), 1)


@dataclass(frozen=True)
class Config:
    """One experiment: the five sections. ``model`` holds the ``ind.nets.UNet`` kwargs."""

    data: DataConfig
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    def __post_init__(self) -> None:
        if (
            self.validation.every > 0
            and self.data.source == "folders"
            and self.data.val_gt_dir is None
        ):
            raise ValueError(
                "validation needs held-out pairs: set data.val_gt_dir and data.val_lq_dir, "
                "or validation.every = 0"
            )
