"""JPEG compression artefacts through Pillow's encoder and decoder."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from indiflow._checks import check_int
from indiflow.degradations.base import ImageDegradation

_MODES = {1: "L", 3: "RGB"}


def _pillow():
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            'JPEG needs Pillow; install the image extra: pip install -e ".[images]"'
        ) from error
    return Image


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """``round(255 clip(x, 0, 1))`` as uint8 on the CPU, rounding half to even (``torch.round``).

    The product is taken in ``x``'s dtype. Ties need ``255 x`` exactly half an integer, which
    among floats in ``[0, 1]`` happens only at ``x = 0.5`` (giving 128).
    """
    return (x.detach().clamp(0, 1) * 255).round().to(device="cpu", dtype=torch.uint8)


@dataclass(frozen=True)
class JPEG(ImageDegradation):
    """JPEG round trip: ``y = decode(encode(to_uint8(x), quality)) / 255``.

    Each image is quantised by :func:`to_uint8` (clip to ``[0, 1]``, scale by 255, round half to
    even), encoded by Pillow (libjpeg) at ``quality`` with its standard quantisation tables
    scaled by quality and, for RGB, YCbCr with 4:2:0 chroma subsampling (``subsampling=2``),
    decoded by Pillow, and divided by 255 in ``x``'s dtype. This is how BasicSR and KAIR make
    JPEG training pairs (they call OpenCV's libjpeg with the same defaults). Grey images
    (``C = 1``) are encoded as 8-bit greyscale JPEG, RGB images (``C = 3``) as colour JPEG.

    The work runs on the CPU, one image at a time, and the result is moved back to ``x``'s device;
    it is not differentiable. No random numbers are drawn (``generator`` is accepted and unused).
    Needs Pillow (``pip install -e ".[images]"``).

    Args:
        quality: Pillow's JPEG quality, an int in ``1..100`` (higher is better).
    """

    quality: int

    def __post_init__(self) -> None:
        check_int("JPEG quality", self.quality, 1)
        if self.quality > 100:
            raise ValueError(f"JPEG quality must lie in 1..100, got {self.quality}")

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        channels = x.shape[1]
        if channels not in _MODES:
            raise ValueError(
                f"JPEG needs grey (C = 1) or RGB (C = 3) images, got C = {channels} in shape "
                f"{tuple(x.shape)}; split other channel counts into such groups first"
            )
        image_module = _pillow()
        pixels = to_uint8(x).permute(0, 2, 3, 1).numpy()
        decoded = np.empty_like(pixels)
        for index, image in enumerate(pixels):
            array = image[..., 0] if channels == 1 else image
            buffer = io.BytesIO()
            image_module.fromarray(array).save(
                buffer, format="JPEG", quality=self.quality, subsampling=2
            )
            buffer.seek(0)
            with image_module.open(buffer) as compressed:
                decoded[index] = np.asarray(compressed).reshape(image.shape)
        out = torch.from_numpy(decoded).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)
        return out / 255
