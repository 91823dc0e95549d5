"""A run SIGKILLed at several points (mid-epoch, during saves) and resumed ends bit-identical."""

from __future__ import annotations

import csv
import os

import pytest
import torch
from training_tiny import in_child, kill_self, state_of, tiny_config

from indiflow.training import checkpoint, list_checkpoints, train


def _kill_at_step(step: int):
    def hook(current: int, model: torch.nn.Module) -> None:
        if current == step:
            kill_self()

    return hook


def _losses(run) -> list[tuple[str, str, str, str]]:
    with open(run / "metrics.csv", newline="") as file:
        return [(r["step"], r["loss"], r["lr"], r["grad_norm"]) for r in csv.DictReader(file)]


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs"
    for index, slot in a["optimizer"]["state"].items():
        for name, value in slot.items():
            assert torch.equal(value, b["optimizer"]["state"][index][name]), (index, name)
    assert a["scheduler"] == b["scheduler"]


def test_sigkill_anywhere_then_resume_is_bit_identical(tmp_path):
    config = tiny_config()  # 10 steps, checkpoints every 2, keep 2, 3 batches per epoch
    reference = train(config, out_dir=tmp_path / "reference", resume="never")
    run = tmp_path / "run"

    # 1. Killed at step 1, before any checkpoint: the resume starts afresh.
    assert in_child(lambda: train(config, out_dir=run, on_step=_kill_at_step(1))) == -9
    assert list_checkpoints(run) == []

    # 2. Killed mid-epoch between two checkpoints (after step 3; step 2 is saved).
    assert in_child(lambda: train(config, out_dir=run, on_step=_kill_at_step(3))) == -9
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt"]

    # 3. Killed during the save of step 4, after the bytes are written, before the fsync.
    def die_in_fsync() -> None:
        os.fsync = lambda fd: kill_self()  # this child only
        train(config, out_dir=run)

    assert in_child(die_in_fsync) == -9
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt"]

    # 4. Killed during the save of step 6, with the temporary file complete but not renamed.
    def die_before_rename() -> None:
        publish = checkpoint._publish

        def dying(temporary, path):
            if path.name == "step_00000006.pt":
                kill_self()
            publish(temporary, path)

        checkpoint._publish = dying
        train(config, out_dir=run)

    assert in_child(die_before_rename) == -9
    leftovers = [p.name for p in run.iterdir() if ".tmp." in p.name]
    assert leftovers and all(name.startswith(".step_00000006.pt.tmp.") for name in leftovers)
    assert [p.name for p in list_checkpoints(run)][-1] == "step_00000004.pt"

    # 5. Killed right after the save of step 8 (at step 9); then the newest file is truncated.
    assert in_child(lambda: train(config, out_dir=run, on_step=_kill_at_step(9))) == -9
    newest = list_checkpoints(run)[-1]
    assert newest.name == "step_00000008.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    # 6. The final resume skips the truncated file (warning with its name) and finishes.
    with pytest.warns(UserWarning, match="step_00000008.pt"):
        result = train(config, out_dir=run, resume="auto")
    assert result.resumed_from.name == "step_00000006.pt"
    assert result.step == reference.step == 10
    _assert_same_state(state_of(result.checkpoint), state_of(reference.checkpoint))
    assert not [p for p in run.iterdir() if ".tmp." in p.name]
    # The metrics read as one run: the same rows, in order, as the uninterrupted one.
    assert _losses(run) == _losses(tmp_path / "reference")


def test_resume_from_an_explicit_checkpoint_file_continues_from_it(tmp_path):
    config = tiny_config("train.steps=4")
    first = train(config, out_dir=tmp_path / "a", resume="never")
    older = list_checkpoints(tmp_path / "a")[0]  # step 2
    again = train(config, out_dir=tmp_path / "b", resume=older)
    assert again.resumed_from == older and again.step == 4
    _assert_same_state(state_of(again.checkpoint), state_of(first.checkpoint))
