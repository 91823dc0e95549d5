"""indiflow.degradations against independent references (Pillow, scipy, numpy) and properties."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

import indiflow as ind
from indiflow.degradations import (
    JPEG,
    BicubicSR,
    Compose,
    Degradation,
    GaussianBlur,
    GaussianNoise,
    MotionBlur,
)
from indiflow.degradations.padding import pad_reflect
from indiflow.degradations.resize import bicubic_matrix, keys_cubic

# One of each op, small enough for 16 x 16 images.
OPS = [
    BicubicSR(2),
    GaussianBlur(1.2),
    MotionBlur(5, steps=32),
    JPEG(40),
    GaussianNoise(0.1),
    Compose([GaussianBlur(0.8), GaussianNoise(0.05)]),
]
RANDOM_OPS = [op for op in OPS if isinstance(op, MotionBlur | GaussianNoise | Compose)]
DETERMINISTIC_OPS = [op for op in OPS if op not in RANDOM_OPS]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(shape=(2, 3, 16, 16), dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=seeded(seed), dtype=torch.float64).to(dtype)


def smooth_images(shape=(2, 3, 24, 36), seed: int = 0) -> torch.Tensor:
    """Photo-like content: smooth shading plus an edge, in [0, 1]."""
    b, c, h, w = shape
    rows = torch.linspace(0, 1, h, dtype=torch.float64)[:, None]
    cols = torch.linspace(0, 1, w, dtype=torch.float64)[None, :]
    base = 0.5 + 0.3 * torch.sin(6 * rows + 4 * cols) * torch.cos(3 * cols)
    edge = 0.15 * (cols > 0.4).double()
    texture = 0.05 * torch.rand(shape, generator=seeded(seed), dtype=torch.float64)
    return (base + edge + texture).clamp(0, 1).expand(b, c, h, w).contiguous()


def pillow_resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pillow's bicubic resize of every plane as a float ('F' mode) image."""
    planes = x.to(torch.float32).numpy()
    out = np.empty((*planes.shape[:2], height, width), np.float32)
    for index in np.ndindex(*planes.shape[:2]):
        plane = Image.fromarray(planes[index])
        assert plane.mode == "F"
        out[index] = np.asarray(plane.resize((width, height), Image.Resampling.BICUBIC))
    return torch.from_numpy(out)


def pillow_jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Pillow JPEG round trip of one uint8 (H, W) or (H, W, 3) array, 4:2:0."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling=2)
    return np.array(Image.open(io.BytesIO(buffer.getvalue())))


# --- the contract shared by every op ------------------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
def test_shape_dtype_device_kept(op):
    for dtype in (torch.float32, torch.float64):
        x = images(dtype=dtype)
        y = op(x, generator=seeded())
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
def test_deterministic_given_generator(op):
    x = images()
    torch.testing.assert_close(op(x, seeded(3)), op(x, seeded(3)), rtol=0, atol=0)


@pytest.mark.parametrize("op", RANDOM_OPS, ids=lambda op: type(op).__name__)
def test_random_ops_depend_on_the_seed(op):
    x = images()
    assert not torch.equal(op(x, seeded(1)), op(x, seeded(2)))


@pytest.mark.parametrize("op", DETERMINISTIC_OPS, ids=lambda op: type(op).__name__)
def test_deterministic_ops_act_per_image(op):
    x = images((3, 3, 16, 16))
    per_image = torch.cat([op(x[b : b + 1]) for b in range(3)])
    torch.testing.assert_close(op(x), per_image, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "op", [*OPS, lambda x, generator=None: x], ids=lambda op: type(op).__name__
)
def test_every_op_is_a_degradation(op):
    assert isinstance(op, Degradation)


