"""indiflow train: the real training engine through main([...]), under torchrun, bad input."""

import os
import re
import shutil

import pytest
from cli_helpers import run_cli, write_tiny_config

from indiflow.cli.train import default_out, parse_override
from indiflow.training import TrainResult, list_checkpoints, load_checkpoint


@pytest.fixture
def config(tmp_path):
    return write_tiny_config(tmp_path)


def test_train_runs_and_resumes(config, tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, err = run_cli(["train", config, "--out", out], capsys)
    assert status == 0, err
    assert [p.name for p in list_checkpoints(out)] == ["step_00000001.pt", "step_00000002.pt"]
    assert (out / "config.toml").is_file()
    assert f"trained to step 2 (fresh start) in {out}" in stdout
    with pytest.warns(UserWarning, match=r"train\.steps \(2 -> 3\)"):
        status, stdout, err = run_cli(
            ["train", config, "--out", out, "--set", "train.steps=3"], capsys
        )
    assert status == 0, err
    assert f"trained to step 3 (resumed from {out / 'step_00000002.pt'})" in stdout
    assert load_checkpoint(out / "step_00000003.pt")["step"] == 3


def test_set_overrides_reach_the_saved_config(config, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", config, "--out", out, "--set", "train.steps=1", "--set", "loss.eps=0.05"]
    status, _, err = run_cli(argv, capsys)
    assert status == 0, err
    saved = load_checkpoint(out / "step_00000001.pt")["config"]
    assert saved["train"]["steps"] == 1 and saved["loss"]["eps"] == 0.05


def test_resume_never_refuses_a_folder_with_checkpoints(config, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", config, "--out", out, "--set", "train.steps=1"], capsys)[0] == 0
    status, _, err = run_cli(["train", config, "--out", out, "--resume", "never"], capsys)
    assert status == 2
    assert err.startswith("indiflow: error: resume='never'") and "Traceback" not in err


def test_resume_from_a_named_checkpoint(config, tmp_path, capsys):
    first = tmp_path / "first"
    assert run_cli(["train", config, "--out", first, "--set", "train.steps=1"], capsys)[0] == 0
    second = tmp_path / "second"
    argv = ["train", config, "--out", second, "--resume", first / "step_00000001.pt"]
    with pytest.warns(UserWarning, match="differs"):
        status, stdout, err = run_cli(argv, capsys)
    assert status == 0, err
    assert "trained to step 2 (resumed from" in stdout
    assert [p.name for p in list_checkpoints(second)] == ["step_00000002.pt"]


@pytest.mark.parametrize(
    "override",
    ["steps=2", "train.steps", "=2", "train.=2", ".steps=2", "train steps=2"],
)
def test_bad_set_syntax_is_a_usage_error(override, config, capsys):
    status, _, err = run_cli(["train", config, "--set", override], capsys)
    assert status == 2
    assert "usage: indiflow train" in err
    assert (
        f"argument --set: expected section.key=value (e.g. train.steps=200), got {override!r}"
        in err
    )


def test_set_accepts_nested_keys_and_any_value():
    for text in ["data.degradation.scale=2", 'data.source="folders"', "train.lr=", "a.b=c=d"]:
        assert parse_override(text) == text


def test_an_unknown_key_names_the_closest_one(config, tmp_path, capsys):
    argv = ["train", config, "--out", tmp_path / "run", "--set", "train.stepz=3"]
    status, _, err = run_cli(argv, capsys)
    assert status == 2
    assert err.startswith("indiflow: error: unknown ") and "stepz" in err
    assert re.search(r"did you mean '(train\.)?steps'", err)
    assert not (tmp_path / "run").exists()


def test_a_wrong_type_is_reported(config, tmp_path, capsys):
    status, _, err = run_cli(["train", config, "--set", "train.steps=many"], capsys)
    assert status == 2 and "indiflow: error: config key train.steps must be int" in err


def test_an_unknown_config_lists_the_shipped_ones(tmp_path, capsys):
    status, _, err = run_cli(["train", tmp_path / "nothing.toml"], capsys)
    assert status == 2
    assert "indiflow: error: no config file" in err and "shipped configs:" in err


def test_a_missing_data_folder_is_reported(config, tmp_path, capsys):
    shutil.rmtree(tmp_path / "lq")
    status, _, err = run_cli(["train", config, "--out", tmp_path / "run"], capsys)
    assert status == 2 and err.startswith("indiflow: error: ") and "lq" in err


def test_default_run_folder_is_named_after_the_config():
    assert str(default_out("sr4_photos_cpu")) == os.path.join("runs", "sr4_photos_cpu")
    assert str(default_out("experiments/my_run.toml")) == os.path.join("runs", "my_run")


def test_only_rank_zero_prints(config, tmp_path, capsys, monkeypatch):
    import indiflow.training

    def fake_train(config, *, out_dir, resume):
        return TrainResult(out_dir=out_dir, step=7, checkpoint=None, resumed_from=None)

    monkeypatch.setattr(indiflow.training, "train", fake_train)
    monkeypatch.setenv("RANK", "1")
    assert run_cli(["train", config, "--out", tmp_path / "r"], capsys)[:2] == (0, "")
    monkeypatch.setenv("RANK", "0")
    assert "trained to step 7 (fresh start)" in run_cli(["train", config], capsys)[1]


def test_a_shipped_config_resolves_by_name(capsys):
    from indiflow.training import shipped_configs

    assert "sr4_photos_cpu" in shipped_configs()
    status, _, err = run_cli(["train", "sr4_photos_cpu", "--set", "train.stepz=1"], capsys)
    assert status == 2 and "stepz" in err and "no config file" not in err


def test_a_diverging_run_is_one_line_with_status_1_and_keeps_its_checkpoint(
    config, tmp_path, capsys
):
    out = tmp_path / "run"
    argv = ["train", config, "--out", out, "--set", "train.lr=1e30", "--set", "train.steps=6"]
    status, _, err = run_cli(argv, capsys)
    assert status == 1
    assert "Traceback" not in err
    assert re.search(
        r"^indiflow: error: the training loss became NaN or infinite at step \d; training "
        r"stopped\. The last good checkpoint is kept: .*step_0000000\d\.pt\. Lower train\.lr",
        err,
        re.MULTILINE,
    )
    assert list_checkpoints(out)
