"""Image files of the console script: pairing folders by name, planning outputs, batching.

Problems are reported naming the files: a missing partner, an existing output or a different
size (read from the file headers) before any image is computed, a different channel count when
the image is read. Nothing is silently skipped, resized or overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

MAX_NAMED = 5  # files named in an error message before "and N more"


def names_listed(names: list[str]) -> str:
    """Up to ``MAX_NAMED`` names joined by commas, then "and N more"."""
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def plan_outputs(inputs: list[Path], output: Path, overwrite: bool) -> list[Path]:
    """Output paths ``output / (input stem + ".png")``, one per input.

    Raises:
        ValueError: if two inputs share a stem, or if outputs exist and ``overwrite`` is false.
    """
    outputs = [output / f"{path.stem}.png" for path in inputs]
    first: dict[Path, Path] = {}
    for source, target in zip(inputs, outputs, strict=True):
        if target in first:
            raise ValueError(
                f"{first[target].name} and {source.name} would both be written to {target}; "
                "rename one of them"
            )
        first[target] = source
    existing = [path.name for path in outputs if path.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"{len(existing)} output file(s) exist already in {output}: {names_listed(existing)}; "
            "pass --overwrite to replace them or choose another --output"
        )
    return outputs


def list_inputs(path: Path) -> list[Path]:
    """The image files of ``--input``: the file itself, or the images of the folder."""
    from indiflow.data.io import IMAGE_SUFFIXES, list_images

    if path.is_dir():
        return list_images(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(
            f"--input {str(path)!r} is not an image file (suffixes {', '.join(IMAGE_SUFFIXES)})"
        )
    return [path]


def batches_by_size(paths: list[Path], batch: int) -> Iterator[list[int]]:
    """Indices into ``paths`` in batches of at most ``batch`` images of one size, in name order
    within each size, sizes in order of first appearance."""
    from indiflow.data.io import image_size

    groups: dict[tuple[int, int], list[int]] = {}
    for index, path in enumerate(paths):
        groups.setdefault(image_size(path), []).append(index)
    for indices in groups.values():
        for start in range(0, len(indices), batch):
            yield indices[start : start + batch]


def read_batch(paths: list[Path], channels: int, checkpoint: Path) -> torch.Tensor:
    """The images of ``paths`` stacked into ``(B, C, H, W)``; ValueError naming a file whose
    channel count is not the network's ``channels``."""
    from indiflow.data.io import read_image

    images = []
    for path in paths:
        image = read_image(path)
        if image.shape[0] != channels:
            raise ValueError(
                f"{path} has {image.shape[0]} channel(s) but the network of {checkpoint} takes "
                f"{channels}; convert the image ({'RGB' if channels == 3 else 'grey'})"
            )
        images.append(image)
    return torch.stack(images)


def pair_images(gt_dir: Path, pred_dir: Path) -> list[tuple[Path, Path]]:
    """``(gt, pred)`` paths matched by file name without extension, in name order.

    Raises:
        ValueError: naming the files of either folder that have no partner, or a folder with
            two images of one name.
    """
    from indiflow.data.io import images_by_stem

    gt = images_by_stem(gt_dir, "--gt folder")
    pred = images_by_stem(pred_dir, "--pred folder")
    for mine, theirs, folder, other in ((pred, gt, pred_dir, gt_dir), (gt, pred, gt_dir, pred_dir)):
        unmatched = [mine[stem].name for stem in sorted(mine) if stem not in theirs]
        if unmatched:
            raise ValueError(
                f"{len(unmatched)} image(s) of {folder} have no partner of the same name in "
                f"{other}: {names_listed(unmatched)}"
            )
    return [(gt[stem], pred[stem]) for stem in sorted(gt)]


def check_sizes(pairs: list[tuple[Path, Path]]) -> None:
    """Check from the file headers that every ``(gt, pred)`` pair has one height and width.

    Raises:
        ValueError: naming the first prediction whose size differs from its ground truth's.
    """
    from indiflow.data.io import image_size

    for gt, pred in pairs:
        (gh, gw), (ph, pw) = image_size(gt), image_size(pred)
        if (gh, gw) != (ph, pw):
            raise ValueError(
                f"{pred} is {ph}x{pw} (H x W) but its ground truth {gt} is {gh}x{gw}; "
                "restore at the ground-truth size"
            )
