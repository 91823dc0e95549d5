"""SyntheticPairs: random clean patches, degraded on the fly by a degradation operator."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from indiflow._checks import check_int
from indiflow.data.augment import crop_and_flip, item_generator
from indiflow.data.io import list_images, read_image

PATCHES_PER_IMAGE = 64
"""Default epoch length of :class:`SyntheticPairs`, per clean image."""

Degradation = Callable[..., torch.Tensor]  # op(x, generator=None) -> y on (B, C, H, W)


def _load(images: Sequence[torch.Tensor] | str | Path) -> tuple[list[str], list[torch.Tensor]]:
    """Return (names for messages, validated CPU float32 images)."""
    if isinstance(images, str | Path):
        paths = list_images(images)
        return [str(p) for p in paths], [read_image(p) for p in paths]
    if isinstance(images, torch.Tensor) or not isinstance(images, Sequence):
        raise TypeError(
            "images must be a list of (C, H, W) tensors or a folder path, got "
            f"{type(images).__name__}; for a batch tensor pass list(batch)"
        )
    if not images:
        raise ValueError("images is empty; pass at least one (C, H, W) image")
    out = []
    for i, image in enumerate(images):
        if not isinstance(image, torch.Tensor) or not image.is_floating_point():
            got = image.dtype if isinstance(image, torch.Tensor) else type(image).__name__
            raise TypeError(f"images[{i}] must be a floating-point tensor, got {got}")
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(
                f"images[{i}] must have shape (C, H, W) with C = 1 or 3, got {tuple(image.shape)}"
            )
        low, high = image.min().item(), image.max().item()
        if not 0.0 <= low <= high <= 1.0:  # also false for NaN
            raise ValueError(f"images[{i}] must lie in [0, 1], got min {low:.6g}, max {high:.6g}")
        out.append(image.detach().to("cpu", torch.float32).contiguous())
    return [f"images[{i}]" for i in range(len(out))], out


class SyntheticPairs(Dataset):
    """Pairs ``(x, y)``: a random clean patch ``x`` and its on-the-fly degradation ``y``.

    Item ``index`` takes clean image ``index % len(images)`` and draws from
    :func:`~indiflow.data.augment.item_generator` ``(seed, epoch, index)``, in this order: a
    uniform ``patch`` x ``patch`` window, one of the eight dihedral transforms (if
    ``augment``), then whatever the degradation draws, as
    ``y = degradation(x[None], generator=g)[0]``. So an item depends on ``(seed, epoch,
    index)`` only: batches are identical for any DataLoader worker count, and ranks of a
    ``DistributedSampler`` see exactly the items of the single-process epoch. Call
    :meth:`set_epoch` before each epoch for fresh patches (with ``persistent_workers=True``
    the workers keep the epoch they were started with).

    All clean images are held in memory as float32 on the CPU (12 bytes per RGB pixel).

    Args:
        images: a list of float ``(C, H, W)`` tensors in [0, 1], all with the same ``C`` in
            {1, 3}, or a folder read with :func:`~indiflow.data.read_image`.
        degradation: ``op(x, generator=None) -> y`` on ``(B, C, H, W)``, returning ``x``'s shape.
        patch: side of the square patches, or None for whole images.
        augment: apply a random dihedral transform to the clean patch.
        seed: base seed of the per-item generators.
        length: items per epoch; default ``PATCHES_PER_IMAGE * len(images)`` (64 per image).

    Raises:
        TypeError: for images that are not a list of float tensors or a path, or a
            degradation that is not callable.
        ValueError: for an empty list or folder, images of the wrong shape, outside [0, 1]
            or with different channel counts, a ``patch`` larger than an image (naming it),
            or a degradation that changes the shape (when an item is drawn).
    """

    def __init__(
        self,
        images: Sequence[torch.Tensor] | str | Path,
        degradation: Degradation,
        patch: int | None = 64,
        augment: bool = True,
        seed: int = 0,
        *,
        length: int | None = None,
    ) -> None:
        if not callable(degradation):
            raise TypeError(
                "degradation must be callable as op(x, generator=None) -> y, got "
                f"{type(degradation).__name__}"
            )
        self.names, self.images = _load(images)
        channels = {image.shape[0] for image in self.images}
        if len(channels) > 1:
            raise ValueError(
                f"images mix channel counts {sorted(channels)}; convert them all to grey or RGB"
            )
        self.degradation = degradation
        self.patch = None if patch is None else check_int("patch", patch, 1)
        for name, image in zip(self.names, self.images, strict=True):
            if self.patch is not None and self.patch > min(image.shape[-2:]):
                raise ValueError(
                    f"patch {self.patch} is larger than image {name} of size (H, W) = "
                    f"{tuple(image.shape[-2:])}; use a patch <= {min(image.shape[-2:])}"
                )
        self.augment = bool(augment)
        self.seed = check_int("seed", seed, 0)
        default = PATCHES_PER_IMAGE * len(self.images)
        self.length = default if length is None else check_int("length", length, 1)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose patches, transforms and degradations the items draw."""
        self.epoch = check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = operator.index(index)  # accepts numpy and tensor integers from samplers
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for an epoch of {self.length} items")
        generator = item_generator(self.seed, self.epoch, index)
        (x,) = crop_and_flip(
            (self.images[index % len(self.images)],), self.patch, self.augment, generator
        )
        y = self.degradation(x[None], generator=generator)
        if not isinstance(y, torch.Tensor) or y.shape != (1, *x.shape):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(
                f"degradation returned {got} for input of shape {(1, *x.shape)}; "
                "it must return a tensor of the input's shape"
            )
        return x, y[0]
