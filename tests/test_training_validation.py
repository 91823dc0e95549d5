"""Validation: the held-out batch, PSNR after 1 and N Euler steps, and folder-based training."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from training_tiny import tiny_config

from indiflow.data import write_image
from indiflow.interpolant import ConstantNoise
from indiflow.training import train
from indiflow.training.batches import validation_batch
from indiflow.training.metrics_log import MetricsLog
from indiflow.training.validation import validate, validation_columns


def test_one_step_validation_equals_the_network_at_t1_on_the_noisy_start():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    y = x + 0.1 * torch.randn_like(x)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)

    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(x_t) * t.view(-1, 1, 1, 1)

    scores = validate(model, x, y, noise=ConstantNoise(0.05), steps=3, seed=7)
    assert list(scores) == validation_columns(3) == ["val_psnr_1", "val_psnr_3"]
    eta = torch.randn(y.shape, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        one_step = model(y + 0.05 * eta, torch.ones(2)).clamp(0, 1)
    mse = (one_step - x).square().flatten(1).mean(1).double()
    assert scores["val_psnr_1"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()))
    assert scores["val_psnr_3"] != scores["val_psnr_1"]
    assert validation_columns(1) == ["val_psnr_1"]


def test_bundled_validation_batch_is_fixed_centre_crops_of_the_test_photos():
    config = tiny_config("validation.every=2", "validation.photos=2", "validation.patch=24")
    x, y = validation_batch(config)
    again_x, again_y = validation_batch(config)
    assert x.shape == y.shape == (2, 3, 24, 24)
    assert torch.equal(x, again_x) and torch.equal(y, again_y)
    assert validation_batch(tiny_config("validation.every=0")) is None
    with pytest.raises(ValueError, match="only 4 held-out images"):
        validation_batch(tiny_config("validation.every=2", "validation.photos=5"))
    with pytest.raises(ValueError, match=r"validation\.patch = 4000 exceeds"):
        validation_batch(tiny_config("validation.every=2", "validation.patch=4000"))


def _folder_pairs(root, count: int, size: int) -> None:
    generator = torch.Generator().manual_seed(1)
    for i in range(count):
        x = torch.rand(3, size, size, generator=generator)
        write_image(root / "gt" / f"{i}.png", x)
        write_image(root / "lq" / f"{i}.png", (x * 0.8 + 0.1))


def test_training_from_folders_validates_and_logs_psnr(tmp_path):
    _folder_pairs(tmp_path / "train", 8, 24)
    _folder_pairs(tmp_path / "val", 2, 20)
    config = tiny_config(
        'data.source="folders"',
        f'data.gt_dir="{tmp_path / "train" / "gt"}"',
        f'data.lq_dir="{tmp_path / "train" / "lq"}"',
        f'data.val_gt_dir="{tmp_path / "val" / "gt"}"',
        f'data.val_lq_dir="{tmp_path / "val" / "lq"}"',
        "train.steps=4",
        "train.log_every=2",
        "validation.every=2",
        "validation.steps=2",
        "validation.photos=2",
        "validation.patch=16",
    )
    result = train(config, out_dir=tmp_path / "run")
    assert set(result.validation) == {"val_psnr_1", "val_psnr_2"}
    with open(tmp_path / "run" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["step"] for row in rows] == ["2", "4"]
    for row in rows:
        assert math.isfinite(float(row["val_psnr_1"])) and math.isfinite(float(row["val_psnr_2"]))
    assert float(rows[-1]["val_psnr_2"]) == pytest.approx(result.validation["val_psnr_2"])


def test_a_dataset_smaller_than_the_global_batch_is_refused(tmp_path):
    _folder_pairs(tmp_path, 3, 16)
    config = tiny_config(
        'data.source="folders"',
        f'data.gt_dir="{tmp_path / "gt"}"',
        f'data.lq_dir="{tmp_path / "lq"}"',
    )
    with pytest.raises(ValueError, match=r"has 3 pairs, fewer than train\.batch = 4"):
        train(config, out_dir=tmp_path / "run")


def _rows(path) -> list[list[str]]:
    with open(path, newline="") as file:
        return list(csv.reader(file))


def test_metrics_log_drops_rows_past_the_resume_step_and_sets_other_columns_aside(tmp_path):
    log = MetricsLog(tmp_path, ["loss", "lr"], start_step=0, tensorboard=False)
    for step in (1, 2, 3):
        log.write(step, {"loss": step / 2})
    MetricsLog(tmp_path, ["loss", "lr"], start_step=2, tensorboard=False)
    assert _rows(tmp_path / "metrics.csv") == [
        ["step", "loss", "lr"],
        ["1", "0.5", ""],
        ["2", "1.0", ""],
    ]
    changed = MetricsLog(tmp_path, ["loss", "val_psnr_1"], start_step=2, tensorboard=False)
    assert _rows(tmp_path / "metrics_before_step2.csv")[1:] == [["1", "0.5", ""], ["2", "1.0", ""]]
    changed.write(3, {"val_psnr_1": float("nan")})
    assert _rows(tmp_path / "metrics.csv") == [["step", "loss", "val_psnr_1"], ["3", "", "nan"]]
