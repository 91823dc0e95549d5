"""toy/equivalence.py on a tiny budget: it runs end to end, and its DSM loss is the right one."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
import torch

import indiflow as ind
from toy import equivalence as eq

TINY = {
    "steps": 3,
    "batch": 32,
    "hidden": 16,
    "depth": 1,
    "n_steps": 4,
    "n_eval": 64,
    "null_reps": 5,
    "n_paths": 3,
    "replicates": 2,
}


def test_tiny_run_writes_metrics_and_figure(tmp_path):
    cfg = eq.EquivalenceConfig(**TINY, out=str(tmp_path))
    metrics = eq.run(cfg, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "equivalence.png").stat().st_size > 0
    assert saved["config"]["steps"] == 3
    names = {"indi0", "score0", "indi1", "score1"}
    assert set(saved["final_loss"]) == names
    # Every pair of the four networks and the oracle, grouped by what it compares.
    assert len(saved["energy_distance"]) == 10
    assert {len(g) for g in saved["groups"].values()} == {4, 2}
    assert saved["tolerance"] == max(saved["resolution"], saved["seed_spread"])
    assert saved["equivalent_within_tolerance"] == (saved["worst_cross"] <= saved["tolerance"])
    assert all(math.isfinite(v) for v in saved["energy_distance"].values())
    # Three optimiser steps leave the networks far from the oracle, which lands near the modes.
    nearest = saved["nearest_mode_distance"]
    assert all(nearest["oracle"] < nearest[k] for k in names)
    verdict = "EQUIVALENT" if saved["equivalent_within_tolerance"] else "NOT equivalent"
    assert f"{verdict} within tolerance" in eq.summary(metrics)


def test_main_parses_the_command_line(tmp_path, capsys):
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    eq.main([*argv, "--replicates=1", "--solver=heun", f"--out={tmp_path}"])
    out = capsys.readouterr().out
    assert "resolution" in out and "seed spread" not in out


def test_dsm_loss_is_the_indi_loss_over_the_squared_noise_level():
    # At one time t for the whole batch, the L2 InDI loss of the converted score network is
    # (t sigma)^2 times the script's (t sigma)^2-weighted DSM loss.
    torch.manual_seed(0)
    sigma, t0 = 1.3, 0.37
    net = eq.ScoreNet(sigma, hidden=8, depth=1).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 2, generator=g, dtype=torch.float64)
    y = x + sigma * torch.randn(16, 2, generator=g, dtype=torch.float64)
    t = torch.full((16,), t0, dtype=torch.float64)
    x_t = x + t[:, None] * (y - x)
    regressor = ind.param.regressor_from_score(net, sigma)
    indi = ind.indi_loss(regressor, x, y, time_law=eq.GivenTimes(t))
    dsm = eq.dsm_loss(net, x, x_t, t, sigma)
    torch.testing.assert_close(indi, (t0 * sigma) ** 2 * dsm, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"toy": "fig1b"}, r"toy must be one of fig1a, gauss4, ring8; got 'fig1b'"),
        ({"solver": "rk4"}, r"solver must be one of euler, heun; got 'rk4'"),
        ({"n_eval": 1}, r"n_eval must be an integer >= 2, got 1"),
        ({"replicates": 0}, r"replicates must be an integer >= 1, got 0"),
        ({"null_level": 2.0}, r"null_level must be a number in \[0, 1\], got 2.0"),
        ({"ema": 1.0}, r"ema must be a number in \[0, 1\), got 1.0"),
        ({"steps": 0}, r"steps must be an integer >= 1, got 0"),
        ({"lr": -1.0}, r"lr must be a number > 0, got -1.0"),
    ],
)
def test_bad_config_is_rejected_when_built(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        eq.EquivalenceConfig(**{**TINY, **change, "out": str(tmp_path / "run")})
    assert not (tmp_path / "run").exists()


def test_every_numeric_setting_has_a_rule():
    fields = dataclasses.fields(eq.EquivalenceConfig)
    assert {f.name for f in fields if f.type in ("int", "float")} == set(eq.EQUIVALENCE_RANGES)
    assert {f.name for f in fields if f.type == "str"} == {*eq.EQUIVALENCE_CHOICES, "out"}


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--null-level", "2"], r"argument --null-level: must be a number in \[0, 1\], got '2'"),
        (["--steps", "0"], r"argument --steps: must be an integer >= 1, got '0'"),
        (["--n-eval", "1"], r"argument --n-eval: must be an integer >= 2, got '1'"),
        (["--replicates", "0"], r"argument --replicates: must be an integer >= 1, got '0'"),
        (["--n-paths", "0"], r"argument --n-paths: must be an integer >= 1, got '0'"),
        (["--ema", "1"], r"argument --ema: must be a number in \[0, 1\), got '1'"),
        (["--batch", "many"], r"argument --batch: must be an integer >= 1, got 'many'"),
        (["--toy", "fig1b"], r"argument --toy: invalid choice: 'fig1b'"),
        (["--solver", "rk4"], r"argument --solver: invalid choice: 'rk4'"),
    ],
)
def test_cli_rejects_bad_values_before_training(tmp_path, capsys, argv, match):
    """``--null-level 2`` used to fail only after all the training."""
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        eq.main([*argv, f"--out={out}"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m toy.equivalence") and re.search(match, err), err
    assert not out.exists()
