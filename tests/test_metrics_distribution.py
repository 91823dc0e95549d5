"""laplacian_swd, spectrum_gap, gradient_w1 and their pieces against scipy / numpy references."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from scipy.stats import wasserstein_distance
from skimage import data

import indiflow as ind
from indiflow.metrics import _pyramid

M = ind.metrics


@pytest.fixture(scope="module")
def photo():
    """Two 64 x 64 crops of a real photograph, float64 in [0, 1]."""
    image = torch.from_numpy(data.coffee()).permute(2, 0, 1).double() / 255
    return torch.stack([image[:, 100:164, 200:264], image[:, 200:264, 350:414]])


def blur(x, sigma):
    r = int(3 * sigma + 1)
    taps = torch.exp(-(torch.arange(-r, r + 1.0, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(x.shape[1], 1, -1, -1)
    return F.conv2d(F.pad(x, (r,) * 4, mode="reflect"), k, groups=x.shape[1])


def noisy(x, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


# --- 1-D Wasserstein ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10_000), scale=st.floats(0.1, 10))
def test_wasserstein_1d_is_scipy_for_equal_sizes(n, seed, scale):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), scale * rng.exponential(size=n)
    got = M.wasserstein_1d(torch.from_numpy(a), torch.from_numpy(b))
    assert float(got) == pytest.approx(wasserstein_distance(a, b), rel=1e-12, abs=1e-12)


# --- gradient_w1 -------------------------------------------------------------------------------


def numpy_gradient_magnitude(image):
    """(C, H, W) -> all forward-difference magnitudes on the common (H-1) x (W-1) grid."""
    dx = np.diff(image, axis=2)[:, :-1, :]
    dy = np.diff(image, axis=1)[:, :, :-1]
    return np.hypot(dx, dy).ravel()


def test_gradient_w1_is_scipy_on_numpy_gradient_magnitudes(photo):
    x = noisy(blur(photo, 1.0), 0.02)
    got = M.gradient_w1(x, photo)
    assert got.shape == (2,) and got.dtype == torch.float64
    for b in range(2):
        want = wasserstein_distance(
            numpy_gradient_magnitude(x[b].numpy()), numpy_gradient_magnitude(photo[b].numpy())
        )
        assert float(got[b]) == pytest.approx(want, rel=1e-10)


def test_gradient_w1_identity_symmetry_and_both_degradations_raise_it(photo):
    assert (M.gradient_w1(photo, photo) == 0).all()
    other = blur(photo, 1.0)
    assert torch.equal(M.gradient_w1(other, photo), M.gradient_w1(photo, other))
    clean_noise = M.gradient_w1(noisy(photo, 0.01), photo)
    assert (M.gradient_w1(blur(photo, 2.0), photo) > M.gradient_w1(other, photo)).all()
    assert (M.gradient_w1(noisy(photo, 0.1), photo) > clean_noise).all()


# --- spectrum_gap ------------------------------------------------------------------------------


def numpy_radial_spectrum(image):
    """Independent transcription of radial_power_spectrum's definition for one (C, H, W) image."""
    _, h, w = image.shape
    side = min(h, w)
    centred = image - image.mean(axis=(1, 2), keepdims=True)
    windowed = centred * np.hanning(h)[:, None] * np.hanning(w)[None, :]
    power = (np.abs(np.fft.fft2(windowed)) ** 2).mean(axis=0) / (h * w)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    bins = np.rint(radius * side).astype(int).ravel()
    keep = bins <= side // 2
    sums = np.bincount(bins[keep], weights=power.ravel()[keep], minlength=side // 2 + 1)
    return sums / np.bincount(bins[keep], minlength=side // 2 + 1)


@pytest.mark.parametrize("shape", [(3, 32, 48), (1, 33, 20)])
def test_radial_power_spectrum_matches_a_numpy_transcription(shape):
    image = torch.rand((2, *shape), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    power, freq = M.radial_power_spectrum(image)
    side = min(shape[1:])
    assert power.shape == (2, side // 2 + 1)
    assert torch.allclose(freq, torch.arange(side // 2 + 1, dtype=torch.float64) / side)
    for b in range(2):
        assert np.allclose(power[b].numpy(), numpy_radial_spectrum(image[b].numpy()), rtol=1e-10)


def test_a_cosine_puts_its_power_in_its_frequency_bin():
    n, k = 64, 12  # 12 cycles over 64 pixels = 0.1875 cycle / pixel
    cols = torch.arange(n, dtype=torch.float64)
    image = (0.5 + 0.4 * torch.cos(2 * torch.pi * k * cols / n)).expand(1, 1, n, n)
    power, _ = M.radial_power_spectrum(image)
    assert int(power[0].argmax()) == k


def test_spectrum_gap_sign_blur_below_zero_below_noise(photo):
    assert (M.spectrum_gap(blur(photo, 1.0), photo) < -0.5).all()
    assert (M.spectrum_gap(noisy(photo, 0.05), photo) > 0.2).all()
    assert (M.spectrum_gap(photo, photo) == 0).all()
    other = noisy(photo, 0.05)
    assert torch.allclose(M.spectrum_gap(other, photo), -M.spectrum_gap(photo, other))


def test_spectrum_gap_is_the_band_mean_of_the_log_ratio(photo):
    x = blur(photo, 0.7)
    px, freq = M.radial_power_spectrum(x)
    pr, _ = M.radial_power_spectrum(photo)
    band = (freq >= 0.1) & (freq <= 0.3)
    want = (px[:, band].log10() - pr[:, band].log10()).mean(dim=1)
    assert torch.allclose(M.spectrum_gap(x, photo, band=(0.1, 0.3)), want, rtol=1e-12)


# --- Laplacian pyramid and SWD -----------------------------------------------------------------


KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def test_pyramid_steps_match_scipy_mirror_convolution():
    """Karras et al.'s pyr_down / pyr_up (scipy.ndimage.convolve, mode='mirror') on even sizes."""
    x = torch.rand(2, 3, 32, 24, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    k = KERNEL[None, None]
    down = ndimage.convolve(x.numpy(), k, mode="mirror")[:, :, ::2, ::2]
    assert np.allclose(_pyramid.pyr_down(x).numpy(), down, atol=1e-14)
    stuffed = np.zeros((2, 3, 32, 24))
    stuffed[:, :, ::2, ::2] = down
    up = ndimage.convolve(stuffed, 4 * k, mode="mirror")
    assert np.allclose(_pyramid.pyr_up(torch.from_numpy(down), (32, 24)).numpy(), up, atol=1e-14)


@pytest.mark.parametrize(
    ("size", "shapes"),
    [((64, 64), [(64, 64), (32, 32), (16, 16)]), ((45, 37), [(45, 37), (23, 19), (12, 10)])],
)
def test_pyramid_reconstructs_the_image(size, shapes):
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    levels = _pyramid.laplacian_pyramid(x, 3)
    assert [tuple(level.shape[-2:]) for level in levels] == shapes
    assert _pyramid.coarsest_side(size, 3) == min(shapes[-1])
    image = levels[-1]
    for band in reversed(levels[:-1]):
        image = band + _pyramid.pyr_up(image, band.shape[-2:])
    assert torch.allclose(image, x, atol=1e-13)


def test_default_levels_stop_at_16_pixels():
    # sides halve rounding up: 33 -> 17 -> 9, so 33 gives two levels of at least 16
    assert [_pyramid.pyramid_levels((s, 2 * s), 16) for s in (16, 31, 32, 33, 64, 512)] == [
        1, 2, 2, 2, 3, 6,
    ]  # fmt: skip


def test_swd_with_one_level_one_direction_is_scipy_on_the_projected_patches():
    """All 7x7 corners, one direction: the exact W1 of the jointly standardised projections."""
    g = torch.Generator().manual_seed(4)
    x = torch.rand(1, 3, 20, 18, generator=g, dtype=torch.float64)
    ref = torch.rand(1, 3, 20, 18, generator=g, dtype=torch.float64) ** 2
    got = M.laplacian_swd(x, ref, levels=1, patches=10_000, projections=1,
                          generator=torch.Generator().manual_seed(9))  # fmt: skip
    # With every corner used nothing else is drawn: the direction is the generator's first draw.
    direction = torch.randn(147, 1, generator=torch.Generator().manual_seed(9)).double()
    direction = (direction / direction.norm()).numpy().ravel()

    def patches(image):  # (N, C, 7, 7), row-major corners
        win = sliding_window_view(image[0].float().double().numpy(), (7, 7), axis=(1, 2))
        return win.transpose(1, 2, 0, 3, 4).reshape(-1, 3, 7, 7)

    px, pr = patches(x), patches(ref)
    both = np.concatenate([px, pr])
    mean, std = both.mean(axis=(0, 2, 3), keepdims=True), both.std(axis=(0, 2, 3), keepdims=True)
    proj_x = ((px - mean) / std).reshape(len(px), -1) @ direction
    proj_r = ((pr - mean) / std).reshape(len(pr), -1) @ direction
    assert float(got[0]) == pytest.approx(wasserstein_distance(proj_x, proj_r), rel=1e-4)


FAST = {"patches": 256, "projections": 32}  # torch sorts slowly on CPU; defaults tested once


def test_swd_defaults_are_deterministic(photo):
    other = blur(photo, 1.0)
    d = M.laplacian_swd(other, photo)
    assert d.shape == (2,) and d.dtype == torch.float32 and (d > 0).all()
    assert torch.equal(d, M.laplacian_swd(other, photo, generator=torch.Generator().manual_seed(0)))


def test_swd_identity_symmetry_and_generator(photo):
    other = blur(photo, 1.0)
    d = M.laplacian_swd(other, photo, **FAST)
    assert (M.laplacian_swd(photo, photo, **FAST) == 0).all()
    assert torch.allclose(d, M.laplacian_swd(photo, other, **FAST), rtol=1e-5)
    reseeded = M.laplacian_swd(other, photo, generator=torch.Generator().manual_seed(1), **FAST)
    assert not torch.equal(d, reseeded) and torch.allclose(d, reseeded, rtol=0.25)


def test_swd_grows_with_blur_and_noise(photo):
    blurs = torch.stack([M.laplacian_swd(blur(photo, s), photo, **FAST) for s in (0.7, 1.5, 3.0)])
    assert (blurs[1:] > blurs[:-1]).all()
    noises = [M.laplacian_swd(noisy(photo, s), photo, **FAST) for s in (0.01, 0.05, 0.2)]
    assert (torch.stack(noises).diff(dim=0) > 0).all()


def test_measures_are_per_image(photo):
    x = noisy(blur(photo, 1.0), 0.03)
    swd = lambda a, b: M.laplacian_swd(a, b, **FAST)  # noqa: E731
    for measure in (swd, M.spectrum_gap, M.gradient_w1):
        whole = measure(x, photo)
        parts = torch.cat([measure(x[i : i + 1], photo[i : i + 1]) for i in range(2)])
        assert whole.shape == (2,) and torch.allclose(whole, parts, rtol=1e-5)


# --- bad input ---------------------------------------------------------------------------------


def test_bad_input_is_rejected():
    img = torch.full((1, 3, 32, 32), 0.5)
    small = torch.full((1, 3, 15, 40), 0.5)
    for measure in (M.laplacian_swd, M.spectrum_gap):
        with pytest.raises(ValueError, match="at least 16x16"):
            measure(small, small)
    for measure in (M.laplacian_swd, M.spectrum_gap, M.gradient_w1):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            measure(img * 3, img)
        with pytest.raises(TypeError, match="floating-point"):
            measure(img.to(torch.uint8), img)
        with pytest.raises(ValueError, match="same shape"):
            measure(img, img[..., :31])
    with pytest.raises(ValueError, match="at least 2x2"):
        M.gradient_w1(img[..., :1, :], img[..., :1, :])
    with pytest.raises(ValueError, match="end at 8 pixels, smaller than patch_size=9"):
        M.laplacian_swd(img, img, levels=3, patch_size=9)
    with pytest.raises(ValueError, match="patches must be >= 2"):
        M.laplacian_swd(img, img, patches=1)
    with pytest.raises(ValueError, match="projections must be >= 1"):
        M.laplacian_swd(img, img, projections=0)
    with pytest.raises(TypeError, match="levels must be an int"):
        M.laplacian_swd(img, img, levels=2.0)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        M.laplacian_swd(img, img, generator=0)
    with pytest.raises(ValueError, match=r"0 <= low < high <= 0\.5"):
        M.spectrum_gap(img, img, band=(0.3, 0.2))
    with pytest.raises(TypeError, match="band must be a tuple"):
        M.spectrum_gap(img, img, band=[0.1, 0.2])
    with pytest.raises(ValueError, match="holds no frequency bin"):
        M.spectrum_gap(img, img, band=(0.26, 0.27))


def test_bad_input_to_the_public_helpers_is_rejected():
    with pytest.raises(ValueError, match="same shape"):
        M.wasserstein_1d(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="non-empty last dimension"):
        M.wasserstein_1d(torch.zeros(3, 0), torch.zeros(3, 0))
    with pytest.raises(TypeError, match="floating-point"):
        M.wasserstein_1d(torch.zeros(4, dtype=torch.long), torch.zeros(4))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        M.wasserstein_1d([0.0, 1.0], torch.zeros(2))
    with pytest.raises(ValueError, match="rank 4"):
        M.radial_power_spectrum(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.gradient_magnitude(torch.full((1, 1, 4, 4), -1.0))
    with pytest.raises(ValueError, match="at least 2x2"):
        M.gradient_magnitude(torch.zeros(1, 1, 1, 4))
