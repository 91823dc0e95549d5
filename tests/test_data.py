"""indiflow.data datasets: PairedFolders, SyntheticPairs, bundled photos, augmentation."""

import builtins

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

import indiflow as ind
from indiflow.data import (
    PATCHES_PER_IMAGE,
    PairedFolders,
    SyntheticPairs,
    bundled_photo_names,
    bundled_photos,
    dihedral,
    item_generator,
    write_image,
)
from indiflow.data import photos as photos_module
from indiflow.data.augment import random_crop_box, random_dihedral


def add_noise(x, generator=None):
    """A tiny stand-in degradation with the contract op(x, generator=None) -> y."""
    return (x + 0.1 * torch.randn(x.shape, generator=generator)).clamp(0, 1)


def _levels_image(seed, shape):
    """An image whose values are exact 8-bit levels, so PNG round trips are exact."""
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed)) / 255.0


def _is_crop_of(patch, image):
    """True if patch == dihedral(image[..., t:t+p, l:l+p], k) for some t, l, k."""
    p = patch.shape[-1]
    height, width = image.shape[-2:]
    return any(
        torch.equal(dihedral(image[..., t : t + p, l : l + p], k), patch)
        for t in range(height - p + 1)
        for l in range(width - p + 1)  # noqa: E741
        for k in range(8)
    )


# --- augmentation --------------------------------------------------------------------------


def test_dihedral_matches_numpy_and_gives_eight_distinct_images():
    a = torch.arange(12.0).reshape(3, 4)
    for k in range(8):
        rotated = np.rot90(a.numpy(), k % 4)
        expected = np.fliplr(rotated) if k >= 4 else rotated
        np.testing.assert_array_equal(dihedral(a, k).numpy(), expected)
    square = torch.arange(9.0).reshape(1, 3, 3)
    assert len({tuple(dihedral(square, k).flatten().tolist()) for k in range(8)}) == 8
    with pytest.raises(ValueError, match=r"0\.\.7"):
        dihedral(a, 8)
    with pytest.raises(ValueError, match=">= 2 dimensions"):
        dihedral(torch.zeros(3), 0)


def test_item_generator_depends_on_the_triple_only():
    def draw(*triple):
        return torch.rand(4, generator=item_generator(*triple))

    assert torch.equal(draw(0, 1, 2), draw(0, 1, 2))
    assert not torch.equal(draw(0, 1, 2), draw(0, 2, 1))
    assert not torch.equal(draw(0, 1, 2), draw(0, 1, 3))
    assert not torch.equal(draw(0, 1, 2), draw(1, 1, 2))
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        item_generator(0, -1, 0)
    with pytest.raises(TypeError, match="index must be an int"):
        item_generator(0, 0, 1.5)


# --- PairedFolders -------------------------------------------------------------------------


@pytest.fixture
def pair_dirs(tmp_path):
    gt, lq = tmp_path / "gt", tmp_path / "lq"
    for i, (h, w) in enumerate([(6, 7), (7, 8), (6, 6)]):
        x = _levels_image(i, (3, h, w))
        write_image(gt / f"im{i}.png", x)
        write_image(lq / f"im{i}.bmp", 1 - x)  # exact: 1 - k/255 = (255 - k)/255
    return gt, lq


def test_paired_folders_whole_images_match_files(pair_dirs):
    gt, lq = pair_dirs
    data = PairedFolders(gt, lq, augment=False)
    assert len(data) == 3 and data.names == ["im0.png", "im1.png", "im2.png"]
    for i in range(3):
        x, y = data[i]
        assert x.dtype == torch.float32
        assert torch.equal(x, ind.data.read_image(gt / f"im{i}.png"))
        torch.testing.assert_close(y, 1 - x, rtol=0, atol=1e-6)


def test_paired_folders_crops_and_flips_both_alike(pair_dirs):
    gt, lq = pair_dirs
    data = PairedFolders(gt, lq, patch=4, seed=3)
    seen = set()
    for epoch in range(4):
        data.set_epoch(epoch)
        for i in range(len(data)):
            x, y = data[i]
            assert x.shape == y.shape == (3, 4, 4)
            torch.testing.assert_close(y, 1 - x, rtol=0, atol=1e-6)
            assert _is_crop_of(x, ind.data.read_image(gt / f"im{i}.png"))
            seen.add(tuple(x.flatten().tolist()))
    assert len(seen) > 6  # epochs draw fresh crops
    again = PairedFolders(gt, lq, patch=4, seed=3)
    again.set_epoch(3)
    assert torch.equal(again[1][0], data[1][0])


