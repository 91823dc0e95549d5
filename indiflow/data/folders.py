"""PairedFolders: a dataset of (clean, degraded) image pairs stored as two folders of files."""

from __future__ import annotations

import operator
from pathlib import Path

import torch
from torch.utils.data import Dataset

from indiflow._checks import check_int
from indiflow.data.augment import crop_and_flip, item_generator
from indiflow.data.io import image_size, images_by_stem, read_image


class PairedFolders(Dataset):
    """Pairs ``(x, y)`` read from a folder of clean images and a folder of degraded ones.

    Files are matched by name without suffix (``gt/0001.png`` pairs with ``lq/0001.png`` or
    ``lq/0001.jpg``), in sorted order of the clean names. Every pair must have the same height
    and width (checked from the file headers when the dataset is built) and the same channel
    count (checked when read). Nothing is resized or skipped.

    Item ``index`` is ``(x, y)``: two float32 ``(C, H, W)`` tensors in [0, 1] (see
    :func:`~indiflow.data.read_image`). If ``patch`` is set, the same random ``patch`` x
    ``patch`` window is cut from both; if ``augment``, the same random one of the eight
    dihedral transforms (:func:`~indiflow.data.augment.dihedral`) is applied to both. Both
    draws come from :func:`~indiflow.data.augment.item_generator` ``(seed, epoch, index)``, so
    items do not depend on DataLoader worker count or rank; call :meth:`set_epoch` before each
    epoch for fresh crops (with ``persistent_workers=True`` the workers keep the epoch they
    were started with).

    Args:
        gt_dir: folder of clean (ground-truth) images.
        lq_dir: folder of degraded (low-quality) images.
        patch: side of the square random crop, or None for whole images.
        augment: apply a random dihedral transform.
        seed: base seed of the per-item generators.

    Raises:
        ValueError: for a missing or empty folder, an image without a partner, two images with
            the same name in one folder, a size mismatch (naming the file and both sizes), an
            unreadable file, or a ``patch`` larger than an image (naming it).
    """

    def __init__(
        self,
        gt_dir: str | Path,
        lq_dir: str | Path,
        patch: int | None = None,
        augment: bool = True,
        *,
        seed: int = 0,
    ) -> None:
        self.patch = None if patch is None else check_int("patch", patch, 1)
        self.augment = bool(augment)
        self.seed = check_int("seed", seed, 0)
        self.epoch = 0
        gt, lq = images_by_stem(gt_dir), images_by_stem(lq_dir)
        for stem, path in gt.items():
            if stem not in lq:
                raise ValueError(
                    f"clean image {str(path)!r} has no degraded partner named {stem}.* in "
                    f"{str(lq_dir)!r}"
                )
        for stem, path in lq.items():
            if stem not in gt:
                raise ValueError(
                    f"degraded image {str(path)!r} has no clean partner named {stem}.* in "
                    f"{str(gt_dir)!r}"
                )
        self.pairs: list[tuple[Path, Path]] = [(gt[s], lq[s]) for s in sorted(gt)]
        for gt_path, lq_path in self.pairs:
            gt_size, lq_size = image_size(gt_path), image_size(lq_path)
            if gt_size != lq_size:
                raise ValueError(
                    f"image {lq_path.name!r} has size (H, W) = {lq_size} in {str(lq_dir)!r} but "
                    f"{gt_size} in {str(gt_dir)!r}; pairs must have the same size (bring "
                    "low-resolution images to the clean size first)"
                )
            if self.patch is not None and self.patch > min(gt_size):
                raise ValueError(
                    f"patch {self.patch} is larger than image {str(gt_path)!r} of size "
                    f"(H, W) = {gt_size}; use a patch <= {min(gt_size)}"
                )

    @property
    def names(self) -> list[str]:
        """The clean file names, in item order."""
        return [gt.name for gt, _ in self.pairs]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops and transforms the items draw."""
        self.epoch = check_int("epoch", epoch, 0)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = operator.index(index)  # accepts numpy and tensor integers from samplers
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for {len(self.pairs)} pairs")
        gt_path, lq_path = self.pairs[index]
        x, y = read_image(gt_path), read_image(lq_path)
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"image {gt_path.name!r} has {x.shape[0]} channel(s) but its partner "
                f"{str(lq_path)!r} has {y.shape[0]}; save both as grey or both as RGB"
            )
        generator = item_generator(self.seed, self.epoch, index)
        x, y = crop_and_flip((x, y), self.patch, self.augment, generator)
        return x, y
