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


def _decreasing(i: int, a: float, b: float) -> str:
    return (
        f"TimeGrid must be strictly decreasing (from 1 towards 0), but ts[{i}] = {a} "
        f"and ts[{i + 1}] = {b}; reverse or deduplicate the grid"
    )


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        ([1.0], "TimeGrid needs at least 2 points, got 1: (1.0,)"),
        ([], "TimeGrid needs at least 2 points, got 0: ()"),
        ([1.0, 1.0, 0.0], _decreasing(0, 1.0, 1.0)),
        ([1.0, 0.5, 0.5, 0.0], _decreasing(1, 0.5, 0.5)),
        ([1.0, 0.75, 0.5, 0.6, 0.0], _decreasing(2, 0.5, 0.6)),
        ([0.0, 0.5, 1.0], _decreasing(0, 0.0, 0.5)),
        ([1.5, 0.5, 0.25, 0.0], "TimeGrid values must lie in [0, 1], got first 1.5 and last 0.0"),
        ([1.0, 0.5, 0.25, -0.1], "TimeGrid values must lie in [0, 1], got first 1.0 and last -0.1"),
        ([1.0, math.nan, 0.0], "TimeGrid values must be finite, got (1.0, nan, 0.0)"),
        ([1.0, math.inf, 0.0], "TimeGrid values must be finite, got (1.0, inf, 0.0)"),
    ],
)
def test_invalid_grids(ts, message):
    with pytest.raises(ValueError) as info:
        ind.TimeGrid(ts)
    assert str(info.value) == message


_SEQUENCE = "TimeGrid needs a sequence of floats (list, tuple, 1-D tensor or array), got "


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1.0, 0.0", _SEQUENCE + "str"),
        (b"10", _SEQUENCE + "bytes"),
        (3, _SEQUENCE + "int"),
        ({1.0, 0.0}, _SEQUENCE + "set"),
        ([1.0, "a"], "TimeGrid values must be real numbers, got str: 'a'"),
        ([1.0, True], "TimeGrid values must be real numbers, got bool: True"),
        ([1.0, None], "TimeGrid values must be real numbers, got NoneType: None"),
    ],
)
def test_grid_type_errors(bad, message):
    with pytest.raises(TypeError) as info:
        ind.TimeGrid(bad)
    assert str(info.value) == message


def test_one_step_grids_are_valid():
    """Two points are the smallest grid: a single step, e.g. one Euler step straight to 0."""
    assert ind.TimeGrid([1.0, 0.0]).steps == 1
    assert ind.TimeGrid.uniform(1).ts == (1.0, 0.0)
    assert ind.TimeGrid.power(1, 3.0).ts == (1.0, 0.0)
    assert ind.TimeGrid([0.5, 0.25]).t_end == 0.25


@pytest.mark.parametrize(
    "ts",
    [
        np.array([1.0, 0.5, 0.0], dtype=np.float32),
        np.array([1, 0], dtype=np.int64),
        torch.tensor([1.0, 0.25, 0.0], dtype=torch.float16),
    ],
)
def test_values_are_stored_as_python_floats(ts):
    grid = ind.TimeGrid(ts)
    assert all(type(v) is float for v in grid.ts)
    assert grid.ts == tuple(float(v) for v in ts.tolist())


@pytest.mark.parametrize(
    ("make", "exc", "message"),
    [
        (lambda: ind.TimeGrid.uniform(0), ValueError, "n must be >= 1, got 0"),
        (lambda: ind.TimeGrid.uniform(2.5), TypeError, "n must be an int, got float: 2.5"),
        (lambda: ind.TimeGrid.power(0, 2.0), ValueError, "n must be >= 1, got 0"),
        (lambda: ind.TimeGrid.power(2.5, 2.0), TypeError, "n must be an int, got float: 2.5"),
        (lambda: ind.TimeGrid.power(4, 0.0), ValueError, "rho must be > 0, got 0.0"),
        (lambda: ind.TimeGrid.log_uniform(4, 1.5), ValueError, "t_min must be in (0, 1), got 1.5"),
        (lambda: ind.TimeGrid.log_uniform(4, 1.0), ValueError, "t_min must be in (0, 1), got 1.0"),
        (lambda: ind.TimeGrid.log_uniform(4, 0.0), ValueError, "t_min must be > 0, got 0.0"),
        (lambda: ind.TimeGrid.log_uniform(1, 0.1), ValueError, "n must be >= 2, got 1"),
    ],
)
def test_constructor_errors(make, exc, message):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value) == message
