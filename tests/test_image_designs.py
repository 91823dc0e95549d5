"""benchmarks/image_designs.py on a checkpoint of the real training API (tiny network)."""

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
from training_tiny import tiny_config

import indiflow as ind
from indiflow.cli.schedule import build_solver, parse_grid
from indiflow.training import load_model, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _image_methods as methods
import image_designs as bench
from _kdiffusion import load_sampling


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 2-step run of the tiny config (2x super-resolution, constant noise 0.02)."""
    folder = tmp_path_factory.mktemp("designs_run")
    return train(tiny_config("train.steps=2"), out_dir=folder).checkpoint


@pytest.fixture(scope="module")
def run(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("designs_out")
    argv = ["--checkpoint", checkpoint, "--out", out, "--budgets", 3, "--pilot", 2]
    argv += ["--patch", 16, "--crop", 16, "--ref-steps", 4, "--grid-evals", 10]
    argv += ["--solver-iters", 1]
    bench.main([str(a) for a in argv])
    with (out / "results.csv").open() as handle:
        return out, list(csv.DictReader(handle))


def test_rows_are_matched_to_the_budget(run):
    _, rows = run
    designed = [r for r in rows if r["family"] == "designed"]
    assert [r["name"] for r in designed] == [
        "design_grid euler",
        "design_grid expms3",
        "design_solver expms3",
    ]
    families = {r["family"] for r in rows}
    assert families >= {"indiflow", "torchdiffeq", "k-diffusion", "designed"}
    for row in rows:
        assert 1 <= float(row["evaluations"]) <= 3, row
        assert float(row["rms"]) >= 0 and float(row["psnr"]) > 0
    assert all(float(r["design_evaluations"]) > 0 for r in designed)
    assert float(designed[2]["gradient_evaluations"]) > 0
    # The solver design is warm-started from the ExpMultistep3 grid design: its cost includes it.
    assert float(designed[2]["design_evaluations"]) > float(designed[1]["design_evaluations"])


def test_saved_designs_load_into_restore(run):
    out, _ = run
    names = sorted(p.name for p in (out / "designs").iterdir())
    assert names == ["grid_euler_3.json", "grid_expms3_3.json", "solver_expms3_3.json"]
    grid = parse_grid(str(out / "designs" / "grid_euler_3.json"))
    assert grid.solver is None and grid.design.steps == 3
    solver_design = parse_grid(f"design:{out / 'designs' / 'solver_expms3_3.json'}")
    solver = build_solver(solver_design, None)
    assert (
        solver
        == ind.SolverDesign.from_json((out / "designs" / "solver_expms3_3.json").read_text()).solver
    )


def test_summary_reports_the_ratio(run):
    out, rows = run
    text = (out / "summary.md").read_text()
    assert text.count("\n| 3 |") == len(rows)
    anchors = [float(r["rms"]) for r in rows if r["family"] != "designed"]
    designs = [float(r["rms"]) for r in rows if r["family"] == "designed"]
    assert f"designed / best anchor = {min(designs) / min(anchors):.2f}" in text
    assert json.loads((out / "notes.json").read_text())[0].startswith("Pilot: 2 random 16x16")
    bench.main(["--out", str(out), "--budgets", "3", "--summary-only"])
    assert (out / "summary.md").read_text().split("\n- 3")[0] == text.split("\n- 3")[0]


def test_summary_ratio_and_verdict():
    def row(family, value, evaluations=5.0):
        return {
            "family": family, "name": "m", "grid": "g", "budget": 5.0,
            "evaluations": evaluations, "rms": value, "psnr": 30.0,
            "design_evaluations": 1.0, "gradient_evaluations": 0.0, "design_seconds": 1.0,
        }  # fmt: skip

    rows = [row("indiflow", 0.4), row("k-diffusion", 0.01, 6.0), row("designed", 0.1)]
    text = bench.summary(rows, [5.0], ["a note"])
    # The 0.01 anchor took more evaluations than the budget: not a valid anchor.
    assert "designed / best anchor = 0.25" in text and "target <= 0.5: met" in text
    rows[0]["rms"] = 0.15
    assert "= 0.67" in bench.summary(rows, [5.0], []) and "missed" in bench.summary(rows, [5.0], [])


def test_start_state_is_one_seeded_draw():
    clean = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    degradation = ind.degradations.BicubicSR(2)
    y, x_1 = methods.degrade_and_start(clean, degradation, ind.ConstantNoise(0.05), seed=7)
    generator = torch.Generator().manual_seed(7)
    expected_y = degradation(clean, generator=generator)
    eta = torch.randn(y.shape, generator=generator)
    torch.testing.assert_close(y, expected_y, rtol=0, atol=0)
    torch.testing.assert_close(x_1, y + 0.05 * eta, rtol=0, atol=0)
    _, again = methods.degrade_and_start(clean, degradation, ind.ConstantNoise(0.05), seed=7)
    assert torch.equal(again, x_1)


def test_crops():
    images = [torch.arange(3 * 7 * 9.0).reshape(3, 7, 9), torch.rand(3, 8, 8)]
    crops = methods.central_crops(images, 4)
    torch.testing.assert_close(crops[0], images[0][:, 1:5, 2:6])
    torch.testing.assert_close(crops[1], images[1][:, 2:6, 2:6])
    patches = methods.random_patches(images, 5, 4, torch.Generator().manual_seed(0))
    assert patches.shape == (5, 3, 4, 4)
    whole = methods.random_patches(images[1:], 1, 8, torch.Generator().manual_seed(0))
    torch.testing.assert_close(whole[0], images[1])


@pytest.mark.parametrize("budget", [5, 10])
def test_anchors_use_at_most_their_budget(checkpoint, budget):
    model, _, _ = load_model(checkpoint)
    x_1 = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    counts = {}
    for method in methods.anchor_methods(budget, load_sampling()):
        _, evaluations = methods.counted_run(model, method.run, x_1)
        counts[(method.family, method.name, method.grid)] = evaluations
    assert all(1 <= c <= budget for c in counts.values()), counts
    assert counts[("indiflow", "euler", "uniform")] == budget
    assert counts[("indiflow", "heun", "uniform")] == 2 * ((budget + 1) // 2) - 1
    # rk4 on 2 (budget 5) or 3 (budget 10) steps: 3 or 4 evaluations per step, plus 1.
    assert counts[("torchdiffeq", "rk4", "power rho=2")] in {5: (4, 5), 10: (7, 8, 9)}[budget]


def test_reference_gap_and_rms():
    x = torch.zeros(2, 3, 4, 4)
    assert methods.rms(x + 0.5, x) == pytest.approx(0.5)
    constant = lambda x_t, t: torch.full_like(x_t, 0.25)  # noqa: E731  # every solver is exact
    net = torch.nn.Module()
    net.forward = constant
    y = torch.rand(2, 3, 4, 4)
    reference, gap, evaluations = methods.reference_solutions(net, y, 4)
    torch.testing.assert_close(reference, torch.full_like(y, 0.25))
    assert gap < 1e-7 and evaluations == 12.0
    assert bench.best_rho("power(5, rho=2.5)") == 2.5 and bench.best_rho("given") is None
