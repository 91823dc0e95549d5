"""indiflow restore on real runs: a checkpoint of the real training engine, outputs checked
against what the library computes, and the errors that need a checkpoint or images to arise."""

import pytest
import torch
from cli_helpers import random_images, run_cli, write_images, write_tiny_config
from cli_restore_cases import designed_solver, save_design, save_solver_design

import indiflow as ind
from indiflow.cli.image_files import batches_by_size
from indiflow.data.io import read_image, write_image

# --- real runs with a checkpoint of the real training engine ---


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from indiflow.training import load_config, train

    folder = tmp_path_factory.mktemp("trained")
    config = load_config(write_tiny_config(folder))
    return train(config, out_dir=folder / "run").checkpoint


@pytest.fixture
def inputs(tmp_path):
    images = random_images(2, shape=(3, 24, 24), seed=3)
    images["odd"] = torch.rand(3, 16, 24, generator=torch.Generator().manual_seed(4))
    return write_images(tmp_path / "lq", images)


def expected_outputs(
    checkpoint, folder, batch, seed, solver, controller, ema=True, noise=True, **tiling
):
    """What the library gives for the images of ``folder``, batched as the command batches."""
    from indiflow.training import load_model

    model, trained_noise, _ = load_model(checkpoint, ema=ema)
    paths = sorted(folder.iterdir())
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for indices in batches_by_size(paths, batch):
        y = torch.stack([read_image(paths[i]) for i in indices])
        x = ind.restore(
            model,
            y,
            solver,
            controller,
            noise=trained_noise if noise else None,
            generator=generator,
            **tiling,
        )
        for i, image in zip(indices, x.clamp(0, 1), strict=True):
            out[paths[i].stem + ".png"] = (torch.round(image.double() * 255) / 255).float()
    return out


def check_outputs(folder, expected):
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
    assert all(image.std() > 0.05 for image in expected.values())  # not clamped flat
    for name, image in expected.items():
        torch.testing.assert_close(read_image(folder / name), image, atol=1e-6, rtol=0)


def design_file(folder):
    return save_design(folder / "design.json", ind.TimeGrid((1.0, 0.5, 0.1, 0.0)))


@pytest.mark.parametrize(
    ("options", "solver", "controller", "library_options"),
    [
        ([], ind.Euler(), ind.FixedSteps(ind.TimeGrid.uniform(20)), {}),
        (
            ["--steps", "3", "--noise", "none"],
            ind.Euler(),
            ind.FixedSteps(ind.TimeGrid.uniform(3)),
            {"noise": False},
        ),
        (
            ["--steps", "2", "--no-ema", "--seed", "9"],
            ind.Euler(),
            ind.FixedSteps(ind.TimeGrid.uniform(2)),
            {"ema": False, "seed": 9},
        ),
        (
            ["--solver", "heun", "--grid", "power:2", "--steps", "2"],
            ind.Heun(),
            ind.FixedSteps(ind.TimeGrid.power(2, 2.0)),
            {},
        ),
        (
            ["--solver", "exp_multistep3", "--grid", "log_uniform:0.05", "--steps", "4"],
            ind.ExpMultistep3(),
            ind.FixedSteps(ind.TimeGrid.log_uniform(4, 0.05)),
            {},
        ),
        (
            ["--solver", "heun", "--grid", "DESIGN"],
            ind.Heun(),
            ind.FixedSteps(ind.TimeGrid((1.0, 0.5, 0.1, 0.0))),
            {},
        ),
        (
            ["--adaptive", "--rtol", "1e-2", "--atol", "1e-3"],
            ind.DormandPrince(),
            ind.PerSampleAdaptive(rtol=1e-2, atol=1e-3),
            {},
        ),
        (
            ["--steps", "2", "--tile", "16", "--overlap", "8", "--tile-batch", "2"],
            ind.Euler(),
            ind.FixedSteps(ind.TimeGrid.uniform(2)),
            {"tile": 16, "overlap": 8, "tile_batch": 2},
        ),
    ],
    ids=[
        "default",
        "noise-none",
        "no-ema",
        "heun-power",
        "multistep-log",
        "design",
        "adaptive",
        "tiled",
    ],
)
def test_restore_writes_what_the_library_computes(
    options, solver, controller, library_options, checkpoint, inputs, tmp_path, capsys
):
    options = [str(design_file(tmp_path)) if o == "DESIGN" else o for o in options]
    out = tmp_path / "out"
    argv = ["restore", "--checkpoint", checkpoint, "--input", inputs, "--output", out]
    status, stdout, err = run_cli([*argv, "--batch", "2", "--device", "cpu", *options], capsys)
    assert status == 0, err
    assert f"restored 3 image(s) from {checkpoint} into {out}" in stdout
    assert "restore" in err  # progress bar
    library_options = {"seed": 0, **library_options}
    expected = expected_outputs(
        checkpoint, inputs, 2, library_options.pop("seed"), solver, controller, **library_options
    )
    check_outputs(out, expected)


