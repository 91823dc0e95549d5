"""Which sample `_reject_or_raise` blames: the one whose step values are NaN or inf, never a
sample whose error norm is infinite only because its tolerance is zero."""

import pytest
import torch

from indiflow.per_sample_adaptive import _reject_or_raise
from indiflow.solvers import StepResult

NAN, INF = float("nan"), float("inf")


def _step(x: list[list[float]], error: list[list[float]]) -> StepResult:
    return StepResult(
        x=torch.tensor(x, dtype=torch.float64),
        error=torch.tensor(error, dtype=torch.float64),
        denoised_next=None,
        nfe=2,
        state=None,
    )


@pytest.mark.parametrize(
    ("x", "error"),
    [
        ([[1.0, 2.0], [NAN, 0.5]], [[0.1, 0.1], [0.1, 0.1]]),  # sample 1's state is NaN
        ([[1.0, 2.0], [0.5, 0.5]], [[0.1, 0.1], [0.1, INF]]),  # sample 1's error is inf
    ],
)
def test_only_the_sample_with_non_finite_values_is_blamed(x, error):
    # Sample 0 has an infinite error norm from finite values (a zero tolerance): rejectable.
    # Sample 1 (row 7 of the batch) produced non-finite values: the error names it, not row 3.
    err = torch.tensor([INF, NAN], dtype=torch.float64)
    rows, t, s = torch.tensor([3, 7]), torch.tensor([0.9, 0.8]), torch.tensor([0.5, 0.4])
    with pytest.raises(RuntimeError) as info:
        _reject_or_raise(err, _step(x, error), rows, t, s)
    assert str(info.value) == (
        "the field returned non-finite values (NaN or inf) for sample 7 in the step from "
        "t = 0.8 to s = 0.4; check the regressor at that time (and its input scaling)"
    )


def test_finite_values_with_an_infinite_norm_are_rejected_not_raised():
    err = torch.tensor([INF, 0.25, NAN], dtype=torch.float64)
    step = _step([[1.0, 2.0], [0.5, 0.5], [0.0, 0.0]], [[0.1, 0.1], [0.1, 0.1], [0.0, 0.0]])
    rows, times = torch.tensor([0, 1, 2]), torch.tensor([0.9, 0.9, 0.9])
    out = _reject_or_raise(err, step, rows, times, times / 2)
    assert out.tolist() == [INF, 0.25, INF]
