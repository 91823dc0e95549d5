"""indiflow restore: output planning, batching, and errors raised before a checkpoint is read."""

from pathlib import Path

import pytest
import torch
from cli_helpers import random_images, run_cli, write_images

from indiflow.cli.image_files import batches_by_size, plan_outputs
from indiflow.data.io import write_image

# --- output planning and batching ---


def test_outputs_keep_the_input_names_as_png(tmp_path):
    inputs = [Path("in/a.jpg"), Path("in/b.png"), Path("in/c.tif")]
    assert plan_outputs(inputs, tmp_path / "out", False) == [
        tmp_path / "out" / "a.png",
        tmp_path / "out" / "b.png",
        tmp_path / "out" / "c.png",
    ]


def test_existing_outputs_are_refused_without_overwrite(tmp_path):
    (tmp_path / "b.png").write_bytes(b"")
    (tmp_path / "unrelated.png").write_bytes(b"")
    inputs = [Path("in/a.jpg"), Path("in/b.jpg")]
    with pytest.raises(ValueError, match=r"1 output file\(s\) exist already .*: b.png; pass"):
        plan_outputs(inputs, tmp_path, False)
    assert plan_outputs(inputs, tmp_path, True)[1] == tmp_path / "b.png"
    assert plan_outputs([Path("in/a.jpg")], tmp_path, False) == [tmp_path / "a.png"]


def test_two_inputs_of_one_stem_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"a.jpg and a.png would both be written to"):
        plan_outputs([Path("a.jpg"), Path("a.png")], tmp_path, False)


def test_batches_group_images_of_one_size(tmp_path):
    sizes = [(8, 8), (8, 12), (8, 8), (8, 8), (8, 12), (8, 8)]
    paths = []
    for i, (h, w) in enumerate(sizes):
        paths.append(tmp_path / f"{i}.png")
        write_image(paths[-1], torch.rand(3, h, w))
    assert list(batches_by_size(paths, 2)) == [[0, 2], [3, 5], [1, 4]]
    assert list(batches_by_size(paths, 10)) == [[0, 2, 3, 5], [1, 4]]


# --- option errors (before any checkpoint is read) ---


def restore_argv(tmp_path, *options):
    image = tmp_path / "in.png"
    if not image.exists():
        write_image(image, torch.rand(3, 8, 8))
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"not read by these tests")
    base = ["restore", "--checkpoint", str(checkpoint), "--input", str(image)]
    return [*base, "--output", str(tmp_path / "out"), *options]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tile", "16", "--overlap", "32"], "--tile 16 must be larger than --overlap 32"),
        (["--tile", "32"], "--tile 32 must be larger than --overlap 32"),
        (["--overlap", "4"], "--overlap and --tile-batch apply to tiled restoration only"),
        (["--solver", "rk4"], "argument --solver: invalid choice: 'rk4'"),
        (["--grid", "cosine"], "argument --grid: unknown grid 'cosine'"),
        (["--steps", "0"], "argument --steps: must be at least 1"),
        (["--adaptive", "--steps", "5"], "--adaptive chooses its own steps"),
        (["--adaptive", "--grid", "uniform"], "--adaptive chooses its own steps"),
        (["--adaptive", "--solver", "euler"], "--adaptive needs a solver with an error estimate"),
        (["--rtol", "1e-3"], "--rtol and --atol apply to --adaptive only"),
        (["--bits", "12"], "argument --bits: invalid choice: 12"),
        (["--noise", "gaussian"], "argument --noise: invalid choice"),
    ],
)
def test_option_errors_are_usage_errors(options, message, tmp_path, capsys):
    status, _, err = run_cli(restore_argv(tmp_path, *options), capsys)
    assert status == 2
    assert "usage: indiflow restore" in err and message in err


def test_missing_input_and_checkpoint(tmp_path, capsys):
    argv = restore_argv(tmp_path)
    argv[argv.index("--input") + 1] = str(tmp_path / "nothing")
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and "argument --input: " in err and "no such file or folder" in err
    argv = restore_argv(tmp_path)
    argv[argv.index("--checkpoint") + 1] = str(tmp_path / "none.pt")
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and "argument --checkpoint: " in err


def test_an_input_that_is_not_an_image(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    argv = restore_argv(tmp_path)
    argv[argv.index("--input") + 1] = str(notes)
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and f"--input {str(notes)!r} is not an image file" in err


def test_cuda_without_a_gpu_is_a_clean_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gt = write_images(tmp_path / "gt", random_images(1))
    argv = ["evaluate", "--gt", gt, "--pred", gt, "--device", "cuda"]
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and "indiflow: error: --device cuda was asked for" in err