def test_lazy_access_from_the_package_root():
    assert ind.degradations.BicubicSR is BicubicSR


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
def test_bad_images_are_rejected(op):
    x = images()
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        op(x.numpy())
    with pytest.raises(TypeError, match="floating-point"):
        op((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*unsqueeze"):
        op(x[0])
    with pytest.raises(ValueError, match="empty"):
        op(x[:0])
    outside = x.clone()
    outside[0, 0, 0, 0], outside[1, 2, 3, 4] = -0.25, 1.5
    with pytest.raises(ValueError, match=r"min -0\.25 and max 1\.5"):
        op(outside)
    with_nan = x.clone()
    with_nan[1, 0, 5, 5] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        op(with_nan)
    with pytest.raises(TypeError, match="generator"):
        op(x, generator=0)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: BicubicSR(0), ValueError, ">= 1"),
        (lambda: BicubicSR(-2), ValueError, ">= 1"),
        (lambda: BicubicSR(2.0), TypeError, "int"),
        (lambda: GaussianBlur(0.0), ValueError, "> 0"),
        (lambda: GaussianBlur(-1.0), ValueError, "> 0"),
        (lambda: GaussianBlur(math.nan), ValueError, "finite"),
        (lambda: GaussianBlur(1.0, size=4), ValueError, "odd"),
        (lambda: GaussianBlur(1.0, size=-3), ValueError, "odd"),
        (lambda: GaussianBlur(1.0, size=5.0), TypeError, "odd int"),
        (lambda: MotionBlur(0), ValueError, "odd int >= 3"),
        (lambda: MotionBlur(8), ValueError, "odd"),
        (lambda: MotionBlur(9, steps=1), ValueError, ">= 2"),
        (lambda: MotionBlur(9, wander=-1.0), ValueError, ">= 0"),
        (lambda: JPEG(0), ValueError, ">= 1"),
        (lambda: JPEG(101), ValueError, "1..100"),
        (lambda: JPEG(50.0), TypeError, "int"),
        (lambda: GaussianNoise(0.0), ValueError, "> 0"),
        (lambda: GaussianNoise(-0.1), ValueError, "> 0"),
        (lambda: GaussianNoise(0.1, clip="yes"), TypeError, "bool"),
        (lambda: Compose(GaussianNoise(0.1)), TypeError, "list"),
        (lambda: Compose([GaussianNoise(0.1), 3]), TypeError, r"ops\[1\]"),
    ],
)
def test_bad_parameters_are_rejected(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_sr_needs_sizes_divisible_by_the_scale():
    with pytest.raises(ValueError, match=r"divisible by 4.*H = 18, W = 16.*x\[\.\.\., :16, :16\]"):
        BicubicSR(4)(images((1, 3, 18, 16)))
    with pytest.raises(ValueError, match="divisible by 3"):
        BicubicSR(3).downsample(images((1, 1, 9, 10)))


def test_sr_upsample_rejects_bad_sizes():
    lr = images((1, 3, 4, 4))
    with pytest.raises(TypeError, match=r"pair \(H, W\)"):
        BicubicSR(2).upsample(lr, 8)
    with pytest.raises(ValueError, match=">= 1"):
        BicubicSR(2).upsample(lr, (8, 0))
    with pytest.raises(TypeError, match="floating"):
        BicubicSR(2).upsample(lr.to(torch.int64), (8, 8))


@pytest.mark.parametrize("channels", [2, 4])
def test_jpeg_needs_grey_or_rgb(channels):
    with pytest.raises(ValueError, match=rf"C = 1\) or RGB \(C = 3\).*C = {channels}"):
        JPEG(50)(images((1, channels, 16, 16)))


def test_motion_convolve_rejects_bad_kernels():
    op, x = MotionBlur(5), images()
    with pytest.raises(ValueError, match=r"\(B, k, k\) with B = 2"):
        op.convolve(x, torch.ones(3, 5, 5) / 25)
    with pytest.raises(ValueError, match="odd k"):
        op.convolve(x, torch.ones(2, 4, 4) / 16)
    with pytest.raises(TypeError, match="floating"):
        op.convolve(x, torch.ones(2, 5, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match=">= 1"):
        op.kernels(0)


def test_compose_rejects_members_that_change_the_shape():
    crop = Compose([lambda x, generator=None: x[..., :8, :8]])
    with pytest.raises(ValueError, match=r"ops\[0\].*input shape \(2, 3, 16, 16\)"):
        crop(images())


# --- BicubicSR ----------------------------------------------------------------------------


def test_keys_cubic_values_and_partition_of_unity():
    t = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, -0.5, 2.5], dtype=torch.float64)
    expected = torch.tensor([1.0, 0.5625, 0.0, -0.0625, 0.0, 0.5625, 0.0], dtype=torch.float64)
    torch.testing.assert_close(keys_cubic(t), expected, rtol=0, atol=1e-15)
    shift = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    total = keys_cubic(shift + torch.arange(-3, 4, dtype=torch.float64)).sum(dim=1)
    torch.testing.assert_close(total, torch.ones(11, dtype=torch.float64), rtol=0, atol=1e-14)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_downsample_matches_pillow(scale):
    for x in (smooth_images((1, 3, 24, 36)), images((1, 3, 24, 36))):
        lr = BicubicSR(scale).downsample(x.to(torch.float32))
        reference = pillow_resize(x, 24 // scale, 36 // scale)
        rms = (lr - reference).pow(2).mean().sqrt().item()
        assert rms < 1e-6  # the target is 1/255; only float32 rounding separates them
        assert rms < 1 / 255


@pytest.mark.parametrize("scale", [2, 4])
def test_sr_upsample_matches_pillow_and_op_is_down_then_up(scale):
    op, x = BicubicSR(scale), smooth_images((2, 3, 24, 32))
    lr = op.downsample(x)
    up = op.upsample(lr, (24, 32))
    torch.testing.assert_close(up.float(), pillow_resize(lr, 24, 32), rtol=0, atol=1e-6)
    torch.testing.assert_close(op(x), up, rtol=0, atol=0)


def test_bicubic_matrix_rows_sum_to_one_and_scale_one_is_identity():
    for n_in, n_out in [(12, 3), (5, 20), (7, 7), (1, 4)]:
        rows = bicubic_matrix(n_in, n_out)
        assert rows.shape == (n_out, n_in) and rows.dtype == torch.float64
        torch.testing.assert_close(rows.sum(dim=1), torch.ones(n_out, dtype=torch.float64))
    torch.testing.assert_close(bicubic_matrix(9, 9), torch.eye(9, dtype=torch.float64))
    x = images((1, 3, 8, 8), dtype=torch.float64)
    torch.testing.assert_close(BicubicSR(1)(x), x, rtol=0, atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(scale=st.integers(1, 4), level=st.floats(0, 1), height=st.integers(1, 4))
def test_sr_keeps_constant_images(scale, level, height):
    x = torch.full((1, 1, height * scale, 2 * scale), level, dtype=torch.float64)
    torch.testing.assert_close(BicubicSR(scale)(x), x, rtol=0, atol=1e-12)


# --- GaussianBlur -------------------------------------------------------------------------


def scipy_blur(x: torch.Tensor, sigma: float, radius: int) -> torch.Tensor:
    out = ndimage.gaussian_filter(
        x.numpy(), sigma=(0, 0, sigma, sigma), mode="reflect", truncate=radius / sigma
    )
    return torch.from_numpy(out)


@settings(max_examples=25, deadline=None)
@given(
    sigma=st.floats(0.3, 5.0),
    size=st.one_of(st.none(), st.integers(0, 12).map(lambda r: 2 * r + 1)),
    height=st.integers(3, 14),
    width=st.integers(3, 14),
)
def test_gaussian_blur_matches_scipy(sigma, size, height, width):
    op = GaussianBlur(sigma, size=size)
    x = images((1, 2, height, width), dtype=torch.float64)
    # Radii beyond the image size fold the reflection more than once, as scipy does.
    torch.testing.assert_close(op(x), scipy_blur(x, sigma, op.radius), rtol=0, atol=1e-12)
    y32 = op(x.to(torch.float32))
    assert (y32.double() - scipy_blur(x, sigma, op.radius)).abs().max() < 1e-4


def test_gaussian_blur_default_size_is_scipys_default_truncation():
    x = images((1, 1, 20, 20), dtype=torch.float64)
    for sigma in (0.5, 1.0, 1.3, 2.0, 3.7):
        op = GaussianBlur(sigma)
        assert op.radius == int(4.0 * sigma + 0.5)
        reference = ndimage.gaussian_filter(x.numpy()[0, 0], sigma, mode="reflect")
        torch.testing.assert_close(op(x)[0, 0], torch.from_numpy(reference), rtol=0, atol=1e-12)
    assert GaussianBlur(1.0, size=7).radius == 3 and GaussianBlur(1.0).kernel().shape == (9,)


@settings(max_examples=20, deadline=None)
@given(sigma=st.floats(0.2, 6.0), level=st.floats(0, 1))
def test_gaussian_kernel_is_normalised_and_keeps_constants(sigma, level):
    op = GaussianBlur(sigma)
    kernel = op.kernel()
    assert abs(kernel.sum().item() - 1) < 1e-12 and (kernel > 0).all()
    torch.testing.assert_close(kernel, kernel.flip(0))
    x = torch.full((1, 3, 7, 9), level, dtype=torch.float64)
    torch.testing.assert_close(op(x), x, rtol=0, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), radius=st.integers(0, 15))
def test_reflect_padding_is_numpys_symmetric_padding(n, radius):
    x = torch.arange(2 * n * (n + 1), dtype=torch.float64).reshape(2, n, n + 1)
    expected = np.pad(x.numpy(), ((0, 0), (radius, radius), (radius, radius)), mode="symmetric")
    torch.testing.assert_close(pad_reflect(x, radius, radius), torch.from_numpy(expected))


# --- MotionBlur ---------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(size=st.integers(1, 8).map(lambda r: 2 * r + 1), seed=st.integers(0, 2**31))
def test_motion_kernels_are_normalised_non_negative_and_centred(size, seed):
    op = MotionBlur(size, steps=64)
    kernels = op.kernels(3, seeded(seed))
    assert kernels.shape == (3, size, size) and kernels.dtype == torch.float64
    assert (kernels >= 0).all()
    torch.testing.assert_close(kernels.sum(dim=(1, 2)), torch.ones(3, dtype=torch.float64))
    # Bilinear splatting keeps each point's position as the mean of its four weights, so the
    # kernel's centre of mass is the mean of the scaled, bounding-box-centred path.
    path = op.trajectories(3, seeded(seed)) * (size - 1)
    for part, axis in ((path.imag, 1), (path.real, 2)):
        centred = part - (part.amax(dim=1, keepdim=True) + part.amin(dim=1, keepdim=True)) / 2
        expected = centred.mean(dim=1) + (size - 1) / 2
        pixel = torch.arange(size, dtype=torch.float64)
        mass = kernels.sum(dim=3 - axis) @ pixel
        torch.testing.assert_close(mass, expected, rtol=0, atol=1e-9)


def test_motion_path_has_unit_length_and_steps():
    path = MotionBlur(15, steps=50).trajectories(4, seeded(1))
    assert path.shape == (4, 50) and path.dtype == torch.complex128
    torch.testing.assert_close(path[:, 0], torch.zeros(4, dtype=torch.complex128))
    hops = (path[:, 1:] - path[:, :-1]).abs()
    torch.testing.assert_close(hops, torch.full_like(hops, 1 / 49), rtol=0, atol=1e-12)


def test_motion_without_randomness_in_the_path_is_a_centred_line():
    op = MotionBlur(9, steps=81, wander=0.0, pull=0.0, shakes=0.0)
    path = op.trajectories(3, seeded(4))
    direction = path[:, -1:] / path[:, -1:].abs()
    torch.testing.assert_close(path, direction * torch.linspace(0, 1, 81, dtype=torch.float64))
    kernels = op.kernels(3, seeded(4))
    pixel = torch.arange(9, dtype=torch.float64)
    for axis in (1, 2):
        centroid = kernels.sum(dim=3 - axis) @ pixel
        torch.testing.assert_close(centroid, torch.full((3,), 4.0, dtype=torch.float64))


def test_motion_kernels_differ_across_images_and_match_the_op():
    op, x = MotionBlur(7, steps=48), images((3, 3, 16, 16), dtype=torch.float64)
    kernels = op.kernels(3, seeded(5))
    assert not torch.equal(kernels[0], kernels[1])
    torch.testing.assert_close(op(x, seeded(5)), op.convolve(x, kernels), rtol=0, atol=0)
    # Batched: image b is blurred with kernel b alone, whatever the other images hold.
    alone = torch.cat([op.convolve(x[b : b + 1], kernels[b : b + 1]) for b in range(3)])
    torch.testing.assert_close(op(x, seeded(5)), alone, rtol=0, atol=1e-12)


def test_motion_convolution_matches_scipy():
    op, x = MotionBlur(5), images((2, 3, 11, 13), dtype=torch.float64)
    kernels = op.kernels(2, seeded(6))
    kernels[:, 0, 0] += 0.2  # break any symmetry so that a missing flip would show
    y = op.convolve(x, kernels)
    for b in range(2):
        for c in range(3):
            reference = ndimage.convolve(x[b, c].numpy(), kernels[b].numpy(), mode="reflect")
            torch.testing.assert_close(y[b, c], torch.from_numpy(reference), rtol=0, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(level=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_motion_blur_keeps_constant_images(level, seed):
    x = torch.full((2, 1, 9, 9), level, dtype=torch.float64)
    torch.testing.assert_close(MotionBlur(7, steps=32)(x, seeded(seed)), x, rtol=0, atol=1e-12)


# --- JPEG ---------------------------------------------------------------------------------


@pytest.mark.parametrize("quality", [10, 50, 95])
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_is_a_pillow_round_trip(quality, channels):
    pixels = torch.randint(0, 256, (2, channels, 24, 20), generator=seeded(quality))
    smooth = (smooth_images((2, channels, 24, 20)) * 255).round().to(torch.int64)
    for eight_bit in (pixels, smooth):
        x = eight_bit.to(torch.float32) / 255
        y = JPEG(quality)(x)
        for b in range(2):
            array = eight_bit[b].permute(1, 2, 0).numpy().astype(np.uint8)
            reference = pillow_jpeg(array[..., 0] if channels == 1 else array, quality)
            expected = torch.from_numpy(reference.reshape(array.shape)).permute(2, 0, 1)
            assert torch.equal(y[b], expected.to(torch.float32) / 255)


def test_jpeg_quantises_off_grid_values_by_rounding_after_clipping():
    x = images((1, 3, 16, 16), dtype=torch.float64)
    reference = pillow_jpeg(np.rint(x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), 30)
    expected = torch.from_numpy(reference).permute(2, 0, 1).double() / 255
    assert torch.equal(JPEG(30)(x)[0], expected)
    # Inside a Compose, intermediates above 1 or below 0 are clipped first.
    shifted = Compose([lambda z, generator=None: z * 3 - 1, JPEG(30)])(x)
    clipped = ((x * 3 - 1).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    expected = torch.from_numpy(pillow_jpeg(clipped.astype(np.uint8), 30)).permute(2, 0, 1)
    assert torch.equal(shifted[0], expected.double() / 255)


def test_jpeg_error_grows_as_quality_falls():
    x = smooth_images((1, 3, 32, 32))
    errors = [(JPEG(q)(x) - x).abs().mean().item() for q in (95, 50, 10)]
    assert errors[0] < errors[1] < errors[2]


# --- GaussianNoise and Compose ------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_is_sigma_times_the_generators_normals(dtype):
    x = images(dtype=dtype)
    noise = torch.randn(x.shape, generator=seeded(7), dtype=dtype)
    torch.testing.assert_close(GaussianNoise(0.2)(x, seeded(7)), x + 0.2 * noise, rtol=0, atol=0)
    clipped = GaussianNoise(0.2, clip=True)(x, seeded(7))
    torch.testing.assert_close(clipped, (x + 0.2 * noise).clamp(0, 1), rtol=0, atol=0)


def test_compose_applies_in_order_with_the_shared_generator():
    blur, noise, x = MotionBlur(5, steps=32), GaussianNoise(0.1), images()
    generator = seeded(8)
    by_hand = noise(blur(x, generator), generator)
    torch.testing.assert_close(Compose([blur, noise])(x, seeded(8)), by_hand, rtol=0, atol=0)
    generator = seeded(8)
    # Noise first leaves [0, 1]; the blur still takes it inside the chain.
    by_hand = blur._apply(noise(x, generator), generator)
    torch.testing.assert_close(Compose((noise, blur))(x, seeded(8)), by_hand, rtol=0, atol=0)


def test_compose_takes_plain_functions_nests_and_empty_is_identity():
    x = images()
    calls = []

    def darken(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        calls.append(generator)
        return z * 0.5

    generator = seeded(9)
    nested = Compose([Compose([darken]), GaussianBlur(1.0)])
    torch.testing.assert_close(nested(x, generator), GaussianBlur(1.0)(x * 0.5))
    assert calls == [generator]
    torch.testing.assert_close(Compose([])(x), x, rtol=0, atol=0)
