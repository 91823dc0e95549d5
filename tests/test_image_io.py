"""indiflow.data.io and its 16-bit PNG codec, checked against Pillow and numpy."""

import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from indiflow.data import IMAGE_SUFFIXES, image_size, list_images, read_image, write_image
from indiflow.data._png16 import PNG_SIGNATURE, read_png16


def _levels(path):
    return np.asarray(Image.open(path))


# --- list_images ---------------------------------------------------------------------------


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "c.tiff", "notes.txt", "d.gif"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.tiff"]
    assert set(IMAGE_SUFFIXES) == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def test_list_images_rejects_missing_file_and_empty(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(ValueError, match="not a folder"):
        list_images(tmp_path / "f.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no image"):
        list_images(tmp_path / "empty")


# --- read_image ----------------------------------------------------------------------------


def test_read_modes_match_pillow(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., 0], "L").save(tmp_path / "grey.png")
    Image.fromarray(rgba[..., :2], "LA").save(tmp_path / "la.png")
    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "pal.png")
    Image.fromarray(rgba[..., :3]).save(tmp_path / "rgb.jpg", quality=90)
    grey16 = rng.integers(0, 65536, (5, 7)).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")

    x = read_image(tmp_path / "rgba.png")
    assert x.dtype == torch.float32 and x.shape == (3, 5, 7)
    np.testing.assert_array_equal(x.permute(1, 2, 0).numpy(), rgba[..., :3] / np.float32(255))
    assert read_image(tmp_path / "grey.png").shape == (1, 5, 7)
    np.testing.assert_array_equal(
        read_image(tmp_path / "la.png")[0].numpy(), rgba[..., 0] / np.float32(255)
    )
    pal = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB")) / np.float32(255)
    np.testing.assert_array_equal(read_image(tmp_path / "pal.png").permute(1, 2, 0).numpy(), pal)
    jpg = _levels(tmp_path / "rgb.jpg") / np.float32(255)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.jpg").permute(1, 2, 0).numpy(), jpg)
    g16 = read_image(tmp_path / "grey16.png")
    assert g16.shape == (1, 5, 7)
    np.testing.assert_array_equal(g16[0].numpy(), grey16.astype(np.float32) / 65535)


