"""psnr, ssim and rgb_to_y against scikit-image (the independent references)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import indiflow as ind

M = ind.metrics


def pair(shape, noise, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(shape, generator=g, dtype=dtype)
    x = (ref + noise * torch.randn(shape, generator=g, dtype=dtype)).clamp(0, 1)
    return x, ref


def sk_ssim(x, ref):
    """scikit-image SSIM of one (C, H, W) image, configured as Wang et al. 2004."""
    return structural_similarity(
        x.double().numpy(),
        ref.double().numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=0,
    )


def sk_luma(x):
    """(B, 3, H, W) -> (B, 1, H, W) luma through scikit-image's BT.601 rgb2ycbcr."""
    hwc = x.double().permute(0, 2, 3, 1).numpy()
    return torch.from_numpy(rgb2ycbcr(hwc)[..., :1] / 255.0).permute(0, 3, 1, 2)


@settings(max_examples=25, deadline=None)
@given(
    channels=st.sampled_from([1, 3]),
    height=st.integers(11, 40),
    width=st.integers(11, 40),
    noise=st.floats(0.005, 0.5),
    seed=st.integers(0, 10_000),
)
def test_psnr_and_ssim_match_scikit_image(channels, height, width, noise, seed):
    x, ref = pair((2, channels, height, width), noise, seed)
    got_psnr, got_ssim = M.psnr(x, ref), M.ssim(x, ref)
    for b in range(2):
        want = peak_signal_noise_ratio(ref[b].numpy(), x[b].numpy(), data_range=1.0)
        assert abs(float(got_psnr[b]) - want) < 1e-4
        assert abs(float(got_ssim[b]) - sk_ssim(x[b], ref[b])) < 1e-4


def test_float32_inputs_match_scikit_image_to_1e4():
    x, ref = pair((2, 3, 48, 40), 0.1, seed=3, dtype=torch.float32)
    for b in range(2):
        want = peak_signal_noise_ratio(ref[b].double().numpy(), x[b].double().numpy(), data_range=1)
        assert abs(float(M.psnr(x, ref)[b]) - want) < 1e-4
        assert abs(float(M.ssim(x, ref)[b]) - sk_ssim(x[b], ref[b])) < 1e-4


def test_psnr_data_range_is_the_peak():
    x, ref = pair((1, 3, 16, 16), 0.05)
    want = peak_signal_noise_ratio(ref[0].numpy(), x[0].numpy(), data_range=2.0)
    assert abs(float(M.psnr(x, ref, data_range=2.0)[0]) - want) < 1e-10
    assert float(M.psnr(x, ref, data_range=2.0) - M.psnr(x, ref)) == pytest.approx(
        20 * math.log10(2.0)
    )


def test_rgb_to_y_is_bt601_as_in_scikit_image_and_basicsr():
    x, _ = pair((2, 3, 9, 7), 0.0, seed=5)
    assert torch.allclose(M.rgb_to_y(x), sk_luma(x), atol=1e-12, rtol=0)
    corners = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]).view(1, 3, 3, 1)
    want = torch.tensor([16.0, 235.0, 16.0 + 65.481]) / 255.0
    assert torch.allclose(M.rgb_to_y(corners.permute(0, 2, 1, 3)).flatten(), want, atol=1e-6)


@pytest.mark.parametrize("crop", [0, 4])
def test_y_channel_and_crop_border_match_scikit_image_on_the_cropped_luma(crop):
    x, ref = pair((2, 3, 40, 36), 0.08, seed=7)
    c = slice(crop, -crop) if crop else slice(None)
    y_x, y_ref = sk_luma(x)[..., c, c], sk_luma(ref)[..., c, c]
    got_p = M.psnr(x, ref, crop_border=crop, y_channel=True)
    got_s = M.ssim(x, ref, crop_border=crop, y_channel=True)
    for b in range(2):
        want_p = peak_signal_noise_ratio(y_ref[b].numpy(), y_x[b].numpy(), data_range=1.0)
        assert abs(float(got_p[b]) - want_p) < 1e-4
        assert abs(float(got_s[b]) - sk_ssim(y_x[b], y_ref[b])) < 1e-4


