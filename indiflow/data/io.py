"""Reading, writing and listing image files (Pillow, plus a small 16-bit colour PNG codec).

Conventions shared by all of :mod:`indiflow.data`: an image is a float32 tensor ``(C, H, W)``
in [0, 1] with ``C = 1`` (grey) or ``C = 3`` (RGB). Pixel values are taken as stored in the
file: no colour management, no gamma conversion, no EXIF orientation.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from indiflow.data._png16 import png_header, read_png16, write_png16

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File suffixes (compared in lower case) that :func:`list_images` treats as images."""

_INSTALL_HINT = 'install the image extra: pip install -e ".[images]"'
_TO_RGB = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBa")
_TO_GREY = ("1", "L", "LA", "La")
_PILLOW_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}


def _pillow():
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - exercised only without Pillow
        raise ImportError(f"reading and writing images needs Pillow; {_INSTALL_HINT}") from error
    return Image


def list_images(folder: str | Path) -> list[Path]:
    """Return the image files directly inside ``folder``, sorted by file name.

    A file counts as an image when its suffix, in lower case, is one of
    :data:`IMAGE_SUFFIXES`; sub-folders and other files are ignored.

    Raises:
        ValueError: if ``folder`` does not exist, is not a folder, or holds no image file.
    """
    path = Path(folder)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise ValueError(f"image folder {str(path)!r} {what}; pass a folder of image files")
    files = sorted(
        (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.name,
    )
    if not files:
        raise ValueError(
            f"image folder {str(path)!r} holds no image file (suffixes {', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def images_by_stem(folder: str | Path, what: str = "folder") -> dict[str, Path]:
    """The images of :func:`list_images` keyed by file name without suffix, for pairing.

    Args:
        folder: the folder to list.
        what: how error messages name the folder (e.g. ``"--gt folder"``).

    Raises:
        ValueError: as :func:`list_images`, or if two images share a name without suffix
            (``a.png`` and ``a.jpg``), which would make pairing by name ambiguous.
    """
    found: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in found:
            raise ValueError(
                f"{what} {str(folder)!r} holds two images named {path.stem!r} "
                f"({found[path.stem].name} and {path.name}); keep one so pairs are unambiguous"
            )
        found[path.stem] = path
    return found


def image_size(path: str | Path) -> tuple[int, int]:
    """Return ``(height, width)`` of an image file from its header, without decoding pixels.

    Raises:
        ValueError: naming the file, if it is missing or not a readable image.
        ImportError: if Pillow is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot read image {str(path)!r}: no such file")
    image_module = _pillow()
    try:
        with image_module.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from error
    return height, width


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file into a float32 tensor ``(C, H, W)`` in [0, 1].

    Definition: 8-bit samples are divided by 255 and 16-bit samples by 65535. Grey and
    black-and-white files give ``C = 1`` (grey + alpha drops the alpha); RGB, RGBA, palette,
    CMYK and YCbCr files give ``C = 3`` through Pillow's ``convert("RGB")`` (alpha is dropped,
    not composited). 16-bit colour PNGs, which Pillow would cut to 8 bits, are decoded exactly
    by a built-in codec (non-interlaced only). A multi-frame file gives its first frame.

    Raises:
        ValueError: naming the file, if it is missing, unreadable, corrupt or in a mode
            without a defined [0, 1] range (32-bit integer or float images).
        ImportError: if Pillow is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot read image {str(path)!r}: no such file")
    image_module = _pillow()
    try:
        with path.open("rb") as handle:
            header = png_header(handle.read(26))
        if header is not None and header[0] == 16 and header[1] != 0:
            pixels = read_png16(path.read_bytes())
            if pixels.shape[2] in (2, 4):  # drop alpha
                pixels = pixels[..., :-1]
            array = pixels.astype(np.float32) / 65535.0
        else:
            with image_module.open(path) as image:
                image.load()
                array = _pillow_to_array(image)
    except (
        OSError,
        SyntaxError,
        ValueError,
        struct.error,
        image_module.DecompressionBombError,
    ) as error:
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from error
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _pillow_to_array(image) -> np.ndarray:
    """(H, W) or (H, W, 3) float32 in [0, 1] from an open Pillow image."""
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.float32) / 65535.0
    if mode == "I" and image.format == "PNG":  # older Pillow opens 16-bit grey PNGs as "I"
        return np.asarray(image).astype(np.float32) / 65535.0
    if mode in _TO_GREY:
        return np.asarray(image.convert("L")).astype(np.float32) / 255.0
    if mode in _TO_RGB:
        return np.asarray(image.convert("RGB")).astype(np.float32) / 255.0
    raise ValueError(
        f"image mode {mode!r} has no defined [0, 1] range; save it as 8- or 16-bit grey or RGB"
    )


def write_image(path: str | Path, x: torch.Tensor, bits: int = 8) -> None:
    """Write ``x``, a ``(C, H, W)`` tensor in [0, 1] with ``C`` in {1, 3}, to ``path``.

    Definition: each sample becomes ``round(x * (2**bits - 1))`` computed in float64, with
    round half to even (``torch.round``), then clipped to ``[0, 2**bits - 1]``. ``bits=8``
    writes the format of the suffix (PNG, BMP, TIFF; WebP lossless; JPEG at quality 95 with
    4:4:4 chroma, which is lossy: use ``.png`` for exact values). ``bits=16`` writes a 16-bit
    PNG and needs the ``.png`` suffix. Parent folders are created. The tensor may live on
    any device; it is copied to the CPU.

    Raises:
        TypeError: if ``x`` is not a floating-point tensor.
        ValueError: for a rank other than 3, ``C`` not in {1, 3}, values outside [0, 1] or NaN,
            ``bits`` not in {8, 16}, or a suffix outside :data:`IMAGE_SUFFIXES` (16-bit: ``.png``).
    """
    path = Path(path)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"write_image needs a floating-point tensor in [0, 1], got {got}")
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(
            f"write_image needs a (C, H, W) tensor with C = 1 or 3, got shape {tuple(x.shape)}; "
            "write batches one image at a time"
        )
    if bits not in (8, 16) or isinstance(bits, bool):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    suffix = path.suffix.lower()
    if suffix not in _PILLOW_FORMATS or (bits == 16 and suffix != ".png"):
        allowed = ".png" if bits == 16 else ", ".join(IMAGE_SUFFIXES)
        raise ValueError(f"cannot write {bits}-bit image {str(path)!r}: suffix must be {allowed}")
    values = x.detach().to("cpu", torch.float64)
    if torch.isnan(values).any() or values.min() < 0 or values.max() > 1:
        raise ValueError(
            f"write_image needs values in [0, 1], got min {values.min().item():.6g}, "
            f"max {values.max().item():.6g} (NaN present: {bool(torch.isnan(values).any())}); "
            "clamp the image first"
        )
    top = 2**bits - 1
    levels = torch.round(values * top).clamp_(0, top).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    if bits == 16:
        write_png16(path, levels.astype(np.uint16))
        return
    image_module = _pillow()
    array = levels.astype(np.uint8)
    image = image_module.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    fmt = _PILLOW_FORMATS[suffix]
    options = {"JPEG": {"quality": 95, "subsampling": 0}, "WEBP": {"lossless": True}}
    image.save(path, format=fmt, **options.get(fmt, {}))
