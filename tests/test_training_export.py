"""Weights files (``export_weights``, ``indiflow export``) and shipped weights."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import random_images, run_cli, write_images
from training_tiny import tiny_config

import indiflow as ind
from indiflow.training import (
    CheckpointError,
    export_weights,
    load_checkpoint,
    load_model,
    shipped_weights,
    train,
)
from indiflow.training.export import WEIGHTS_FORMAT, resolve_weights


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(tiny_config("train.steps=3"), out_dir=out).checkpoint


def _outputs(model, noise):
    y = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    grid = ind.FixedSteps(ind.TimeGrid.uniform(3))
    return ind.restore(model, y, ind.Euler(), grid, noise=noise, generator=torch.Generator())


def test_exported_float32_weights_restore_exactly_as_the_checkpoint(checkpoint, tmp_path):
    path = export_weights(checkpoint, tmp_path / "w.pt")
    state = torch.load(path, weights_only=True)
    assert state["format"] == WEIGHTS_FORMAT and sorted(state) == [
        "config",
        "ema",
        "format",
        "step",
        "version",
    ]
    assert state["step"] == 3 and path.stat().st_size < checkpoint.stat().st_size / 2
    original, noise, config = load_model(checkpoint)
    exported, noise2, config2 = load_model(path)
    assert config2 == config and noise2 == noise
    for (name, a), (_, b) in zip(
        original.state_dict().items(), exported.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert torch.equal(_outputs(original, noise), _outputs(exported, noise))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_load_back_as_float32_within_rounding(checkpoint, tmp_path, dtype):
    path = export_weights(checkpoint, tmp_path / "w.pt", dtype=dtype)
    stored = torch.load(path, weights_only=True)["ema"]
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {getattr(torch, dtype)}
    original, _, _ = load_model(checkpoint)
    exported, _, _ = load_model(path)
    relative = 2.0**-8 if dtype == "bfloat16" else 2.0**-11  # half a unit in the last place
    for name, a in original.state_dict().items():
        b = exported.state_dict()[name]
        assert b.dtype == a.dtype
        assert torch.all((a - b).abs() <= relative * a.abs() + 1e-7), name


def test_weights_files_refuse_what_they_cannot_do(checkpoint, tmp_path):
    path = export_weights(checkpoint, tmp_path / "w.pt")
    with pytest.raises(ValueError, match=r"holds only the EMA weights; drop the request"):
        load_model(path, ema=False)
    with pytest.raises(CheckpointError, match=r"is not an indiflow training checkpoint"):
        load_checkpoint(path)  # so resuming from it is refused
    with pytest.raises(ValueError, match=r"dtype must be one of float32, float16, bfloat16"):
        export_weights(checkpoint, tmp_path / "x.pt", dtype="int8")
    with pytest.raises(ValueError, match=r"is not a file"):
        export_weights(tmp_path / "missing.pt", tmp_path / "x.pt")
    newer = torch.load(path, weights_only=True) | {"version": 99}
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match=r"has version 99; this indiflow reads versions up"):
        load_model(tmp_path / "newer.pt")
    broken = {k: v for k, v in newer.items() if k != "ema"} | {"version": 1}
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=r"lacks the key\(s\) ema"):
        load_model(tmp_path / "broken.pt")


def test_shipped_weights_resolve_by_name_and_other_names_stay_paths(tmp_path):
    assert resolve_weights(tmp_path / "nothing.pt") == tmp_path / "nothing.pt"
    assert "sr4_photos_cpu" in shipped_weights()
    for name in shipped_weights():
        path = resolve_weights(name)
        assert path.is_file() and path.name == f"{name}.pt"
        model, _, config = load_model(name)
        assert not model.training and config.model["channels"] == 3


def test_cli_export_then_restore_with_the_weights_file(checkpoint, tmp_path, capsys):
    status, out, err = run_cli(
        ["export", checkpoint.parent, tmp_path / "w.pt", "--dtype", "float16"], capsys
    )
    assert status == 0, err
    assert f"wrote {tmp_path / 'w.pt'}" in out and "float16" in out and checkpoint.name in out
    inputs = write_images(tmp_path / "lq", random_images(2, shape=(3, 16, 16)))
    status, _, err = run_cli(
        [
            "restore",
            "--checkpoint",
            tmp_path / "w.pt",
            "--input",
            inputs,
            "--output",
            tmp_path / "sr",
            "--steps",
            "2",
        ],
        capsys,
    )
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "sr").iterdir()) == ["img00.png", "img01.png"]


def test_cli_export_and_restore_reject_bad_arguments(checkpoint, tmp_path, capsys):
    status, _, err = run_cli(["export", checkpoint, tmp_path], capsys)
    assert status == 2 and "is a folder; give a file name" in err
    status, _, err = run_cli(["export", checkpoint, tmp_path / "w.pt", "--dtype", "int8"], capsys)
    assert status == 2 and "invalid choice: 'int8'" in err
    status, _, err = run_cli(
        ["restore", "--checkpoint", "no_such_model", "--input", tmp_path, "--output", tmp_path],
        capsys,
    )
    assert status == 2 and "'no_such_model': no such file or folder, and no shipped weights" in err
