"""The training dataset and the fixed held-out validation batch of a config.

``[data] source = "bundled"``: ``ind.data.SyntheticPairs`` over ``ind.data.bundled_photos
("train")``, degraded on the fly by the config's degradation; validation uses the test photos.
``source = "folders"``: ``ind.data.PairedFolders(gt_dir, lq_dir)``; validation uses
``val_gt_dir`` / ``val_lq_dir``. Both datasets draw every random choice of an item from
``(seed, epoch, index)``, so the data order alone decides the batches, on any number of ranks.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from indiflow.training.sections import Config
from indiflow.training.specs import build_degradation


def check_folder(key: str, folder: str | None) -> Path:
    """``folder`` as a path, or a ``ValueError`` naming the config key and the missing folder."""
    if folder is None or not Path(folder).is_dir():
        raise ValueError(f"data folder {key} = {folder!r} does not exist; fix the path in [data]")
    return Path(folder)


def training_pairs(config: Config) -> Dataset:
    """The training dataset of ``config``: items ``(x, y)`` of shape ``(C, patch, patch)``.

    Raises:
        ValueError: a data folder that does not exist (naming it), or what the dataset raises.
    """
    data, seed = config.data, config.train.seed
    if data.source == "folders":
        from indiflow.data import PairedFolders

        gt, lq = check_folder("data.gt_dir", data.gt_dir), check_folder("data.lq_dir", data.lq_dir)
        return PairedFolders(gt, lq, patch=data.patch, augment=data.augment, seed=seed)
    from indiflow.data import SyntheticPairs, bundled_photos

    degradation = build_degradation(data.degradation, data.noise_sigma)
    return SyntheticPairs(
        bundled_photos("train"),
        degradation,
        patch=data.patch,
        augment=data.augment,
        seed=seed,
        length=data.length,
    )


def validation_batch(config: Config) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The held-out batch ``(x, y)`` of shape ``(photos, C, patch, patch)``; None if disabled.

    Each image is centre-cropped to ``validation.patch`` (top-left corner at
    ``((H - patch) // 2, (W - patch) // 2)``). Synthetic degradations draw from one generator
    seeded with ``validation.seed``, so the batch is the same for every run of the config.

    Raises:
        ValueError: a missing folder, fewer held-out images than ``validation.photos``, or an
            image smaller than ``validation.patch``.
    """
    val, data = config.validation, config.data
    if val.every == 0:
        return None
    if data.source == "folders":
        from indiflow.data import PairedFolders

        gt = check_folder("data.val_gt_dir", data.val_gt_dir)
        lq = check_folder("data.val_lq_dir", data.val_lq_dir)
        folders = PairedFolders(gt, lq, patch=None, augment=False)
        pairs = [folders[i] for i in range(min(val.photos, len(folders)))]
        xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    else:
        from indiflow.data import bundled_photos

        xs, ys = bundled_photos("test")[: val.photos], []
    if len(xs) < val.photos:
        raise ValueError(
            f"validation.photos = {val.photos} but only {len(xs)} held-out images exist; "
            "lower validation.photos"
        )
    x = torch.stack([_centre_crop(image, val.patch) for image in xs])
    if ys:
        return x, torch.stack([_centre_crop(image, val.patch) for image in ys])
    degradation = build_degradation(data.degradation, data.noise_sigma)
    return x, degradation(x, generator=torch.Generator().manual_seed(val.seed))


def _centre_crop(image: torch.Tensor, patch: int) -> torch.Tensor:
    height, width = image.shape[-2:]
    if patch > min(height, width):
        raise ValueError(
            f"validation.patch = {patch} exceeds a held-out image of size (H, W) = "
            f"{(height, width)}; lower validation.patch"
        )
    top, left = (height - patch) // 2, (width - patch) // 2
    return image[..., top : top + patch, left : left + patch]
