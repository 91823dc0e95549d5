"""MetricsLog's TensorBoard side, against a recording stand-in for ``torch.utils.tensorboard``.

The ``tensorboard`` package is an optional extra that is not installed for the tests, so a fake
module with a recording ``SummaryWriter`` is put in ``sys.modules`` for the duration of a test.
"""

from __future__ import annotations

import csv
import math
import sys
import types
from pathlib import Path
from typing import ClassVar

import pytest

from indiflow.training.metrics_log import MetricsLog

MODULE = "torch.utils.tensorboard"


class RecordingWriter:
    """Stands in for ``SummaryWriter``: records its arguments and every call."""

    created: ClassVar[list[RecordingWriter]] = []

    def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
        self.log_dir = log_dir
        self.purge_step = purge_step
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False
        RecordingWriter.created.append(self)

    def add_scalar(self, tag: str, scalar_value: float, global_step: int) -> None:
        self.scalars.append((tag, scalar_value, global_step))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tensorboard(monkeypatch: pytest.MonkeyPatch) -> list[RecordingWriter]:
    """Install the fake module; returns the list of writers it creates."""
    module = types.ModuleType(MODULE)
    module.SummaryWriter = RecordingWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setattr(RecordingWriter, "created", [])
    return RecordingWriter.created


def read_csv(folder: Path) -> list[list[str]]:
    with open(folder / "metrics.csv", newline="") as file:
        return list(csv.reader(file))


def test_every_value_is_written_as_a_scalar_at_its_step(tmp_path, fake_tensorboard):
    log = MetricsLog(tmp_path, ["loss", "lr"], start_step=0, tensorboard=True)
    (writer,) = fake_tensorboard
    assert writer.log_dir == str(tmp_path / "tensorboard")
    assert writer.purge_step == 1
    log.write(1, {"loss": 0.5, "lr": 1e-3})
    log.write(2, {"loss": 0.25})  # lr missing: an empty CSV cell, no scalar
    log.write(3, {"loss": math.inf, "lr": 2e-3})
    assert writer.scalars == [
        ("loss", 0.5, 1),
        ("lr", 1e-3, 1),
        ("loss", 0.25, 2),
        ("loss", math.inf, 3),
        ("lr", 2e-3, 3),
    ]
    assert not writer.closed
    log.close()
    assert writer.closed
    assert read_csv(tmp_path) == [
        ["step", "loss", "lr"],
        ["1", "0.5", "0.001"],
        ["2", "0.25", ""],
        ["3", "inf", "0.002"],
    ]


def test_a_resumed_run_purges_tensorboard_events_after_its_step(tmp_path, fake_tensorboard):
    MetricsLog(tmp_path, ["loss"], start_step=0, tensorboard=True).write(7, {"loss": 1.0})
    log = MetricsLog(tmp_path, ["loss"], start_step=5, tensorboard=True)
    log.write(6, {"loss": 2.0})
    first, resumed = fake_tensorboard
    assert (first.purge_step, resumed.purge_step) == (1, 6)
    assert resumed.log_dir == first.log_dir == str(tmp_path / "tensorboard")
    assert resumed.scalars == [("loss", 2.0, 6)]
    assert read_csv(tmp_path) == [["step", "loss"], ["6", "2.0"]]


def test_tensorboard_false_never_creates_a_writer(tmp_path, fake_tensorboard):
    log = MetricsLog(tmp_path, ["loss"], start_step=0, tensorboard=False)
    log.write(1, {"loss": 0.5})
    log.close()
    assert fake_tensorboard == []
    assert read_csv(tmp_path) == [["step", "loss"], ["1", "0.5"]]


@pytest.mark.parametrize(
    "module",
    [None, types.ModuleType(MODULE)],  # not installed; installed without SummaryWriter
    ids=["missing-module", "missing-class"],
)
def test_a_failed_import_falls_back_to_the_csv_alone(tmp_path, monkeypatch, module):
    monkeypatch.setitem(sys.modules, MODULE, module)
    with pytest.raises(ImportError):  # the premise: this import fails here
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    log = MetricsLog(tmp_path, ["loss"], start_step=0, tensorboard=True)
    log.write(1, {"loss": 0.5})
    log.close()
    assert read_csv(tmp_path) == [["step", "loss"], ["1", "0.5"]]
    assert not (tmp_path / "tensorboard").exists()
