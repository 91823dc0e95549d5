"""Image data: file I/O, paired folders, synthetic pairs and bundled photographs.

Importing this package does not import Pillow, scikit-image, scikit-learn or matplotlib; the
functions that need them import or locate them when called and raise ``ImportError`` naming
``pip install -e ".[images]"``.
"""

from indiflow.data.augment import dihedral, item_generator
from indiflow.data.folders import PairedFolders
from indiflow.data.io import IMAGE_SUFFIXES, image_size, list_images, read_image, write_image
from indiflow.data.photos import bundled_photo_names, bundled_photos
from indiflow.data.synthetic import PATCHES_PER_IMAGE, SyntheticPairs

__all__ = [
    "IMAGE_SUFFIXES",
    "PATCHES_PER_IMAGE",
    "PairedFolders",
    "SyntheticPairs",
    "bundled_photo_names",
    "bundled_photos",
    "dihedral",
    "image_size",
    "item_generator",
    "list_images",
    "read_image",
    "write_image",
]