def test_crop_border_removes_exactly_that_many_pixels_per_side():
    _, ref = pair((1, 3, 30, 30), 0.0)
    x = ref.clone()
    x[..., :3, :] = 1 - x[..., :3, :]  # damage only the top 3 rows
    assert math.isinf(float(M.psnr(x, ref, crop_border=3)[0]))
    assert float(M.psnr(x, ref, crop_border=2)[0]) < 40
    assert float(M.ssim(x, ref, crop_border=3)[0]) == pytest.approx(1.0, abs=1e-12)


def test_identical_images_give_inf_psnr_and_unit_ssim():
    _, ref = pair((3, 1, 12, 12), 0.0)
    assert torch.isinf(M.psnr(ref, ref)).all()
    assert torch.allclose(M.ssim(ref, ref), torch.ones(3, dtype=torch.float64), atol=1e-12)


def test_metrics_are_per_image_and_batch_independent():
    x, ref = pair((4, 3, 24, 20), 0.1, seed=11)
    for metric in (M.psnr, M.ssim):
        whole = metric(x, ref)
        assert whole.shape == (4,)
        parts = torch.cat([metric(x[i : i + 1], ref[i : i + 1]) for i in range(4)])
        assert torch.equal(whole, parts)


def test_ssim_window_is_the_normalised_11_tap_gaussian():
    from indiflow.metrics.fidelity import _gaussian_window

    window = _gaussian_window(torch.float64, torch.device("cpu"))
    taps = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    taps /= taps.sum()
    assert window.shape == (11, 11)
    assert np.allclose(window.numpy(), np.outer(taps, taps), atol=1e-15)


GOOD = torch.full((1, 3, 16, 16), 0.5)


@pytest.mark.parametrize(
    ("x", "ref", "error", "match"),
    [
        (np.zeros((1, 3, 16, 16)), GOOD, TypeError, "torch.Tensor"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), GOOD, TypeError, "floating-point"),
        (torch.zeros(3, 16, 16), GOOD, ValueError, "rank 4"),
        (torch.zeros(1, 3, 16, 12), GOOD, ValueError, "same shape"),
        (torch.full((1, 3, 16, 16), 1.5), GOOD, ValueError, r"\[0, 1\]"),
        (GOOD, torch.full((1, 3, 16, 16), -0.1), ValueError, r"ref must have values in \[0, 1\]"),
        (torch.full((1, 3, 16, 16), float("nan")), GOOD, ValueError, "NaN"),
        (torch.zeros(0, 3, 16, 16), torch.zeros(0, 3, 16, 16), ValueError, "empty"),
    ],
)
def test_bad_images_are_rejected_by_both(x, ref, error, match):
    for metric in (M.psnr, M.ssim):
        with pytest.raises(error, match=match):
            metric(x, ref)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="crop_border=8 leaves 0x0"):
        M.psnr(GOOD, GOOD, crop_border=8)
    with pytest.raises(ValueError, match=r"at least 11x11 must remain"):
        M.ssim(GOOD, GOOD, crop_border=3)
    with pytest.raises(ValueError, match="at least 11x11 pixels"):
        M.ssim(torch.zeros(1, 1, 10, 30), torch.zeros(1, 1, 10, 30))
    with pytest.raises(ValueError, match=">= 0"):
        M.psnr(GOOD, GOOD, crop_border=-1)
    with pytest.raises(TypeError, match="crop_border must be an int"):
        M.ssim(GOOD, GOOD, crop_border=1.0)
    with pytest.raises(TypeError, match="y_channel must be a bool"):
        M.psnr(GOOD, GOOD, y_channel=1)
    with pytest.raises(ValueError, match="data_range must be > 0"):
        M.psnr(GOOD, GOOD, data_range=0.0)
    grey = torch.zeros(1, 1, 16, 16)
    with pytest.raises(ValueError, match="C = 3"):
        M.ssim(grey, grey, y_channel=True)
    with pytest.raises(ValueError, match="C = 3"):
        M.rgb_to_y(grey)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.rgb_to_y(torch.full((1, 3, 4, 4), 2.0))