@pytest.mark.parametrize("content", [b"not an image at all", PNG_SIGNATURE + b"\0\0\0\x0dIHDR"])
def test_read_corrupt_file_names_it(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.png"):
        read_image(path)
    with pytest.raises(ValueError, match=r"broken\.png"):
        image_size(path)


def test_read_truncated_png_names_it(tmp_path):
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(
        tmp_path / "full.png"
    )
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png"):
        read_image(tmp_path / "cut.png")


def test_read_missing_and_float_mode(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="no such file"):
        image_size(tmp_path / "missing.png")
    Image.fromarray(np.ones((3, 3), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ValueError, match=r"float\.tif.*mode 'F'"):
        read_image(tmp_path / "float.tif")


# --- write_image ---------------------------------------------------------------------------


def test_write8_matches_numpy_rounding_and_pillow(tmp_path):
    x = torch.rand(3, 6, 9, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "deep" / "er" / "x.png", x)  # creates parent folders
    expected = np.round(x.double().numpy() * 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(_levels(tmp_path / "deep" / "er" / "x.png"), expected)
    assert image_size(tmp_path / "deep" / "er" / "x.png") == (6, 9)


def test_write8_rounds_half_to_even(tmp_path):
    candidates = torch.tensor([k + 0.5 for k in range(40)], dtype=torch.float64) / 255
    halves = candidates[(candidates * 255) % 1 == 0.5][:6]  # products exactly k + 0.5
    assert len(halves) >= 4
    write_image(tmp_path / "h.png", halves.reshape(1, 1, -1))
    got = _levels(tmp_path / "h.png")[0]
    floors = np.floor(halves.numpy() * 255).astype(int)
    np.testing.assert_array_equal(got, floors + floors % 2)  # the even neighbour


def test_write16_rgb_round_trip_and_pillow_high_byte(tmp_path):
    rng = np.random.default_rng(2)
    levels = rng.integers(0, 65536, (3, 5, 8))
    x = torch.from_numpy(levels / 65535.0)
    write_image(tmp_path / "x16.png", x, bits=16)
    back = read_image(tmp_path / "x16.png")
    assert back.dtype == torch.float32 and back.shape == (3, 5, 8)
    np.testing.assert_array_equal(np.round(back.double().numpy() * 65535), levels)
    # Pillow decodes 48-bit PNGs to 8 bits by keeping the high byte: an independent reader.
    np.testing.assert_array_equal(_levels(tmp_path / "x16.png"), (levels >> 8).transpose(1, 2, 0))


def test_write16_grey_is_read_by_pillow(tmp_path):
    levels = np.random.default_rng(3).integers(0, 65536, (1, 4, 6))
    write_image(tmp_path / "g16.png", torch.from_numpy(levels / 65535.0), bits=16)
    np.testing.assert_array_equal(_levels(tmp_path / "g16.png").astype(np.int64), levels[0])


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".webp"])
def test_write8_lossless_formats_round_trip(tmp_path, suffix):
    levels = torch.randint(0, 256, (3, 4, 5), generator=torch.Generator().manual_seed(4))
    write_image(tmp_path / f"x{suffix}", levels / 255.0)
    assert torch.equal(torch.round(read_image(tmp_path / f"x{suffix}") * 255), levels.float())


def test_write_bad_input(tmp_path):
    good = torch.rand(3, 4, 4)
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", good[0])
    with pytest.raises(ValueError, match="C = 1 or 3"):
        write_image(tmp_path / "a.png", torch.rand(2, 4, 4))
    with pytest.raises(ValueError, match="bits must be 8 or 16"):
        write_image(tmp_path / "a.png", good, bits=12)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_image(tmp_path / "a.png", good + 0.5)
    with pytest.raises(ValueError, match="NaN present: True"):
        write_image(tmp_path / "a.png", torch.full((1, 2, 2), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        write_image(tmp_path / "a.png", torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"suffix must be \.png"):
        write_image(tmp_path / "a.tif", good, bits=16)
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "a.gif", good)
    assert not any(tmp_path.iterdir())  # nothing half-written


@settings(max_examples=25, deadline=None)
@given(
    channels=st.sampled_from([1, 3]),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    bits=st.sampled_from([8, 16]),
    seed=st.integers(0, 2**31),
)
def test_round_trip_error_is_half_a_level(tmp_path_factory, channels, height, width, bits, seed):
    x = torch.rand(channels, height, width, generator=torch.Generator().manual_seed(seed))
    path = tmp_path_factory.mktemp("rt") / "x.png"
    write_image(path, x, bits=bits)
    back = read_image(path)
    assert back.shape == x.shape
    top = 2**bits - 1
    assert (back.double() - x.double()).abs().max() <= 0.5 / top + 1e-7


# --- the 16-bit decoder against independently filtered files ------------------------------


def test_png16_decoder_reads_pillow_filtered_grey(tmp_path):
    ramp = np.cumsum(np.random.default_rng(5).integers(0, 3000, (30, 40)), axis=1) % 65536
    Image.fromarray(ramp.astype(np.uint16)).save(tmp_path / "g.png")  # Pillow filters rows
    decoded = read_png16((tmp_path / "g.png").read_bytes())
    np.testing.assert_array_equal(decoded[..., 0], _levels(tmp_path / "g.png"))


def _filter_row(kind, row, prior, bpp):
    """Reference PNG filter (the encoding direction), one byte at a time."""
    out = []
    for i, byte in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        p = a + b - c
        paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
        pred = [0, a, b, (a + b) // 2, paeth][kind]
        out.append((byte - pred) % 256)
    return out


def test_png16_decoder_undoes_every_filter(tmp_path):
    rng = np.random.default_rng(6)
    height, width, channels = 10, 6, 4
    levels = rng.integers(0, 65536, (height, width, channels)).astype(">u2")
    rows = levels.reshape(height, -1).view(np.uint8).astype(int).tolist()
    raw, prior = bytearray(), [0] * len(rows[0])
    for r, row in enumerate(rows):
        kind = r % 5
        raw += bytes([kind, *_filter_row(kind, row, prior, channels * 2)])
        prior = row

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    data = PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(raw)))
    data += chunk(b"IEND", b"")
    np.testing.assert_array_equal(read_png16(data), levels.astype(np.uint16))
    (tmp_path / "rgba16.png").write_bytes(data)
    rgb = read_image(tmp_path / "rgba16.png")  # alpha dropped, exact 16-bit values
    np.testing.assert_array_equal(rgb.permute(1, 2, 0).numpy(), levels[..., :3] / np.float32(65535))
    bad = bytearray(data)
    bad[40] ^= 0xFF  # inside IHDR/IDAT: the CRC no longer matches
    (tmp_path / "crc.png").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match=r"crc\.png"):
        read_image(tmp_path / "crc.png")
