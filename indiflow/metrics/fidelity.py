"""Pixel-fidelity metrics: PSNR and SSIM, with the super-resolution conventions of BasicSR.

Both follow BasicSR's ``calculate_psnr_pt`` / ``calculate_ssim_pt``
(``basicsr/metrics/psnr_ssim.py``): crop ``crop_border`` pixels from every side, optionally keep
only the BT.601 luma (:func:`rgb_to_y`, BasicSR's ``rgb2ycbcr_pt(img, y_only=True)`` in
``basicsr/utils/color_util.py``), then compute in float64. The usual super-resolution report is
``y_channel=True, crop_border=scale``. The tests check both against scikit-image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from indiflow._checks import check_int, check_positive
from indiflow.metrics._checks import check_image, check_image_pair, check_min_size, compute_dtype

# ITU-R BT.601 luma for RGB in [0, 1]: Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255,
# i.e. the studio-swing Y of Matlab's rgb2ycbcr scaled back to [0, 1]; no rounding.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB images, exactly as BasicSR computes it for PSNR/SSIM on Y.

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` for ``R, G, B`` in [0, 1], so ``Y``
    lies in [16/255, 235/255]. Not rounded to 8 bits.

    Args:
        x: RGB images ``(B, 3, H, W)`` in [0, 1].

    Returns:
        Luma ``(B, 1, H, W)`` in ``x``'s dtype.

    Raises:
        ValueError: ``x`` is not RGB (``C != 3``), or not a valid image batch.
    """
    x = check_image("x", x)
    return _luma(x)


def _luma(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        raise ValueError(
            f"the Y channel needs RGB images (C = 3), got C = {x.shape[1]}; grey images are "
            "already luma, so pass y_channel=False for them"
        )
    weights = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * weights).sum(dim=1, keepdim=True) + _Y_OFFSET) / 255.0


def _prepare(
    x: torch.Tensor, ref: torch.Tensor, crop_border: object, y_channel: object, minimum: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop, take luma if asked, and cast to the compute dtype."""
    crop = check_int("crop_border", crop_border, 0)
    if not isinstance(y_channel, bool):
        raise TypeError(f"y_channel must be a bool, got {type(y_channel).__name__}")
    height, width = x.shape[-2:]
    if min(height, width) - 2 * crop < minimum:
        raise ValueError(
            f"crop_border={crop} leaves {height - 2 * crop}x{width - 2 * crop} pixels of "
            f"{height}x{width} images; at least {minimum}x{minimum} must remain"
        )
    if crop:
        x = x[..., crop:-crop, crop:-crop]
        ref = ref[..., crop:-crop, crop:-crop]
    dtype = compute_dtype(x)
    x, ref = x.to(dtype), ref.to(dtype)
    if y_channel:
        x, ref = _luma(x), _luma(ref)
    return x, ref


def psnr(
    x: torch.Tensor,
    ref: torch.Tensor,
    *,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB.

    ``PSNR = 10 log10(data_range² / MSE)`` with the MSE averaged over all channels and pixels
    of one image (after cropping ``crop_border`` pixels from each side and, with
    ``y_channel=True``, converting to BT.601 luma by :func:`rgb_to_y`). Computed in float64
    (float32 on MPS). Identical images give ``inf``, as in scikit-image and BasicSR.

    Args:
        x: images ``(B, C, H, W)`` in [0, 1].
        ref: reference images of the same shape.
        data_range: the peak value in the PSNR formula (1 for images in [0, 1]).
        crop_border: pixels removed from every side before comparing (SR: the scale factor).
        y_channel: compare the luma of RGB images only.

    Returns:
        ``(B,)`` float64 tensor on ``x``'s device.

    Raises:
        TypeError, ValueError: invalid images, parameters, or a crop that leaves nothing.
    """
    x, ref = check_image_pair(x, ref)
    peak = check_positive("data_range", data_range)
    x, ref = _prepare(x, ref, crop_border, y_channel, minimum=1)
    mse = (x - ref).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(peak**2 / mse)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 11 x 11 Gaussian window of SSIM: outer product of normalised 1-D taps, sigma 1.5."""
    radius = SSIM_WINDOW // 2
    taps = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    taps = torch.exp(-(taps**2) / (2 * SSIM_SIGMA**2))
    taps = taps / taps.sum()
    return taps[:, None] * taps[None, :]


def ssim(
    x: torch.Tensor, ref: torch.Tensor, *, crop_border: int = 0, y_channel: bool = False
) -> torch.Tensor:
    """Structural similarity per image (Wang et al., IEEE TIP 2004), data range 1.

    Local statistics use the 11 x 11 Gaussian window with sigma = 1.5 (normalised to sum 1)
    over the valid region only (no padding, so an ``H x W`` image gives an
    ``(H - 10) x (W - 10)`` SSIM map), population (biased) variances, and
    ``C1 = (0.01)²``, ``C2 = (0.03)²``:
    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x² + mu_y² + C1)(s_x² + s_y² + C2))``.
    The map is averaged over pixels per channel, then the channel values are averaged: the
    convention of BasicSR and of scikit-image's ``structural_similarity(..., channel_axis=...)``,
    which with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``
    gives the same numbers. Computed in float64 (float32 on MPS).

    Args:
        x: images ``(B, C, H, W)`` in [0, 1]; after cropping at least 11 x 11.
        ref: reference images of the same shape.
        crop_border: pixels removed from every side before comparing (SR: the scale factor).
        y_channel: compare the luma (:func:`rgb_to_y`) of RGB images only.

    Returns:
        ``(B,)`` tensor on ``x``'s device, 1 for identical images.

    Raises:
        TypeError, ValueError: invalid images or parameters, or images smaller than the window.
    """
    x, ref = check_image_pair(x, ref)
    check_min_size("ssim", x, SSIM_WINDOW, "the 11x11 Gaussian window, valid region")
    x, ref = _prepare(x, ref, crop_border, y_channel, minimum=SSIM_WINDOW)
    channels = x.shape[1]
    window = _gaussian_window(x.dtype, x.device).expand(channels, 1, -1, -1)

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, window, groups=channels)

    mu_x, mu_r = local_mean(x), local_mean(ref)
    var_x = local_mean(x * x) - mu_x**2
    var_r = local_mean(ref * ref) - mu_r**2
    cov = local_mean(x * ref) - mu_x * mu_r
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_r + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_r**2 + c1) * (var_x + var_r + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3))


__all__ = ["psnr", "rgb_to_y", "ssim"]