def test_paired_folders_bad_input(tmp_path, pair_dirs):
    gt, lq = pair_dirs
    with pytest.raises(ValueError, match=r"patch 7 is larger than image .*im0\.png.*\(6, 7\)"):
        PairedFolders(gt, lq, patch=7)
    with pytest.raises(ValueError, match="does not exist"):
        PairedFolders(tmp_path / "missing", lq)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image"):
        PairedFolders(tmp_path / "empty", lq)
    with pytest.raises(IndexError):
        PairedFolders(gt, lq)[3]

    write_image(gt / "extra.png", torch.zeros(3, 6, 6))
    with pytest.raises(ValueError, match=r"extra\.png.*no degraded partner"):
        PairedFolders(gt, lq)
    write_image(lq / "extra.png", torch.zeros(3, 5, 6))
    with pytest.raises(ValueError, match=r"extra\.png.*\(5, 6\).*\(6, 6\)"):
        PairedFolders(gt, lq)
    write_image(lq / "extra.png", torch.zeros(1, 6, 6))
    with pytest.raises(ValueError, match=r"extra\.png.*3 channel"):
        PairedFolders(gt, lq)[0]  # sorted: extra.png is item 0
    write_image(lq / "only_lq.png", torch.zeros(3, 6, 6))
    with pytest.raises(ValueError, match=r"only_lq\.png.*no clean partner"):
        PairedFolders(gt, lq)
    (lq / "only_lq.png").unlink()
    write_image(lq / "extra.jpg", torch.zeros(3, 6, 6))
    with pytest.raises(ValueError, match="two images named 'extra'"):
        PairedFolders(gt, lq)
    (lq / "extra.jpg").unlink()
    (gt / "extra.png").write_bytes(b"garbage bytes")
    with pytest.raises(ValueError, match=r"extra\.png"):
        PairedFolders(gt, lq)


# --- SyntheticPairs ------------------------------------------------------------------------


@pytest.fixture
def clean_images():
    return [_levels_image(10, (3, 9, 11)), _levels_image(11, (3, 12, 8))]


def test_synthetic_item_follows_the_documented_draw_order(clean_images):
    data = SyntheticPairs(clean_images, add_noise, patch=5, seed=7)
    data.set_epoch(2)
    for index in (0, 3):
        x, y = data[index]
        g = item_generator(7, 2, index)
        image = clean_images[index % 2]
        top, left = random_crop_box(*image.shape[-2:], 5, g)
        expected = dihedral(image[:, top : top + 5, left : left + 5], random_dihedral(g))
        assert torch.equal(x, expected)
        assert torch.equal(y, add_noise(expected[None], generator=g)[0])
    assert len(data) == PATCHES_PER_IMAGE * 2
    assert len(SyntheticPairs(clean_images, add_noise, patch=5, length=10)) == 10


def _batches(data, workers):
    loader = DataLoader(data, batch_size=3, num_workers=workers, shuffle=False)
    return [torch.cat(batch) for batch in loader]


def test_synthetic_batches_identical_for_any_worker_count(clean_images):
    data = SyntheticPairs(clean_images, add_noise, patch=4, length=12, seed=1)
    data.set_epoch(5)
    reference = _batches(data, 0)
    for workers in (1, 2):
        batches = _batches(data, workers)
        assert len(batches) == len(reference)
        assert all(torch.equal(a, b) for a, b in zip(batches, reference, strict=True))
    data.set_epoch(6)
    assert not torch.equal(_batches(data, 0)[0], reference[0])


def test_synthetic_distributed_ranks_partition_the_epoch(clean_images):
    data = SyntheticPairs(clean_images, add_noise, patch=4, length=10, seed=2)
    single = SyntheticPairs(clean_images, add_noise, patch=4, length=10, seed=2)
    for epoch in (0, 1):
        data.set_epoch(epoch)
        single.set_epoch(epoch)
        whole = DistributedSampler(single, num_replicas=1, rank=0, seed=9)
        whole.set_epoch(epoch)
        ranks = []
        for rank in (0, 1):
            sampler = DistributedSampler(data, num_replicas=2, rank=rank, seed=9)
            sampler.set_epoch(epoch)
            ranks.append(list(sampler))
        assert len(ranks[0]) == len(ranks[1]) == 5
        assert set(ranks[0]).isdisjoint(ranks[1])
        assert sorted(ranks[0] + ranks[1]) == sorted(whole) == list(range(10))
        for index in ranks[0] + ranks[1]:
            assert all(torch.equal(a, b) for a, b in zip(data[index], single[index], strict=True))


