"""toy/: laws, degradations, metrics, checkpoint round-trip, exact resume, script smoke runs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import indiflow as ind

# toy/ is a folder of scripts beside the package, not installed: make the repository root
# importable however pytest was launched (``pytest`` or ``python -m pytest``).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toy import data, metrics
from toy.__main__ import main as main_job
from toy.arguments import Range
from toy.evaluate import law_gap, restore
from toy.figure1 import figure1
from toy.figure1 import main as figure1_main
from toy.sweep import CHOICES, choice_sweep, solver_sweep, trend_holds
from toy.sweep import main as sweep_main
from toy.train import (
    TRAIN_CHOICES,
    TRAIN_RANGES,
    TrainConfig,
    ensure_trained,
    load_model,
    parse_args,
    save_checkpoint,
    train,
)
from toy.train import main as train_main


def _tiny(out: Path, **change: object) -> TrainConfig:
    cfg = TrainConfig(steps=20, batch=32, hidden=16, depth=1, warmup=2, out=str(out))
    return dataclasses.replace(cfg, **change)


# --- data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(data.TOYS))
def test_every_toy_samples_reproducible_pairs(name: str) -> None:
    toy = data.get_toy(name)
    x, y = toy.sample_pairs(64, torch.Generator().manual_seed(0))
    x2, y2 = toy.sample_pairs(64, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 2) and x.dtype == torch.float32
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert (toy.oracle() is None) == (name in ("checkerboard", "moons"))


def test_checkerboard_points_lie_on_black_squares() -> None:
    x = data.CheckerboardLaw().sample(5000, torch.Generator().manual_seed(0))
    cell = torch.floor(x) + 2  # column and row of the 4x4 board on [-2, 2]^2
    assert bool(((x >= -2) & (x < 2)).all())
    assert bool(((cell[:, 0] + cell[:, 1]) % 2 == 0).all())
    assert len(torch.unique(cell, dim=0)) == 8


def test_two_moons_lie_on_their_circles() -> None:
    x = data.TwoMoonsLaw(noise=0.0).sample(2000, torch.Generator().manual_seed(0))
    upper = (x - torch.tensor([-0.5, -0.25], dtype=x.dtype)).norm(dim=1)
    lower = (x - torch.tensor([0.5, 0.25], dtype=x.dtype)).norm(dim=1)
    on_circle = ((upper - 1).abs() < 1e-12) | ((lower - 1).abs() < 1e-12)
    assert bool(on_circle.all())


def test_mixture_law_hits_every_mode_equally() -> None:
    law = data.ring(8, 1.5, 0.0)
    x = law.sample(16_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(metrics.nearest_mode_index(x, law.modes), minlength=8)
    assert metrics.nearest_mode_distance(x, law.modes) == 0.0
    assert bool(((counts - 2000).abs() < 5 * math.sqrt(2000)).all())


def test_degradations_apply_their_matrix() -> None:
    x = torch.randn(10, 2, dtype=torch.float64)
    noiseless = dataclasses.replace(data.erase_second(0.2), sigma=0.0)
    torch.testing.assert_close(noiseless.apply(x), torch.stack([x[:, 0], 0 * x[:, 1]], 1))
    mix = data.mixing()
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    torch.testing.assert_close(mix.H, torch.tensor([[c, -s], [0.3 * s, 0.3 * c]]).double())
    y = data.denoising(0.7).apply(torch.zeros(40_000, 2), torch.Generator().manual_seed(1))
    assert float(y.std()) == pytest.approx(0.7, rel=0.02)


def test_fig1a_oracle_is_tanh_at_t_one() -> None:
    """Modes (±1, ±1), y = x + sigma n: E[x | y] = tanh(y / sigma^2) coordinate-wise."""
    toy = data.get_toy("fig1a")
    y = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(toy.oracle()(y, 1.0), torch.tanh(y / 1.0**2))


def test_unknown_toy_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown toy 'nope'; choose one of"):
        data.get_toy("nope")


# --- metrics ------------------------------------------------------------------------------


def test_metrics_match_closed_forms() -> None:
    a = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v = torch.tensor([0.3, -0.4], dtype=torch.float64)  # |v| = 0.5
    # A shift moves every 1-D projection by theta.v: SW1 = E|cos| |v| = 2|v|/pi, SW2 = |v|/sqrt 2.
    assert metrics.sliced_wasserstein(a, a + v) == pytest.approx(1 / math.pi, rel=1e-3)
    assert metrics.sliced_wasserstein(a, a + v, p=2) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    zeros, shifted = torch.zeros(10, 2), torch.zeros(10, 2) + v.float()
    assert metrics.energy_distance(zeros, shifted) == pytest.approx(2 * 0.5, rel=1e-6)
    assert metrics.mse(a + v, a) == pytest.approx(0.25)
    modes = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    assert metrics.nearest_mode_distance(torch.tensor([[0.0, 1.0], [2.0, 0.0]]), modes) == 1.0
    with pytest.raises(ValueError, match="equal sizes"):
        metrics.sliced_wasserstein(a, a[:10])
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        metrics.sliced_wasserstein(a, a, p=3)
    with pytest.raises(ValueError, match=r"shapes \(n, d\) and \(m, d\)"):
        metrics.mse(a, a[:, :1])


def test_law_gap_coupling_bounds_sliced_w1() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 2, generator=g)
    b = a + 0.1 * torch.randn(400, 2, generator=g)
    gap = law_gap(a, b, paired=True)
    assert gap["sw1"] <= gap["coupling_w1_bound"]
    assert "coupling_w1_bound" not in law_gap(a, b, paired=False)


def test_stochastic_restore_needs_euler() -> None:
    with pytest.raises(ValueError, match="stochastic InDI is an Euler scheme"):
        restore(lambda x, t: x, torch.ones(3, 2), 4, ind.Heun(), noise=ind.ConstantNoise(0.1))


# --- training: checkpoints and resume ----------------------------------------------------


def test_resume_gives_an_identical_continuation(tmp_path: Path) -> None:
    straight = train(_tiny(tmp_path / "a"), progress=False)
    cut = _tiny(tmp_path / "b")
    first = train(cut, stop_at=9, progress=False)
    assert first.step == 9
    resumed = train(dataclasses.replace(cut, resume=True), progress=False)
    assert resumed.step == 20 and resumed.losses == straight.losses
    for p, q in zip(resumed.raw_model.parameters(), straight.raw_model.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(p, q)  # the EMA weights too


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    result = train(_tiny(tmp_path), progress=False)
    model, cfg = load_model(result.checkpoint)
    assert cfg == _tiny(tmp_path)
    x, t = torch.randn(7, 2), torch.rand(7)
    with torch.no_grad():
        assert torch.equal(model(x, t), result.model(x, t))
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file


def test_save_checkpoint_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ckpt.pt"
    save_checkpoint(path, {"v": 1})
    save_checkpoint(path, {"v": 2})
    assert torch.load(path)["v"] == 2 and sorted(p.name for p in path.parent.iterdir()) == [
        "ckpt.pt"
    ]


def test_resume_with_another_config_is_rejected(tmp_path: Path) -> None:
    train(_tiny(tmp_path, steps=4), progress=False)
    with pytest.raises(ValueError, match=r"--resume with a different config .*'lr'"):
        train(_tiny(tmp_path, steps=4, lr=1e-4, resume=True), progress=False)


def test_ensure_trained_reuses_or_retrains(tmp_path: Path) -> None:
    first = ensure_trained(_tiny(tmp_path, steps=6), progress=False)
    again = ensure_trained(_tiny(tmp_path, steps=6), progress=False)
    assert again.losses == first.losses and again.seconds < first.seconds + 1
    other = ensure_trained(_tiny(tmp_path, steps=6, seed=1), progress=False)
    assert other.losses != first.losses and len(other.losses) == 6


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"norm": "l3"}, r"norm must be one of l2, l1; got 'l3'"),
        ({"time_law": "beta"}, r"time_law must be one of uniform, mixture, power; got 'beta'"),
        ({"noise": "pink"}, r"noise must be one of none, constant, brownian; got 'pink'"),
        ({"toy": "nope"}, r"toy must be one of fig1a, fig1b, .*; got 'nope'"),
        ({"steps": 0}, r"steps must be an integer >= 1, got 0"),
        ({"batch": -2}, r"batch must be an integer >= 1, got -2"),
        ({"ema": 1.0}, r"ema must be a number in \[0, 1\), got 1.0"),
        ({"warmup": -1}, r"warmup must be an integer >= 0, got -1"),
        ({"ckpt_every": 0}, r"ckpt_every must be an integer >= 1, got 0"),
        ({"lr": math.nan}, r"lr must be a number > 0, got nan"),
        ({"steps": 2.5}, r"steps must be an integer >= 1, got 2.5"),
        ({"steps": True}, r"steps must be an integer >= 1, got True"),
        ({"lr": 1e-3, "lr_min": 1e-2}, r"lr_min must be <= lr .* lr_min = 0.01 > lr = 0.001"),
    ],
)
def test_bad_training_configs_are_rejected_when_built(tmp_path: Path, change, match) -> None:
    with pytest.raises(ValueError, match=match):
        _tiny(tmp_path, **change)
    assert not list(tmp_path.iterdir())


def test_every_numeric_training_setting_has_a_rule() -> None:
    numeric = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", "float")}
    assert numeric == set(TRAIN_RANGES)
    assert {f.name for f in dataclasses.fields(TrainConfig) if f.type == "str"} == {
        *TRAIN_CHOICES,
        "out",
    }
    assert _tiny(Path("x"), ema=0.0, warmup=0, lr_min=2e-3).ema == 0.0  # the bounds that are valid


# --- command lines: bad values stop before any work, argparse-style (exit status 2) -------


def _rejected(
    main: Callable[[list[str]], object], argv: list[str], capsys: pytest.CaptureFixture
) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--steps", "0"], r"argument --steps: must be an integer >= 1, got '0'"),
        (["--steps", "-5"], r"argument --steps: must be an integer >= 1, got '-5'"),
        (["--steps", "1.5"], r"argument --steps: must be an integer >= 1, got '1.5'"),
        (["--batch", "0"], r"argument --batch: must be an integer >= 1, got '0'"),
        (["--ema", "1.5"], r"argument --ema: must be a number in \[0, 1\), got '1.5'"),
        (["--ema", "1"], r"argument --ema: must be a number in \[0, 1\), got '1'"),
        (["--warmup", "-1"], r"argument --warmup: must be an integer >= 0, got '-1'"),
        (["--ckpt-every", "0"], r"argument --ckpt-every: must be an integer >= 1, got '0'"),
        (["--lr", "nan"], r"argument --lr: must be a number > 0, got 'nan'"),
        (["--lr", "0"], r"argument --lr: must be a number > 0, got '0'"),
        (["--lr-min=-1e-5"], r"argument --lr-min: must be a number >= 0, got '-1e-5'"),
        (["--a", "0"], r"argument --a: must be a number > 0, got '0'"),
        (["--k", "-1"], r"argument --k: must be a number >= 0, got '-1'"),
        (["--eps", "inf"], r"argument --eps: must be a number >= 0, got 'inf'"),
        (["--hidden", "0"], r"argument --hidden: must be an integer >= 1, got '0'"),
        (["--depth", "0"], r"argument --depth: must be an integer >= 1, got '0'"),
        (["--threads", "0"], r"argument --threads: must be an integer >= 1, got '0'"),
        (["--seed", "-1"], r"argument --seed: must be an integer in \[0, 9.2\d*e\+18\]"),
        (["--toy", "nope"], r"argument --toy: invalid choice: 'nope'"),
        (["--norm", "l3"], r"argument --norm: invalid choice: 'l3'"),
        (["--time-law", "beta"], r"argument --time-law: invalid choice: 'beta'"),
        (["--noise", "pink"], r"argument --noise: invalid choice: 'pink'"),
        (["--lr", "1e-3", "--lr-min", "1e-2"], r"error: lr_min must be <= lr"),
    ],
)
def test_train_cli_rejects_bad_values_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], match: str
) -> None:
    out = tmp_path / "run"
    err = _rejected(train_main, [*argv, "--out", str(out)], capsys)
    assert re.search(match, err), err
    assert err.startswith("usage: python -m toy.train")
    assert not out.exists()  # no checkpoint, not even the folder


def test_cli_output_folders_must_not_be_files(tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for main, flag in [
        (train_main, "--out"),
        (main_job, "--out"),
        (sweep_main, "--runs"),
        (figure1_main, "--out"),
    ]:
        err = _rejected(main, [flag, str(a_file)], capsys)
        assert f"argument {flag}: must be a folder, but '{a_file}' is an existing file" in err
    err = _rejected(sweep_main, ["--out", ""], capsys)
    assert "argument --out: must be a folder path, got an empty string" in err


@pytest.mark.parametrize(
    ("script", "argv", "match"),
    [
        ("toy", ["--train-steps", "0"], r"argument --train-steps: must be an integer >= 1"),
        ("toy", ["--choice-steps", "-1"], r"argument --choice-steps: must be an integer >= 1"),
        ("toy", ["--n-eval", "1"], r"argument --n-eval: must be an integer >= 2, got '1'"),
        ("toy", ["--fig1-eval", "x"], r"argument --fig1-eval: must be an integer >= 2, got 'x'"),
        ("toy", ["--toys", "moons"], r"argument --toys: invalid choice: 'moons'"),
        ("toy.sweep", ["--train-steps", "0"], r"argument --train-steps: must be an integer >= 1"),
        ("toy.sweep", ["--n-eval", "1"], r"argument --n-eval: must be an integer >= 2"),
        ("toy.sweep", ["--toys", "checkerboard"], r"argument --toys: invalid choice"),
        ("toy.sweep", ["--nets", "nope"], r"argument --nets: invalid choice: 'nope'"),
        ("toy.sweep", ["--solvers", "rk4"], r"argument --solvers: invalid choice: 'rk4'"),
        ("toy.figure1", ["--train-steps", "0"], r"argument --train-steps: must be an integer"),
        ("toy.figure1", ["--n-eval", "1"], r"argument --n-eval: must be an integer >= 2"),
        ("toy.figure1", ["--n-steps", "0"], r"argument --n-steps: must be an integer >= 1"),
        ("toy.figure1", ["--seed", "-3"], r"argument --seed: must be an integer in \[0, "),
    ],
)
def test_job_clis_reject_bad_values_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture, script: str, argv: list[str], match: str
) -> None:
    main = {"toy": main_job, "toy.sweep": sweep_main, "toy.figure1": figure1_main}[script]
    folders = {
        "toy": ["--out"],
        "toy.sweep": ["--out", "--runs"],
        "toy.figure1": ["--out", "--runs"],
    }
    paths = [arg for flag in folders[script] for arg in (flag, str(tmp_path / flag.strip("-")))]
    err = _rejected(main, [*argv, *paths], capsys)
    assert re.search(match, err), err
    assert err.startswith(f"usage: python -m {script}")
    assert not list(tmp_path.iterdir())  # no run folder, checkpoint or figure


def test_range_rule_describes_and_checks_its_interval() -> None:
    assert Range(int, 1).describe() == "an integer >= 1"
    assert Range(float, 0, low_open=True).describe() == "a number > 0"
    assert Range(float, 0, 1, high_open=True).describe() == "a number in [0, 1)"
    assert Range(float, 0, 1, low_open=True).describe() == "a number in (0, 1]"
    assert Range(float, high=2, high_open=True).describe() == "a number < 2"
    assert Range(int, high=2).describe() == "an integer <= 2"
    assert Range(float).describe() == "a finite number"
    closed, half = Range(float, 0, 1), Range(float, 0, 1, low_open=True, high_open=True)
    assert [closed.contains(v) for v in (0, 1, 0.5, -1e-9, 1 + 1e-9)] == [1, 1, 1, 0, 0]
    assert [half.contains(v) for v in (0, 1, 0.5)] == [False, False, True]
    assert not Range(float).contains(math.inf) and not Range(float).contains("1")
    assert not Range(int, 0).contains(True) and not Range(int, 0).contains(1.0)
    assert Range(int, 1)("7") == 7 and Range(float, 0)("1e-3") == 1e-3
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be an integer >= 1, got '0'"):
        Range(int, 1)("0")
    with pytest.raises(TypeError, match="Range kind must be int or float"):
        Range(str)


def test_cli_parses_into_the_config() -> None:
    assert parse_args([]) == TrainConfig()
    cfg = parse_args(["--toy", "fig1b", "--steps", "5", "--lr", "0.01", "--resume"])
    assert (cfg.toy, cfg.steps, cfg.lr, cfg.resume) == ("fig1b", 5, 0.01, True)


# --- scripts ------------------------------------------------------------------------------


def test_figure1_writes_pngs_and_metrics(tmp_path: Path) -> None:
    torch.manual_seed(0)
    models = {n: ind.nets.ToyMLP(2, hidden=8, depth=1) for n in ("fig1a", "fig1b")}
    results = figure1(models, tmp_path, n_eval=60, n_steps=5, n_plot=20, n_traj=3)
    saved = json.loads((tmp_path / "fig1_metrics.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert (tmp_path / "fig1a.png").stat().st_size > 0 and (tmp_path / "fig1b.png").exists()
    # Oracle figures are exact: the one-step regression sits between the Fig. 1(a) modes and
    # InDI ends on them (5 Euler steps are enough for the oracle).
    assert saved["fig1a"]["oracle"]["one_step"]["nearest_mode"] > 0.3
    assert saved["fig1a"]["oracle"]["indi"]["nearest_mode"] < 0.05
    assert saved["fig1b"]["oracle"]["indi"]["sign_agreement"] == 1.0


def test_solver_sweep_shows_the_trend_for_the_oracle() -> None:
    rows = solver_sweep(
        ["fig1a"], {}, steps=(1, 10, 20), solvers=("euler", "heun"), n_eval=300, progress=False
    )
    assert len(rows) == 6 and {r["nfe"] for r in rows if r["solver"] == "euler"} == {1, 10, 20}
    assert trend_holds(rows, "fig1a", "oracle", "euler")
    flipped = [dict(r, mse=-r["mse"]) for r in rows]  # the check can fail
    assert not trend_holds(flipped, "fig1a", "oracle", "euler")


def test_choice_sweep_trains_every_choice(tmp_path: Path) -> None:
    rows = choice_sweep(tmp_path, _tiny(tmp_path, steps=3), n_eval=40, n_steps=3, progress=False)
    assert [r["choice"] for r in rows] == [label for label, _ in CHOICES]
    assert all(r["coupling_gap_N3"] >= 0 for r in rows)
    assert len(list((tmp_path / "choices").glob("*/ckpt.pt"))) == len(CHOICES)


def test_main_job_writes_everything(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    summary = main_job(
        [
            "--out",
            str(tmp_path),
            "--train-steps",
            "3",
            "--choice-steps",
            "2",
            "--n-eval",
            "30",
            "--fig1-eval",
            "60",
            "--toys",
            "fig1a",
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert "Acceptance (measured)" in printed and "Training choices" in printed
    assert json.loads((tmp_path / "summary.json").read_text())["acceptance"] == json.loads(
        json.dumps(summary["acceptance"])
    )
    for name in ("fig1/fig1a.png", "sweep/sweep.csv", "sweep/pd_fig1a.png", "sweep/choices.csv"):
        assert (tmp_path / name).exists(), name
