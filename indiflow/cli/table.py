"""Result tables of the console script: aligned text for the terminal, CSV for files."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

Cell = str | float


def _text(cell: Cell, decimals: int) -> str:
    return cell if isinstance(cell, str) else f"{cell:.{decimals}f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Cell]], decimals: int = 4) -> str:
    """Render ``rows`` under ``header`` as aligned columns.

    Text cells are left-aligned, numbers right-aligned with ``decimals`` decimals; columns are
    separated by two spaces and the header is underlined with dashes.

    Raises:
        ValueError: if a row's length differs from the header's.
    """
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a table row has {len(row)} cells for {len(header)} columns: {row}")
    texts = [[_text(cell, decimals) for cell in row] for row in rows]
    widths = [max([len(name)] + [len(row[i]) for row in texts]) for i, name in enumerate(header)]
    numeric = [bool(rows) and not isinstance(rows[0][i], str) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(list(header)), rule, *(line(row) for row in texts)])


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    """Write ``header`` and ``rows`` as comma-separated values, numbers at full precision.

    Floats are written with ``repr`` (shortest text that reads back to the same double); the
    parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([cell if isinstance(cell, str) else repr(float(cell)) for cell in row])