def test_a_single_file_keeps_its_name_as_png(checkpoint, tmp_path, capsys):
    image = tmp_path / "photo.jpg"
    write_image(image, torch.rand(3, 16, 16))
    argv = ["restore", "--checkpoint", checkpoint, "--input", image, "--output", tmp_path / "out"]
    status, _, err = run_cli([*argv, "--steps", "1", "--device", "cpu"], capsys)
    assert status == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["photo.png"]


def test_sixteen_bit_output(checkpoint, inputs, tmp_path, capsys):
    argv = ["restore", "--checkpoint", checkpoint, "--input", inputs, "--output", tmp_path / "o"]
    status, _, err = run_cli([*argv, "--steps", "1", "--bits", "16", "--device", "cpu"], capsys)
    assert status == 0, err
    x = read_image(tmp_path / "o" / "odd.png")
    assert torch.equal(torch.round(x * 65535) / 65535, x)
    assert not torch.equal(torch.round(x * 255) / 255, x)  # finer than 8 bits


def test_existing_outputs_need_overwrite(checkpoint, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    write_images(out, {"img01": torch.zeros(3, 24, 24)})
    argv = ["restore", "--checkpoint", checkpoint, "--input", inputs, "--output", out]
    argv += ["--steps", "1", "--device", "cpu"]
    status, _, err = run_cli(argv, capsys)
    assert status == 2
    assert err.startswith("indiflow: error: 1 output file(s) exist already") and "img01.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["img01.png"]  # nothing written
    status, _, err = run_cli([*argv, "--overwrite"], capsys)
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["img00.png", "img01.png", "odd.png"]
    assert read_image(out / "img01.png").max() > 0


def test_a_grey_image_for_an_rgb_network_is_named(checkpoint, tmp_path, capsys):
    folder = write_images(tmp_path / "lq", {"grey": torch.rand(1, 16, 16)})
    argv = ["restore", "--checkpoint", checkpoint, "--input", folder, "--output", tmp_path / "o"]
    status, _, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert status == 2
    assert "grey.png has 1 channel(s) but the network of" in err and "takes 3" in err


def test_a_truncated_checkpoint_is_a_clean_error(checkpoint, inputs, tmp_path, capsys):
    broken = tmp_path / "step_00000002.pt"
    broken.write_bytes(checkpoint.read_bytes()[:1000])
    argv = ["restore", "--checkpoint", broken, "--input", inputs, "--output", tmp_path / "o"]
    status, _, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert status == 2
    assert err.startswith("indiflow: error: ") and str(broken) in err and "Traceback" not in err


def test_an_input_folder_without_images(checkpoint, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["restore", "--checkpoint", checkpoint, "--input", tmp_path / "empty"]
    status, _, err = run_cli([*argv, "--output", tmp_path / "o"], capsys)
    assert status == 2 and "holds no image file" in err


def test_a_run_folder_gives_its_newest_valid_checkpoint(checkpoint, inputs, tmp_path, capsys):
    run = checkpoint.parent
    argv = ["restore", "--checkpoint", run, "--input", inputs, "--output", tmp_path / "o"]
    status, stdout, err = run_cli([*argv, "--steps", "1", "--device", "cpu"], capsys)
    assert status == 0, err
    assert f"from {checkpoint} into" in stdout and checkpoint.name == "step_00000002.pt"
    empty = tmp_path / "empty_run"
    empty.mkdir()
    argv[2], argv[6] = empty, tmp_path / "o2"
    status, _, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert status == 2 and "holds no valid checkpoint" in err


def test_a_corrupt_image_is_named_before_the_network_runs(checkpoint, tmp_path, capsys):
    folder = write_images(tmp_path / "lq", random_images(1))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    argv = ["restore", "--checkpoint", checkpoint, "--input", folder, "--output", tmp_path / "o"]
    status, _, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert status == 2 and "cannot read image" in err and "broken.png" in err
    assert not (tmp_path / "o").exists()


def test_restore_with_a_solver_design(checkpoint, inputs, tmp_path, capsys):
    solver = designed_solver()
    grid = ind.TimeGrid(solver.evaluation_times)
    design = save_solver_design(tmp_path / "s.json", solver, grid)
    out = tmp_path / "out"
    argv = ["restore", "--checkpoint", checkpoint, "--input", inputs, "--output", out]
    status, stdout, err = run_cli([*argv, "--batch", "2", "--grid", design], capsys)
    assert status == 0, err
    assert "the design's solver" in stdout
    expected = expected_outputs(checkpoint, inputs, 2, 0, solver, ind.FixedSteps(grid))
    check_outputs(out, expected)
    status, _, err = run_cli([*argv, "--grid", design, "--solver", "heun"], capsys)
    assert status == 2 and "--solver heun contradicts the solver design" in err
