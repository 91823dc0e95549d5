"""LinearDegradation: ``y = H x + sigma n`` exactly, its matrix, and its bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from oracle_cases import DT, H_GENERAL, make_h, make_prior

from indiflow.oracles import (
    LinearDegradation,
)


def test_degradation_applies_h_plus_noise():
    h = make_h("general")
    x = make_prior("full").sample(50_000, generator=torch.Generator().manual_seed(14))
    torch.testing.assert_close(LinearDegradation(h, 0.0).apply(x), x @ h.mT, rtol=0, atol=0)
    y = LinearDegradation(h, 0.7).apply(x, generator=torch.Generator().manual_seed(15))
    resid = y - x @ h.mT
    se_mean, se_std = 0.7 / 50_000**0.5, 0.7 / (2 * 50_000) ** 0.5
    assert bool((resid.mean(0).abs() <= 5 * se_mean).all())
    assert bool(((resid.std(0) - 0.7).abs() <= 5 * se_std).all())
    images = torch.randn(3, 1, 4, 4, dtype=DT)
    assert LinearDegradation(None, 0.1).apply(images).shape == images.shape
    torch.testing.assert_close(LinearDegradation(None, 0.0).apply(images), images)


def test_degradation_rejects_bad_inputs():
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        LinearDegradation(None, -1.0)
    with pytest.raises(TypeError, match="sigma must be a real number"):
        LinearDegradation(None, "0.1")
    with pytest.raises(ValueError, match=r"H must be a square \(D, D\) matrix"):
        LinearDegradation(torch.ones(2, 3, dtype=DT), 0.1)
    with pytest.raises(ValueError, match="H must have at least 2 dimension"):
        LinearDegradation(torch.ones(2, dtype=DT), 0.1)
    with pytest.raises(TypeError, match="H must be a floating-point tensor"):
        LinearDegradation(torch.eye(2, dtype=torch.int64), 0.1)
    with pytest.raises(ValueError, match="H holds NaN"):
        LinearDegradation(torch.full((2, 2), math.nan, dtype=DT), 0.1)
    with pytest.raises(ValueError, match=r"x must have shape \(B, D\) = \(B, 2\)"):
        LinearDegradation(torch.eye(2, dtype=DT), 0.1).apply(torch.zeros(4, 3, dtype=DT))
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor"):
        LinearDegradation(None, 0.1).apply([1.0, 2.0])


def test_degradation_matrix_in_the_requested_dtype_and_device():
    deg = LinearDegradation(None, 1)
    assert type(deg.sigma) is float and deg.sigma == 1.0
    eye = deg.matrix(3, DT, torch.device("cpu"))
    assert eye.dtype == DT and torch.equal(eye, torch.eye(3, dtype=DT))
    assert deg.matrix(3, DT, torch.device("meta")).device.type == "meta"
    h = torch.tensor(H_GENERAL, dtype=DT)
    general = LinearDegradation(h, 0.1)
    assert general.matrix(2, torch.float32, torch.device("cpu")).dtype == torch.float32
    assert general.matrix(2, DT, torch.device("meta")).device.type == "meta"
    with pytest.raises(ValueError) as info:
        general.matrix(3, DT, torch.device("cpu"))
    assert str(info.value) == "H is (2, 2) but the states have D = 3"


def test_degradation_apply_is_h_x_plus_sigma_times_the_next_normal_draw():
    x = torch.tensor([[-0.0, 1.0, 2.0], [3.0, -4.0, 0.5]], dtype=DT)
    # The identity copies x exactly (the sign of -0.0 included), for (B, D) states too.
    same = LinearDegradation(None, 0.0).apply(x)
    assert torch.equal(same, x) and bool(torch.signbit(same[0, 0]))
    noisy = LinearDegradation(None, 0.7).apply(x, torch.Generator().manual_seed(3))
    draw = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=DT)
    assert torch.equal(noisy, x + 0.7 * draw)
    # H in float64 acts on float32 states in float32.
    h = torch.tensor([[0.8, 0.3, 0.0], [-0.4, 0.6, 0.0], [0.0, 0.0, 1.0]], dtype=DT)
    x32 = x.float()
    assert torch.equal(LinearDegradation(h, 0.0).apply(x32), x32 @ h.float().mT)
    # sigma = 0 draws nothing from the generator, and a bad generator is refused anyway.
    g = torch.Generator().manual_seed(5)
    LinearDegradation(h, 0.0).apply(x, g)
    assert torch.equal(
        torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(5))
    )
    for sigma in (0.0, 0.5):
        with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
            LinearDegradation(None, sigma).apply(x, generator=0)
    assert LinearDegradation(None, 0.5).apply(x.to("meta")).device.type == "meta"
