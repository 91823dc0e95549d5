"""indiflow restore: solver names, grid specs, grid and solver design files, and controllers."""

import argparse
import json

import pytest
from cli_restore_cases import designed_solver, save_design, save_solver_design

import indiflow as ind
from indiflow.cli.schedule import (
    DEFAULT_STEPS,
    SOLVERS,
    build_controller,
    parse_grid,
    solver_names_with_error_estimate,
)

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


# --- solver designs (indiflow.SolverDesign files) as --grid ---


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
