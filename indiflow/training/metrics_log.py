"""The run's metrics: ``metrics.csv`` in the run folder, and TensorBoard when installed."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any


class MetricsLog:
    """Rows of ``step`` plus named values, appended to ``folder / "metrics.csv"``.

    A resumed run first drops the rows past the step it resumes from (written after that
    checkpoint by the run that was killed), so the file reads as one uninterrupted run. If the
    existing file has other columns (a changed ``validation.steps``), it is renamed to
    ``metrics_before_stepN.csv`` and a new one is started.
    Missing values are empty cells. With ``tensorboard=True`` and the ``tensorboard`` package
    installed, every value is also written as a scalar to ``folder / "tensorboard"``.

    Args:
        folder: the run folder.
        columns: the value names, in column order (after ``step``).
        start_step: rows with a larger step are removed.
        tensorboard: also log to TensorBoard if it can be imported.
    """

    def __init__(
        self, folder: Path, columns: list[str], *, start_step: int, tensorboard: bool
    ) -> None:
        self.path = Path(folder) / "metrics.csv"
        self.columns = ["step", *columns]
        kept = self._rows_up_to(start_step)
        with open(self.path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(self.columns)
            writer.writerows(kept)
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional: the CSV is the record
                pass
            else:
                self._writer = SummaryWriter(
                    str(Path(folder) / "tensorboard"), purge_step=start_step + 1
                )

    def _rows_up_to(self, step: int) -> list[list[str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as file:
            rows = list(csv.reader(file))
        if not rows or rows[0] != self.columns:  # other columns: keep the old file aside
            self.path.replace(self.path.with_name(f"metrics_before_step{step}.csv"))
            return []
        return [row for row in rows[1:] if row and int(row[0]) <= step]

    def write(self, step: int, values: dict[str, float]) -> None:
        """Append one row (flushed at once, so a killed run keeps it)."""
        cells = [str(step)] + [_cell(values.get(name)) for name in self.columns[1:]]
        with open(self.path, "a", newline="") as file:
            csv.writer(file).writerow(cells)
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(name, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return repr(float(value)) if math.isfinite(value) else str(value)


def progress_bar(total: int, initial: int) -> Any:
    """A tqdm bar over optimiser steps, or ``None`` when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
