"""indiflow restore: solver and grid names, option checks, output planning, and real runs."""

import argparse
import json
from pathlib import Path

import pytest
import torch
from cli_helpers import random_images, run_cli, write_images, write_tiny_config

import indiflow as ind
from indiflow.cli.image_files import batches_by_size, plan_outputs
from indiflow.cli.schedule import (
    DEFAULT_STEPS,
    SOLVERS,
    build_controller,
    parse_grid,
    solver_names_with_error_estimate,
)
from indiflow.data.io import read_image, write_image


def save_design(path, grid):
    design = ind.GridDesign(
        grid=grid,
        solver="Euler()",
        steps=grid.steps,
        evaluations_per_sample=float(grid.steps),
        pilot_size=8,
        pilot_error=0.1,
        start="uniform",
        start_error=0.2,
        objective_evaluations=3,
    )
    path.write_text(design.to_json())
    return path


# --- names and grids ---


def test_every_solver_name_builds_its_solver():
    expected = {
        "euler": ind.Euler(),
        "heun": ind.Heun(),
        "bogacki_shampine": ind.BogackiShampine(),
        "dormand_prince": ind.DormandPrince(),
        "exp_multistep2": ind.ExpMultistep2(),
        "exp_multistep3": ind.ExpMultistep3(),
        "exp_multistep4": ind.ExpMultistep4(),
    }
    assert {name: cls() for name, cls in SOLVERS.items()} == expected


def test_adaptive_solvers_are_those_with_an_error_estimate():
    names = solver_names_with_error_estimate()
    assert "euler" not in names
    assert {"heun", "bogacki_shampine", "dormand_prince"} <= set(names)


@pytest.mark.parametrize(
    ("text", "grid"),
    [
        ("uniform", ind.TimeGrid.uniform(7)),
        ("power:2.5", ind.TimeGrid.power(7, 2.5)),
        ("log_uniform:0.01", ind.TimeGrid.log_uniform(7, 0.01)),
    ],
)
def test_grid_specs_build_the_library_grids(text, grid):
    assert parse_grid(text).build(7) == grid


