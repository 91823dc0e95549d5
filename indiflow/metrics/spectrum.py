"""High-frequency gap of the radially averaged power spectrum: blur < 0 < noise.

A regression to the mean removes fine detail, which shows as missing power at high spatial
frequencies; noise and ringing add power there. :func:`spectrum_gap` measures the difference in
decades over a band of frequencies, with a sign that says which of the two happened.
"""

from __future__ import annotations

import math

import torch

from indiflow.metrics._checks import check_image, check_image_pair, check_min_size, compute_dtype

_POWER_FLOOR = 1e-12  # far below 8-bit quantisation noise (about 2e-7 after the window)


def radial_power_spectrum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum per image, averaged over channels.

    Each channel has its mean removed and is multiplied by a separable symmetric Hann window
    (``torch.hann_window(n, periodic=False)`` along each axis) so that the image border adds no
    spurious high frequencies; then ``P = |FFT2|² / (H W)``. Frequencies ``(f_y, f_x)`` in cycles
    per pixel (``torch.fft.fftfreq``) fall in bin ``round(S · sqrt(f_y² + f_x²))`` with
    ``S = min(H, W)``; bins ``0 .. S // 2`` are kept (the disc inside the Nyquist square) and
    ``P`` is averaged within each bin and over channels. Computed in float64 (float32 on MPS).

    Args:
        x: images ``(B, C, H, W)`` in [0, 1], at least 2 x 2.

    Returns:
        ``(power, frequency)``: ``(B, S // 2 + 1)`` power and the bin centres ``k / S`` in
        cycles per pixel, ``(S // 2 + 1,)``.

    Raises:
        TypeError, ValueError: not a valid image batch.
    """
    x = check_image("x", x)
    check_min_size("radial_power_spectrum", x, 2, "one frequency bin beyond 0")
    return _radial_power_spectrum(x)


def _radial_power_spectrum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    height, width = x.shape[-2:]
    side = min(height, width)
    x = x.to(compute_dtype(x))
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    window_y = torch.hann_window(height, periodic=False, dtype=x.dtype, device=x.device)
    window_x = torch.hann_window(width, periodic=False, dtype=x.dtype, device=x.device)
    x = x * window_y[:, None] * window_x[None, :]
    power = torch.fft.fft2(x).abs().square().mean(dim=1) / (height * width)  # (B, H, W)
    f_y = torch.fft.fftfreq(height, dtype=x.dtype, device=x.device)
    f_x = torch.fft.fftfreq(width, dtype=x.dtype, device=x.device)
    bins = torch.round(torch.sqrt(f_y[:, None] ** 2 + f_x[None, :] ** 2) * side).long().flatten()
    n_bins = side // 2 + 1
    keep = bins < n_bins
    sums = torch.zeros(x.shape[0], n_bins, dtype=x.dtype, device=x.device)
    sums.index_add_(1, bins[keep], power.flatten(start_dim=1)[:, keep])
    counts = torch.bincount(bins[keep], minlength=n_bins).to(x.dtype)
    frequency = torch.arange(n_bins, dtype=x.dtype, device=x.device) / side
    return sums / counts, frequency


def spectrum_gap(
    x: torch.Tensor, ref: torch.Tensor, *, band: tuple[float, float] = (0.25, 0.5)
) -> torch.Tensor:
    """Signed high-frequency gap of the radially averaged power spectra, in decades.

    ``gap = mean over bins k with band[0] <= k / S <= band[1] of
    log10(max(P_x(k), 1e-12)) - log10(max(P_ref(k), 1e-12))`` with ``P`` and ``S`` from
    :func:`radial_power_spectrum`. Negative when ``x`` lacks fine detail that ``ref`` has
    (blur, over-smoothing), positive when it has extra (noise, ringing); ``-1`` means ten times
    less power in the band. The default band is the upper octave, 1/4 to 1/2 cycle per pixel.
    The floor keeps the logarithm finite; strong blur reaches it, so gaps below about -7 mean
    "no detail at all" rather than a precise amount.

    Args:
        x: images ``(B, C, H, W)`` in [0, 1], at least 16 x 16.
        ref: reference images of the same shape.
        band: ``(low, high)`` in cycles per pixel, ``0 <= low < high <= 0.5``.

    Returns:
        ``(B,)`` float64 tensor on ``x``'s device (float32 on MPS).

    Raises:
        TypeError, ValueError: invalid images or band, or a band without a frequency bin.
    """
    x, ref = check_image_pair(x, ref)
    check_min_size("spectrum_gap", x, 16, "enough frequency bins for a band")
    low, high = _check_band(band)
    power_x, frequency = _radial_power_spectrum(x)
    power_ref, _ = _radial_power_spectrum(ref)
    selected = (frequency >= low) & (frequency <= high)
    if not bool(selected.any()):
        raise ValueError(f"band={band} holds no frequency bin of a {min(x.shape[-2:])}-pixel side")
    log_x = torch.log10(power_x[:, selected].clamp_min(_POWER_FLOOR))
    log_ref = torch.log10(power_ref[:, selected].clamp_min(_POWER_FLOOR))
    return (log_x - log_ref).mean(dim=1)


def _check_band(band: object) -> tuple[float, float]:
    if (
        not isinstance(band, tuple)
        or len(band) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in band)
    ):
        raise TypeError(f"band must be a tuple (low, high) of floats, got {band!r}")
    low, high = float(band[0]), float(band[1])
    if math.isnan(low) or math.isnan(high) or not (0.0 <= low < high <= 0.5):
        raise ValueError(f"band must satisfy 0 <= low < high <= 0.5 cycles per pixel, got {band}")
    return low, high
