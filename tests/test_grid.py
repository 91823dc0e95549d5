import itertools
import math

import numpy as np
import pytest
import torch

import indiflow as ind


def test_uniform_is_algorithm1_grid():
    grid = ind.TimeGrid.uniform(4)
    assert grid.ts == (1.0, 0.75, 0.5, 0.25, 0.0)
    assert grid.steps == 4 and len(grid) == 5 and grid.t_end == 0.0


def test_power_grid_values():
    grid = ind.TimeGrid.power(3, 2.0)
    assert grid.ts == pytest.approx((1.0, (2 / 3) ** 2, (1 / 3) ** 2, 0.0))


def test_log_uniform_grid_is_geometric_then_zero():
    grid = ind.TimeGrid.log_uniform(5, 1e-3)
    ts = grid.ts
    assert ts[0] == 1.0 and ts[-2] == 1e-3 and ts[-1] == 0.0 and grid.steps == 5
    ratios = [b / a for a, b in itertools.pairwise(ts[:-1])]
    assert max(ratios) == pytest.approx(min(ratios))


@pytest.mark.parametrize(
    "ts",
    [torch.tensor([1.0, 0.5, 0.0]), np.array([1.0, 0.5, 0.0]), [1, 0.5, 0], (1.0, 0.5, 0.0)],
)
def test_accepts_sequences_tensors_and_arrays(ts):
    assert ind.TimeGrid(ts).ts == (1.0, 0.5, 0.0)


def test_grid_may_end_above_zero():
    grid = ind.TimeGrid([1.0, 0.5, 0.1])
    assert grid.t_end == 0.1
    assert torch.equal(grid.as_tensor(), torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64))


@pytest.mark.parametrize(
    ("ts", "match"),
    [
        ([1.0], "at least 2 points"),
        ([1.0, 1.0, 0.0], "strictly decreasing"),
        ([0.0, 0.5, 1.0], "strictly decreasing"),
        ([1.5, 0.5, 0.0], r"lie in \[0, 1\]"),
        ([1.0, 0.5, -0.1], r"lie in \[0, 1\]"),
        ([1.0, math.nan, 0.0], "finite"),
        ([1.0, math.inf, 0.0], "finite"),
    ],
)
def test_invalid_grids(ts, match):
    with pytest.raises(ValueError, match=match):
        ind.TimeGrid(ts)


@pytest.mark.parametrize("bad", ["1.0, 0.0", 3, [1.0, "a"], [1.0, True]])
def test_grid_type_errors(bad):
    with pytest.raises(TypeError, match="TimeGrid"):
        ind.TimeGrid(bad)


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: ind.TimeGrid.uniform(0), ValueError, "n must be >= 1"),
        (lambda: ind.TimeGrid.uniform(2.5), TypeError, "n must be an int"),
        (lambda: ind.TimeGrid.power(4, 0.0), ValueError, "rho must be > 0"),
        (lambda: ind.TimeGrid.log_uniform(4, 1.5), ValueError, r"t_min must be in \(0, 1\)"),
        (lambda: ind.TimeGrid.log_uniform(4, 0.0), ValueError, "t_min must be > 0"),
        (lambda: ind.TimeGrid.log_uniform(1, 0.1), ValueError, "n must be >= 2"),
    ],
)
def test_constructor_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
