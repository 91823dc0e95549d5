"""benchmarks/perception_distortion.py end to end on a checkpoint of the real training API."""

import csv
import sys
from pathlib import Path

import pytest
import torch
from training_tiny import tiny_config

import indiflow as ind
from indiflow.training import load_model, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import perception_distortion as pd
from _pd_methods import heun_steps, white_noise_control

SIZE = 32


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-step run of the tiny config (2x super-resolution, constant noise 0.02)."""
    folder = tmp_path_factory.mktemp("pd_run")
    train(tiny_config("train.steps=2"), out_dir=folder)
    return folder


@pytest.fixture(scope="module")
def sweep(run_dir, tmp_path_factory):
    """The benchmark's stdout, CSV rows and output folder for a small sweep."""
    out = tmp_path_factory.mktemp("pd_out")
    argv = ["--checkpoint", run_dir, "--out", out, "--size", SIZE, "--photos", 2]
    argv += ["--steps", 1, 2, 5, "--seeds", 2]
    capture = pytest.MonkeyPatch()
    lines: list[str] = []
    capture.setattr("builtins.print", lambda *a, **k: lines.append(" ".join(map(str, a))))
    try:
        assert pd.main([str(a) for a in argv]) == 0
    finally:
        capture.undo()
    assert torch.is_grad_enabled(), "the sweep must not switch autograd off for its caller"
    with (out / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return "\n".join(lines), rows, out


def test_outputs_and_rows(sweep):
    text, rows, out = sweep
    for name in ("perception_distortion.png", "pictures.png", "training.png"):
        assert (out / name).stat().st_size > 10_000
    # Steps 1, 2, 5 only: the criteria that need N = 20 are reported as not run.
    report = (out / "acceptance.md").read_text()
    assert "| criteria | Euler steps [1, 2, 5] | need N = 1 and N = 20 | not run |" in report
    assert report in text + "\n" and "0 of 0 criteria met." in report
    methods = {(r["method"], r["N"]) for r in rows}
    expected = {("input", "0"), ("control", "5")} | {("euler", n) for n in "125"}
    expected |= {(m, n) for m in ("heun", "expms3") for n in "25"}
    assert methods == expected
    # 2 photos + their mean, per seed, per (method, N)
    assert len(rows) == 3 * 2 * len(expected)
    assert {r["photo"] for r in rows} == {"astronaut", "chelsea", "mean"}
    for method, n in expected:
        assert f"| {method} | {n} |" in text


def test_measured_evaluations(sweep):
    _, rows, _ = sweep
    evaluations = {(r["method"], r["N"]): int(r["evaluations"]) for r in rows if r["seed"] == "0"}
    assert evaluations[("euler", "5")] == 5
    assert evaluations[("expms3", "5")] == 5
    assert evaluations[("heun", "5")] == 2 * heun_steps(5) - 1 == 5
    assert evaluations[("heun", "2")] == 1


def test_euler_one_step_matches_an_independent_restore(sweep, run_dir):
    _, rows, _ = sweep
    model, noise, config = load_model(sorted(run_dir.glob("step_*.pt"))[-1])
    _, gt = pd.test_crops(config, SIZE, 2)
    y = ind.degradations.BicubicSR(2)(gt, generator=torch.Generator().manual_seed(0))
    grid = ind.FixedSteps(ind.TimeGrid.uniform(1))
    with torch.no_grad():
        x = ind.restore(
            model, y, ind.Euler(), grid, noise=noise, generator=torch.Generator().manual_seed(1)
        ).clamp(0, 1)
    expected = ind.metrics.psnr(x, gt, crop_border=2, y_channel=True).tolist()
    got = [
        float(r["psnr"])
        for r in rows
        if r["method"] == "euler" and r["N"] == "1" and r["seed"] == "1"
    ][:2]
    assert got == pytest.approx(expected, abs=1e-4)


def test_seed_mean_rows_are_means(sweep):
    _, rows, _ = sweep
    for seed in "01":
        chosen = [
            r for r in rows if r["seed"] == seed and r["method"] == "expms3" and r["N"] == "5"
        ]
        photos = [float(r["laplacian_swd"]) for r in chosen if r["photo"] != "mean"]
        mean = next(float(r["laplacian_swd"]) for r in chosen if r["photo"] == "mean")
        assert mean == pytest.approx(sum(photos) / 2, rel=1e-5)


def test_white_noise_control_reaches_target():
    def psnr(x, ref):
        return ind.metrics.psnr(x, ref, y_channel=True)

    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 32, 32, generator=gen)
    x1 = (0.8 * gt + 0.1).clamp(0, 1)
    target = psnr(x1, gt) - torch.tensor([0.3, 2.0], dtype=torch.float64)
    control = white_noise_control(x1, gt, target, psnr, torch.Generator().manual_seed(1))
    assert psnr(control, gt).tolist() == pytest.approx(target.tolist(), abs=1e-3)
    unchanged = white_noise_control(x1, gt, target + 5, psnr, torch.Generator().manual_seed(1))
    assert torch.equal(unchanged, x1)


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--steps", "0"], "--steps"), (["--size", "16"], "--size"), (["--seeds", "0"], "--seeds")],
)
def test_bad_options(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        pd.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path), *flags])
    assert message in capsys.readouterr().err


def test_folder_without_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match=r"holds no valid checkpoint \(step_\*\.pt\)"):
        pd.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "out")])