def test_a_saved_design_gives_its_own_grid(tmp_path):
    grid = ind.TimeGrid((1.0, 0.6, 0.25, 0.05, 0.0))
    spec = parse_grid(str(save_design(tmp_path / "g.json", grid)))
    assert spec.build(99) == grid
    controller = build_controller(spec, None, False, 1e-3, 1e-6)
    assert controller == ind.FixedSteps(grid)
    with pytest.raises(ValueError, match="--steps 5 contradicts the grid design"):
        build_controller(spec, 5, False, 1e-3, 1e-6)
    assert build_controller(spec, 4, False, 1e-3, 1e-6) == ind.FixedSteps(grid)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cosine", "unknown grid 'cosine'; use one of uniform, power:RHO"),
        ("power", "unknown grid 'power'"),
        ("power:", "unknown grid 'power:'"),
        ("power:-1", "RHO in 'power:-1' must be > 0"),
        ("power:abc", "RHO in 'power:abc' must be a finite number"),
        ("log_uniform:1.5", r"TMIN in 'log_uniform:1.5' must be in \(0, 1\)"),
        ("log_uniform:nan", "must be a finite number"),
        ("missing.json", "grid design file 'missing.json' does not exist"),
    ],
)
def test_bad_grid_specs(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_grid(text)


def test_a_json_file_that_is_not_a_design(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"grid": [1, 0]}')
    with pytest.raises(argparse.ArgumentTypeError, match=r"is not a saved indiflow\.GridDesign"):
        parse_grid(str(path))
    path.write_text("not json")
    with pytest.raises(argparse.ArgumentTypeError, match=r"is not a saved indiflow\.GridDesign"):
        parse_grid(str(path))


def test_controllers():
    assert build_controller(parse_grid("uniform"), None, False, 1, 1) == ind.FixedSteps(
        ind.TimeGrid.uniform(DEFAULT_STEPS)
    )
    assert build_controller(parse_grid("power:2"), 3, False, 1, 1) == ind.FixedSteps(
        ind.TimeGrid.power(3, 2.0)
    )
    assert build_controller(parse_grid("uniform"), None, True, 1e-2, 1e-4) == ind.PerSampleAdaptive(
        rtol=1e-2, atol=1e-4
    )


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


def test_an_input_that_is_not_an_image(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    argv = restore_argv(tmp_path)
    argv[argv.index("--input") + 1] = str(notes)
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and f"--input {str(notes)!r} is not an image file" in err


def test_a_corrupt_image_is_named_before_the_network_runs(checkpoint, tmp_path, capsys):
    folder = write_images(tmp_path / "lq", random_images(1))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    argv = ["restore", "--checkpoint", checkpoint, "--input", folder, "--output", tmp_path / "o"]
    status, _, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert status == 2 and "cannot read image" in err and "broken.png" in err
    assert not (tmp_path / "o").exists()


def test_cuda_without_a_gpu_is_a_clean_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gt = write_images(tmp_path / "gt", random_images(1))
    argv = ["evaluate", "--gt", gt, "--pred", gt, "--device", "cuda"]
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and "indiflow: error: --device cuda was asked for" in err


# --- solver designs (indiflow.SolverDesign files) as --grid ---


def save_solver_design(path, solver, grid):
    design = ind.SolverDesign(
        grid=grid,
        solver=solver,
        steps=grid.steps,
        loss_power=2.0,
        pilot_size=4,
        pilot_error=0.1,
        pilot_loss=0.1,
        start="given",
        start_error=0.2,
        start_loss=0.2,
        iterations=3,
        evaluations=30,
        gradient_evaluations=12,
    )
    path.write_text(design.to_json())
    return path


def designed_solver():
    """ExpMultistep3 on the nodes 1, 0.5, 0.1, 0 with the network at 0.9, 0.45, 0.08, 0."""
    from indiflow.designed_solver import DesignedSolver

    return DesignedSolver(ind.ExpMultistep3(), (1.0, 0.5, 0.1, 0.0), (0.9, 0.45, 0.08, 0.0))


def test_a_solver_design_gives_its_grid_and_its_solver(tmp_path):
    from indiflow.cli.schedule import build_solver

    solver = designed_solver()
    grid = ind.TimeGrid(solver.evaluation_times)
    path = save_solver_design(tmp_path / "s.json", solver, grid)
    for text in (str(path), f"design:{path}"):
        spec = parse_grid(text)
        assert spec.kind == "design" and spec.solver == solver
        assert build_controller(spec, None, False, 1e-3, 1e-6) == ind.FixedSteps(grid)
        assert build_solver(spec, None) == solver
        assert build_solver(spec, "exp_multistep3") == solver  # names the design's base
    with pytest.raises(ValueError, match="--steps 5 contradicts the grid design"):
        build_controller(spec, 5, False, 1e-3, 1e-6)


def test_a_solver_named_against_a_solver_design_is_refused(tmp_path):
    from indiflow.cli.schedule import build_solver

    plain = parse_grid(
        str(save_solver_design(tmp_path / "p.json", ind.Heun(), ind.TimeGrid.uniform(3)))
    )
    assert build_solver(plain, None) == ind.Heun() == build_solver(plain, "heun")
    with pytest.raises(ValueError, match=r"--solver euler contradicts the solver design .*Heun;"):
        build_solver(plain, "euler")
    coefs = save_solver_design(tmp_path / "c.json", designed_solver(), ind.TimeGrid.uniform(3))
    message = "ExpMultistep3 with designed coefficients; leave out --solver"
    with pytest.raises(ValueError, match=message):
        build_solver(parse_grid(str(coefs)), "exp_multistep4")


def test_grid_designs_and_named_grids_carry_no_solver(tmp_path):
    from indiflow.cli.schedule import build_solver

    grid_design = parse_grid(str(save_design(tmp_path / "g.json", ind.TimeGrid.uniform(3))))
    for spec in (grid_design, parse_grid("power:2")):
        assert spec.solver is None
        assert build_solver(spec, None) == ind.Euler()
        assert build_solver(spec, "heun") == ind.Heun()


def test_a_broken_solver_design_file(tmp_path):
    path = save_solver_design(tmp_path / "s.json", ind.Heun(), ind.TimeGrid.uniform(3))
    data = json.loads(path.read_text())
    bad = {
        "missing": {k: v for k, v in data.items() if k != "iterations"},
        "foreign": {**data, "solver": {"class": "os.path.join", "args": {}}},
        "unknown": {**data, "solver": {"class": "indiflow.no_such_module.Heun", "args": {}}},
    }
    for name, content in bad.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        with pytest.raises(argparse.ArgumentTypeError, match=r"or indiflow\.SolverDesign"):
            parse_grid(f"design:{path}")
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        parse_grid(f"design:{tmp_path / 'none.json'}")


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
