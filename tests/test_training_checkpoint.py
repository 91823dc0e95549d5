"""Checkpoints: atomic saves, retention, validated loading, load_model, EMA, RNG, NaN stops."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
from training_tiny import state_of, tiny_config

from indiflow.interpolant import ConstantNoise
from indiflow.nets import UNet
from indiflow.training import (
    EMA,
    CheckpointError,
    TrainingDiverged,
    list_checkpoints,
    load_checkpoint,
    load_model,
    newest_valid_checkpoint,
    train,
)
from indiflow.training import checkpoint as ckpt
from indiflow.training.distributed import DistributedContext, setup_distributed
from indiflow.training.rng import capture_rng, restore_rng


def _state(step: int) -> dict:
    return {
        "format": ckpt.FORMAT,
        "version": ckpt.VERSION,
        "step": step,
        "model": {"w": torch.full((2,), float(step))},
        "ema": {},
        "optimizer": {},
        "scheduler": {},
        "rng": capture_rng(),
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 4-step tiny run: (result, config)."""
    config = tiny_config("train.steps=4")
    out = tmp_path_factory.mktemp("trained")
    return train(config, out_dir=out, resume="never"), config


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    path = ckpt.save_checkpoint(_state(1), ckpt.checkpoint_path(tmp_path, 1))
    assert path.name == "step_00000001.pt" and [p.name for p in tmp_path.iterdir()] == [path.name]
    assert load_checkpoint(path)["step"] == 1


def test_a_save_that_dies_before_its_rename_leaves_the_old_files_intact(tmp_path, monkeypatch):
    ckpt.save_checkpoint(_state(1), ckpt.checkpoint_path(tmp_path, 1))

    def crash(temporary, path):
        raise KeyboardInterrupt  # stands for a kill between the write and os.replace

    monkeypatch.setattr(ckpt, "_publish", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(_state(2), ckpt.checkpoint_path(tmp_path, 2))
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000001.pt"]
    leftovers = ckpt.remove_temporaries(tmp_path)
    assert [p.name.split(".tmp.")[0] for p in leftovers] == [".step_00000002.pt"]
    assert newest_valid_checkpoint(tmp_path)[1]["step"] == 1


def test_listing_sorts_by_step_and_pruning_keeps_the_newest(tmp_path):
    for step in (10, 2, 100_000_000, 7):
        ckpt.save_checkpoint(_state(step), ckpt.checkpoint_path(tmp_path, step))
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "step_12.pt").write_text("ignored: not the engine's name")
    steps = [load_checkpoint(p)["step"] for p in list_checkpoints(tmp_path)]
    assert steps == [2, 7, 10, 100_000_000]
    removed = ckpt.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in removed] == ["step_00000002.pt", "step_00000007.pt"]
    assert [load_checkpoint(p)["step"] for p in list_checkpoints(tmp_path)] == [10, 100_000_000]
    assert list_checkpoints(tmp_path / "absent") == []


