"""The closed-form Gaussian trajectory against its ODE and a SciPy integration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
from oracle_cases import DT

from indiflow.oracles import (
    gaussian_posterior_mean,
    gaussian_trajectory,
)

MEAN = torch.tensor([0.5, -0.3], dtype=DT)


COVS = {
    "full": torch.tensor([[0.08, 0.03], [0.03, 0.3]], dtype=DT),
    "rank-1": torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=DT),
}


@pytest.mark.parametrize("cov_kind", list(COVS))
def test_trajectory_starts_at_y_and_solves_the_ode(cov_kind):
    cov, sigma = COVS[cov_kind], 1.2
    y = MEAN + torch.randn(4, 2, generator=torch.Generator().manual_seed(8), dtype=DT)
    F = gaussian_posterior_mean(MEAN, cov, sigma)
    torch.testing.assert_close(gaussian_trajectory(y, 1.0, MEAN, cov, sigma), y, rtol=0, atol=1e-14)
    h = 1e-5
    for t in (0.1, 0.5, 0.9):
        x = gaussian_trajectory(y, t, MEAN, cov, sigma)
        slope = (
            gaussian_trajectory(y, t + h, MEAN, cov, sigma)
            - gaussian_trajectory(y, t - h, MEAN, cov, sigma)
        ) / (2 * h)
        torch.testing.assert_close(slope, (x - F(x, t)) / t, rtol=0, atol=1e-8)
    # Limit at t = 0: F(x(t), t) = x(t) - t x'(t) = x(0) + O(t^2).
    x0 = gaussian_trajectory(y, 0.0, MEAN, cov, sigma)
    t_small = 1e-6
    f_small = F(gaussian_trajectory(y, t_small, MEAN, cov, sigma), t_small)
    torch.testing.assert_close(f_small, x0, rtol=0, atol=1e-9)


def test_trajectory_matches_numerical_integration():
    cov, sigma = COVS["full"], 1.0
    y = MEAN + torch.randn(3, 2, generator=torch.Generator().manual_seed(9), dtype=DT)
    F = gaussian_posterior_mean(MEAN, cov, sigma)

    def rhs(t: float, x: np.ndarray) -> np.ndarray:
        xt = torch.from_numpy(x).reshape(3, 2)
        return ((xt - F(xt, t)) / t).reshape(-1).numpy()

    sol = scipy.integrate.solve_ivp(
        rhs, (1.0, 0.05), y.reshape(-1).numpy(), method="DOP853", rtol=1e-12, atol=1e-12
    )
    expected = gaussian_trajectory(y, 0.05, MEAN, cov, sigma).reshape(-1).numpy()
    np.testing.assert_allclose(sol.y[:, -1], expected, rtol=0, atol=1e-9)


def test_trajectory_per_sample_times_and_shapes():
    cov = COVS["full"]
    y = torch.randn(4, 1, 2, generator=torch.Generator().manual_seed(10), dtype=DT)
    t = torch.tensor([0.0, 0.2, 0.7, 1.0], dtype=DT)
    out = gaussian_trajectory(y, t, MEAN, cov, 0.8)
    assert out.shape == y.shape
    for i in range(4):
        row = gaussian_trajectory(y[i : i + 1], float(t[i]), MEAN, cov, 0.8)
        torch.testing.assert_close(out[i : i + 1], row, rtol=0, atol=1e-14)
    out32 = gaussian_trajectory(y.float(), t, MEAN, cov, 0.8)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, out.float(), rtol=1e-5, atol=1e-6)


def test_trajectory_rejects_bad_inputs():
    cov, y = COVS["full"], torch.zeros(2, 2, dtype=DT)
    for t in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
            gaussian_trajectory(y, t, MEAN, cov, 1.0)
    with pytest.raises(ValueError, match=r"mean must have shape \(D,\)"):
        gaussian_trajectory(y, 0.5, MEAN[None], cov, 1.0)
    with pytest.raises(ValueError, match=r"cov must be a \(D, D\) = \(2, 2\)"):
        gaussian_trajectory(y, 0.5, MEAN, torch.ones(3, 3, dtype=DT), 1.0)
    with pytest.raises(TypeError, match=r"cov must be a torch.Tensor"):
        gaussian_trajectory(y, 0.5, MEAN, 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        gaussian_trajectory(y, 0.5, MEAN, cov, -1.0)
    with pytest.raises(ValueError, match=r"cov\[0\] is not positive semi-definite"):
        gaussian_trajectory(y, 0.5, MEAN, -cov, 1.0)
    with pytest.raises(ValueError, match="cov is singular and sigma = 0"):
        gaussian_trajectory(y, 0.5, MEAN, COVS["rank-1"], 0.0)
    with pytest.raises(ValueError, match=r"y must have shape \(B, D\) = \(B, 2\)"):
        gaussian_trajectory(torch.zeros(2, 3, dtype=DT), 0.5, MEAN, cov, 1.0)


def test_trajectory_messages_exactly():
    cov, y = COVS["full"], torch.zeros(1, 2, dtype=DT)
    cases = [
        (
            TypeError,
            (y, 0.5, [0.5, -0.3], cov, 1.0),
            "mean must be a torch.Tensor, got list; wrap arrays with torch.as_tensor",
        ),
        (TypeError, (y, "0.5", MEAN, cov, 1.0), "t must be a real number, got str: '0.5'"),
        # One sample is checked too.
        (ValueError, (y, 1.5, MEAN, cov, 1.0), "t must lie in [0, 1], got values in [1.5, 1.5]"),
        (
            ValueError,
            (y, 0.5, MEAN, COVS["rank-1"], 0.0),
            "cov is singular and sigma = 0, so (C + sigma^2 I)^{-1/2} is undefined; "
            "use sigma > 0 or a positive-definite cov",
        ),
    ]
    for exc, args, message in cases:
        with pytest.raises(exc) as info:
            gaussian_trajectory(*args)
        assert str(info.value) == message


def test_trajectory_of_an_empty_batch_is_empty_on_the_device_of_y():
    """``B = 0`` has no times to check; the result keeps ``y``'s shape, dtype and device
    (``meta`` here: every prior tensor is moved to ``y``'s device)."""
    cov = COVS["full"]
    for device in ("cpu", "meta"):
        y = torch.zeros(0, 2, dtype=DT, device=device)
        for t in (0.5, torch.zeros(0, dtype=DT, device=device)):
            out = gaussian_trajectory(y, t, MEAN, cov, 1.0)
            assert out.shape == (0, 2) and out.dtype == DT and out.device.type == device