def test_synthetic_reads_a_folder(tmp_path, clean_images):
    for i, image in enumerate(clean_images):
        write_image(tmp_path / f"{i}.png", image)
    data = SyntheticPairs(tmp_path, add_noise, patch=None, augment=False)
    x = data[1][0]
    assert torch.equal(x, clean_images[1])
    x.zero_()  # items are copies: the held image is unchanged
    assert torch.equal(data[1][0], clean_images[1])


def test_synthetic_bad_input(tmp_path, clean_images):
    with pytest.raises(ValueError, match="empty"):
        SyntheticPairs([], add_noise)
    with pytest.raises(TypeError, match="list of"):
        SyntheticPairs(torch.rand(2, 3, 8, 8), add_noise)
    with pytest.raises(TypeError, match="floating-point"):
        SyntheticPairs([torch.zeros(3, 8, 8, dtype=torch.uint8)], add_noise)
    with pytest.raises(ValueError, match=r"images\[0\] must have shape"):
        SyntheticPairs([torch.rand(8, 8)], add_noise)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SyntheticPairs([torch.rand(3, 8, 8) * 2], add_noise)
    with pytest.raises(ValueError, match="channel counts"):
        SyntheticPairs([torch.rand(3, 8, 8), torch.rand(1, 8, 8)], add_noise)
    with pytest.raises(ValueError, match=r"larger than image images\[1\]"):
        SyntheticPairs(clean_images, add_noise, patch=9)
    with pytest.raises(TypeError, match="callable"):
        SyntheticPairs(clean_images, "bicubic")
    with pytest.raises(ValueError, match="length must be >= 1"):
        SyntheticPairs(clean_images, add_noise, patch=4, length=0)
    with pytest.raises(ValueError, match="does not exist"):
        SyntheticPairs(tmp_path / "missing", add_noise)
    shrink = SyntheticPairs(clean_images, lambda x, generator=None: x[..., ::2, ::2], patch=4)
    with pytest.raises(ValueError, match="input's shape"):
        shrink[0]
    with pytest.raises(IndexError):
        SyntheticPairs(clean_images, add_noise, patch=4, length=3)[3]


# --- bundled photos ------------------------------------------------------------------------


def test_bundled_photos_are_the_documented_files():
    train, test = bundled_photo_names("train"), bundled_photo_names("test")
    assert len(train) == 5 and len(test) == 4 and set(train).isdisjoint(test)
    for split in ("train", "test"):
        images = bundled_photos(split)
        assert len(images) == len(bundled_photo_names(split))
        for image, photo in zip(
            images, [p for p in photos_module.BUNDLED_PHOTOS if p.split == split], strict=True
        ):
            assert image.dtype == torch.float32 and image.shape[0] == 3
            assert image.shape[1] % 4 == 0 and image.shape[2] % 4 == 0
            pixels = np.asarray(Image.open(photos_module.bundled_photo_path(photo)).convert("RGB"))
            assert pixels.shape[0] - image.shape[1] < 4 and pixels.shape[1] - image.shape[2] < 4
            crop = pixels[: image.shape[1], : image.shape[2]] / np.float32(255)
            np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), crop)


def test_bundled_photos_return_fresh_copies():
    first = bundled_photos("test")
    first[0].zero_()
    assert bundled_photos("test")[0].max() > 0


def test_bundled_photos_bad_split_and_missing_package(monkeypatch):
    for bad in ("val", "TEST", None):
        with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
            bundled_photos(bad)
        with pytest.raises(ValueError, match="split must be"):
            bundled_photo_names(bad)
    photos_module._read_cropped.cache_clear()
    monkeypatch.setattr(photos_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[images\]"'):
        bundled_photos("train")
    monkeypatch.undo()
    photos_module._read_cropped.cache_clear()


def test_bundled_photos_import_none_of_the_packages(monkeypatch):
    forbidden = {"skimage", "sklearn", "matplotlib", "pooch"}
    real_import = builtins.__import__
    attempts = []

    def guarded_import(name, *args, **kwargs):
        if name.split(".")[0] in forbidden:
            attempts.append(name)
        return real_import(name, *args, **kwargs)

    photos_module._read_cropped.cache_clear()
    monkeypatch.setattr(builtins, "__import__", guarded_import)
    assert len(bundled_photos("train")) == 5
    monkeypatch.undo()
    assert attempts == []