def test_truncated_corrupt_and_foreign_files_are_checkpoint_errors(tmp_path):
    good = ckpt.save_checkpoint(_state(3), ckpt.checkpoint_path(tmp_path, 3))
    data = good.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "garbage.pt": b"not a zip file at all",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=rf"{name}' is truncated or corrupt"):
            load_checkpoint(tmp_path / name)
    torch.save({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an indiflow training checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save(_state(1) | {"version": ckpt.VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="upgrade indiflow"):
        load_checkpoint(tmp_path / "future.pt")
    partial = {k: v for k, v in _state(1).items() if k != "optimizer"}
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks the key"):
        load_checkpoint(tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="is not a file"):
        load_checkpoint(tmp_path / "absent.pt")


def test_newest_valid_skips_truncated_files_with_a_warning_naming_them(tmp_path):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(_state(step), ckpt.checkpoint_path(tmp_path, step))
    for step in (2, 3):
        path = ckpt.checkpoint_path(tmp_path, step)
        path.write_bytes(path.read_bytes()[:100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path, state = newest_valid_checkpoint(tmp_path)
    assert path.name == "step_00000001.pt" and state["step"] == 1
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "step_00000003.pt' is truncated" in messages[0]
    assert "step_00000002.pt' is truncated" in messages[1]
    ckpt.checkpoint_path(tmp_path, 1).write_bytes(b"")
    with pytest.warns(UserWarning):
        assert newest_valid_checkpoint(tmp_path) is None


def test_checkpoint_holds_the_design_keys_as_weights_only_data(trained):
    result, _ = trained
    state = state_of(result.checkpoint)  # weights_only=True
    for key in ("format", "version", "step", "model", "ema", "optimizer", "scheduler", "rng"):
        assert key in state
    assert state["step"] == 4
    assert set(state["rng"]) >= {"torch", "cuda", "numpy", "python", "data", "other_ranks"}
    assert state["rng"]["data"] == {"epoch": 1, "batch": 1}  # 3 batches per epoch
    assert state["config"]["train"]["steps"] == 4
    assert state["config"]["model"] == UNet(**state["config"]["model"]).to_config()
    saved = (result.out_dir / "config.toml").read_text()
    assert "[model]" in saved and "fourier_max_freq" in saved  # resolved: every UNet argument


def test_load_model_rebuilds_the_network_with_ema_or_raw_weights(trained):
    result, config = trained
    state = state_of(result.checkpoint)
    model, noise, loaded = load_model(result.checkpoint)
    assert isinstance(model, UNet) and not model.training
    assert noise == ConstantNoise(0.02)
    assert loaded.train == config.train and loaded.loss == config.loss
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state["ema"][name])
    raw, _, _ = load_model(result.checkpoint, ema=False)
    assert all(torch.equal(t, state["model"][n]) for n, t in raw.state_dict().items())
    assert not all(torch.equal(t, state["ema"][n]) for n, t in raw.state_dict().items())
    x = torch.rand(2, 3, 16, 16)
    assert model(x, torch.ones(2)).shape == x.shape


def test_resuming_another_architecture_names_the_differing_shapes(trained, tmp_path):
    result, _ = trained
    wider = tiny_config("train.steps=6", "model.width=12")
    with (
        pytest.warns(UserWarning, match=r"differs .* model\.width \(8 -> 12\)"),
        pytest.raises(ValueError, match=r"another architecture: .*checkpoint \(8, 3, 3, 3\) vs "),
    ):
        train(wider, out_dir=tmp_path, resume=result.checkpoint)
    other = UNet(**tiny_config("model.width=12").model)
    with pytest.raises(ValueError, match=r"conv_in.weight: checkpoint \(8, 3, 3, 3\) vs network"):
        ckpt.load_state(other, state_of(result.checkpoint)["model"], "model")
    deeper = UNet(
        **tiny_config("model.multipliers=[1, 2, 2]", "model.attention=[false, false, false]").model
    )
    with pytest.raises(ValueError, match="missing from the checkpoint"):
        ckpt.load_state(deeper, state_of(result.checkpoint)["model"], "model")


def test_bad_resume_requests_are_clear_errors(trained, tmp_path):
    result, config = trained
    with pytest.raises(ValueError, match=r"resume=.never. but .* already holds 2 checkpoint"):
        train(config, out_dir=result.out_dir, resume="never")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no valid checkpoint"):
        train(config, out_dir=tmp_path / "run", resume=tmp_path / "empty")
    with pytest.raises(ValueError, match="does not exist"):
        train(config, out_dir=tmp_path / "run", resume=tmp_path / "absent")
    with pytest.raises(TypeError, match="resume must be 'auto', 'never' or a path"):
        train(config, out_dir=tmp_path / "run", resume=3)
    done = train(config, out_dir=result.out_dir)  # already at train.steps: nothing to do
    assert done.step == 4 and done.resumed_from == result.checkpoint


def test_a_nan_loss_stops_with_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(step: int, model: torch.nn.Module) -> None:
        if step == 3:  # the weights go NaN after step 3: the loss of step 4 is NaN
            with torch.no_grad():
                model.conv_in.weight.fill_(float("nan"))

    config = tiny_config("train.steps=8", "train.log_every=4")
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite at step 4.*step_00000002\.pt"):
        train(config, out_dir=tmp_path, on_step=poison)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt"]
    assert torch.isfinite(state_of(list_checkpoints(tmp_path)[0])["model"]["conv_in.weight"]).all()


def test_ema_follows_its_definition():
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, 0.75)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update()
    torch.testing.assert_close(ema.module.weight, 0.75 * start["weight"] + 0.25 * model.weight)
    torch.testing.assert_close(ema.module.bias, start["bias"])
    assert not ema.module.training and not ema.module.weight.requires_grad
    follow = EMA(model, 0.0)
    with torch.no_grad():
        model.weight.mul_(3.0)
    follow.update()
    assert torch.equal(follow.module.weight, model.weight)
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\)"):
        EMA(model, 1.0)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        EMA(lambda x: x, 0.5)


@pytest.mark.parametrize(
    ("step", "decay"), [(0, 0.1), (1, 2 / 11), (8, 0.5), (80, 0.9), (10**6, 0.99)]
)
def test_ema_warm_up_caps_the_decay(step, decay):
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, 0.99)
    assert ema.decay_at(step) == pytest.approx(decay)
    start = ema.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(step)
    torch.testing.assert_close(ema.module.weight, decay * start + (1 - decay) * model.weight)


@pytest.mark.parametrize("step", [-1, 1.0, True, "3"])
def test_ema_step_must_be_a_count(step):
    with pytest.raises(ValueError, match=r"EMA step must be an int >= 0 \(the update count\), got"):
        EMA(torch.nn.Linear(2, 1), 0.9).update(step)


def test_rng_capture_restore_round_trips_every_generator(tmp_path):
    torch.save(capture_rng(), tmp_path / "rng.pt")
    draws = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    assert torch.equal(draws[0], again[0]) and np.array_equal(draws[1], again[1])
    assert draws[2:] == again[2:]


def test_distributed_setup_reads_and_checks_the_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    single = setup_distributed("cpu")
    assert (single.rank, single.world_size, single.is_main) == (0, 1, True)
    assert single.per_rank_batch(6) == 6
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ValueError, match="incomplete: RANK set but LOCAL_RANK, WORLD_SIZE"):
        setup_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ValueError, match="must be integers"):
        setup_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ValueError, match="inconsistent torchrun environment"):
        setup_distributed("cpu")
    with pytest.raises(ValueError, match="device must be"):
        setup_distributed("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            setup_distributed("cuda")
    with pytest.raises(ValueError, match="must be divisible by the 4 ranks"):
        DistributedContext(0, 4, 0, torch.device("cpu")).per_rank_batch(6)
