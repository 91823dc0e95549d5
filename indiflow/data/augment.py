"""Per-item random streams, paired random crops and the eight dihedral transforms.

Every random choice of a dataset item comes from a generator seeded by ``(seed, epoch,
index)`` alone, so an item is the same whichever DataLoader worker, process or rank draws it.
"""

from __future__ import annotations

import numpy as np
import torch

from indiflow._checks import check_int

DIHEDRAL_COUNT = 8


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator for one dataset item, independent of worker count and draw order.

    Definition: the generator's seed is the first 64-bit word that numpy's
    ``SeedSequence([seed, epoch, index])`` generates (a hash that spreads nearby triples apart,
    so neighbouring indices or epochs give unrelated streams).

    Raises:
        TypeError, ValueError: unless all three are ints >= 0.
    """
    entropy = [
        check_int(name, v, 0) for name, v in (("seed", seed), ("epoch", epoch), ("index", index))
    ]
    word = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(word))


def random_crop_box(
    height: int, width: int, patch: int, generator: torch.Generator
) -> tuple[int, int]:
    """Return ``(top, left)`` of a ``patch`` x ``patch`` window, uniform over valid positions.

    Draw order: ``top`` then ``left``, each one ``torch.randint`` call on ``generator``.
    The caller checks ``patch <= min(height, width)``.
    """
    top = int(torch.randint(height - patch + 1, (1,), generator=generator))
    left = int(torch.randint(width - patch + 1, (1,), generator=generator))
    return top, left


def random_dihedral(generator: torch.Generator) -> int:
    """Draw one of the eight dihedral transforms, uniformly: an int in ``0..7``."""
    return int(torch.randint(DIHEDRAL_COUNT, (1,), generator=generator))


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Apply dihedral transform ``k`` to the last two dimensions of ``x``.

    Definition: rotate by ``90 * (k % 4)`` degrees counter-clockwise (``torch.rot90`` on
    dims ``(-2, -1)``), then, if ``k >= 4``, flip left-right. ``k = 0`` is the identity;
    the eight values give the eight symmetries of the square.

    Raises:
        ValueError: if ``k`` is not in ``0..7`` or ``x`` has fewer than two dimensions.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < DIHEDRAL_COUNT:
        raise ValueError(f"dihedral index k must be an int in 0..7, got {k!r}")
    if x.dim() < 2:
        raise ValueError(
            f"dihedral needs a tensor with >= 2 dimensions, got shape {tuple(x.shape)}"
        )
    out = torch.rot90(x, k % 4, dims=(-2, -1))
    return out.flip(-1) if k >= 4 else out


def crop_and_flip(
    images: tuple[torch.Tensor, ...], patch: int | None, augment: bool, generator: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """Cut the same random window from each image and apply the same random dihedral transform.

    Draw order on ``generator``: the crop (:func:`random_crop_box`, only if ``patch`` is not
    None), then the transform (:func:`random_dihedral`, only if ``augment``). All images share
    the size of the first; the caller checks that ``patch`` fits. Results are new contiguous
    tensors that share no memory with the inputs.
    """
    height, width = images[0].shape[-2:]
    if patch is not None:
        top, left = random_crop_box(height, width, patch, generator)
        images = tuple(im[..., top : top + patch, left : left + patch] for im in images)
    if augment:
        k = random_dihedral(generator)
        images = tuple(dihedral(im, k) for im in images)
    return tuple(im.clone(memory_format=torch.contiguous_format) for im in images)
