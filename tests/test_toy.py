"""toy/: laws, degradations, metrics, checkpoint round-trip, exact resume, script smoke runs."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import torch

import indiflow as ind

# toy/ is a folder of scripts beside the package, not installed: make the repository root
# importable however pytest was launched (``pytest`` or ``python -m pytest``).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toy import data, metrics
from toy.__main__ import main as main_job
from toy.evaluate import law_gap, restore
from toy.figure1 import figure1
from toy.sweep import CHOICES, choice_sweep, solver_sweep, trend_holds
from toy.train import (
    TrainConfig,
    ensure_trained,
    load_model,
    parse_args,
    save_checkpoint,
    train,
)


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


def test_bad_training_choices_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="norm must be l1 or l2, got 'l3'"):
        train(_tiny(tmp_path, norm="l3"), progress=False)
    with pytest.raises(ValueError, match="time_law must be uniform, mixture or power"):
        train(_tiny(tmp_path, time_law="beta"), progress=False)
    with pytest.raises(ValueError, match="noise must be none, constant or brownian"):
        train(_tiny(tmp_path, noise="pink"), progress=False)


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
