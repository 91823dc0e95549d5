"""Real colour photographs that ship inside installed wheels, with a fixed train/test split.

Nothing is downloaded: the files are located on disk with ``importlib.util.find_spec``
(which does not import the packages) and read with :func:`~indiflow.data.read_image`.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import torch

from indiflow.data.io import read_image

MULTIPLE = 4
"""Every bundled photo is cropped so that its height and width are multiples of this."""


class BundledPhoto(NamedTuple):
    """One photograph: its name, the package that ships it, its path inside that package."""

    name: str
    package: str
    path: str
    split: str


# Natural colour photographs only. Excluded on purpose: grey photos (camera, moon, coins, ...,
# to keep C = 3), synthetic or drawn images (chessboard, logo, phantom, color, horse, ...), and
# scientific imagery (hubble_deep_field, retina, ihc). The two motorcycle views show one scene,
# so they share a split.
BUNDLED_PHOTOS: tuple[BundledPhoto, ...] = (
    BundledPhoto("china", "sklearn", "datasets/images/china.jpg", "train"),
    BundledPhoto("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "train"),
    BundledPhoto("motorcycle_left", "skimage", "data/motorcycle_left.png", "train"),
    BundledPhoto("motorcycle_right", "skimage", "data/motorcycle_right.png", "train"),
    BundledPhoto("rocket", "skimage", "data/rocket.jpg", "train"),
    BundledPhoto("astronaut", "skimage", "data/astronaut.png", "test"),
    BundledPhoto("chelsea", "skimage", "data/chelsea.png", "test"),
    BundledPhoto("coffee", "skimage", "data/coffee.png", "test"),
    BundledPhoto("flower", "sklearn", "datasets/images/flower.jpg", "test"),
)

_DISTRIBUTIONS = {"skimage": "scikit-image", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}
_SPLITS = ("train", "test")


def _check_split(split: object) -> str:
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split  # type: ignore[return-value]


def bundled_photo_names(split: str) -> list[str]:
    """The names of the photos of ``split`` ("train" or "test"), in the order returned."""
    split = _check_split(split)
    return [photo.name for photo in BUNDLED_PHOTOS if photo.split == split]


def bundled_photo_path(photo: BundledPhoto) -> Path:
    """Locate ``photo`` on disk without importing its package.

    Raises:
        ImportError: naming ``pip install -e ".[images]"`` if the package or file is missing.
    """
    hint = f'install the image extra: pip install -e ".[images]" ({_DISTRIBUTIONS[photo.package]})'
    spec = importlib.util.find_spec(photo.package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"bundled photo {photo.name!r} needs {photo.package}; {hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / photo.path
    if not path.is_file():
        raise ImportError(f"the installed {photo.package} lacks {photo.path}; {hint}")
    return path


@lru_cache(maxsize=len(BUNDLED_PHOTOS))
def _read_cropped(photo: BundledPhoto) -> torch.Tensor:
    image = read_image(bundled_photo_path(photo))
    height, width = image.shape[-2:]
    return image[:, : height - height % MULTIPLE, : width - width % MULTIPLE].contiguous()


def bundled_photos(split: str) -> list[torch.Tensor]:
    """The bundled photographs of ``split``: "train" (5 photos) or "test" (4 photos).

    The split is by photograph, fixed, and listed in ``docs/data.md`` and
    :func:`bundled_photo_names` (which gives the order). Each entry is a new float32 RGB
    tensor ``(3, H, W)`` in [0, 1] (8-bit files divided by 255), cropped to its top-left
    ``H - H % 4`` rows and ``W - W % 4`` columns so that 2x and 4x resizing is exact.

    Raises:
        ValueError: if ``split`` is not "train" or "test".
        ImportError: naming ``pip install -e ".[images]"`` if scikit-image, scikit-learn or
            matplotlib (or a photo file inside them) is missing.
    """
    split = _check_split(split)
    return [_read_cropped(photo).clone() for photo in BUNDLED_PHOTOS if photo.split == split]
