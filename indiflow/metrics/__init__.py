"""Image restoration metrics: each is ``metric(x, ref) -> (B,)`` for images in [0, 1].

- fidelity: :func:`psnr`, :func:`ssim` (BasicSR conventions: ``crop_border``, BT.601
  ``y_channel`` through :func:`rgb_to_y`), checked against scikit-image;
- perception: :class:`STLPIPS`, the shift-tolerant LPIPS network, weights from the
  ``stlpips-pytorch`` wheel (``pip install -e ".[images]"``);
- distribution (weight-free, detect regression to the mean): :func:`laplacian_swd`,
  :func:`spectrum_gap`, :func:`gradient_w1`.

Only torch is needed, except for :class:`STLPIPS`'s weight files.
"""

from indiflow.metrics.distribution import (
    gradient_magnitude,
    gradient_w1,
    laplacian_swd,
    wasserstein_1d,
)
from indiflow.metrics.fidelity import psnr, rgb_to_y, ssim
from indiflow.metrics.perceptual import STLPIPS
from indiflow.metrics.spectrum import radial_power_spectrum, spectrum_gap

__all__ = [
    "STLPIPS",
    "gradient_magnitude",
    "gradient_w1",
    "laplacian_swd",
    "psnr",
    "radial_power_spectrum",
    "rgb_to_y",
    "spectrum_gap",
    "ssim",
    "wasserstein_1d",
]
