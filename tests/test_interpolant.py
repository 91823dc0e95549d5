import math

import pytest
import torch

import indiflow as ind


def pair(n=4000, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(
        n, d, generator=g, dtype=torch.float64
    )


def test_endpoints_without_noise():
    x, y = pair(10)
    interp = ind.Interpolant()
    torch.testing.assert_close(interp.sample(x, y, 0.0).x_t, x)
    torch.testing.assert_close(interp.sample(x, y, 1.0).x_t, y)
    s = interp.sample(x, y, torch.full((10,), 0.25, dtype=torch.float64))
    torch.testing.assert_close(s.x_t, 0.75 * x + 0.25 * y)
    assert s.t.shape == (10,)


@pytest.mark.parametrize(
    ("noise", "std"),
    [
        (ind.ConstantNoise(0.3), lambda t: 0.3 * t),
        (ind.BrownianNoise(0.3), lambda t: 0.3 * math.sqrt(t)),
    ],
)
@pytest.mark.parametrize("t", [0.2, 0.7, 1.0])
def test_noise_std_follows_schedule(noise, std, t):
    x, y = pair()
    g = torch.Generator().manual_seed(1)
    s = ind.Interpolant(noise).sample(x, y, t, generator=g)
    resid = s.x_t - ((1 - t) * x + t * y)
    n = resid.numel()
    measured = resid.std().item()
    # The sample std of n normals has relative standard error about 1 / sqrt(2n).
    assert abs(measured / std(t) - 1) < 5 / math.sqrt(2 * n)
    assert noise.std(t) == pytest.approx(std(t))
    assert noise.eps_at(t) * t == pytest.approx(std(t))


def test_noise_vanishes_at_t0_and_is_reproducible():
    x, y = pair(50)
    interp = ind.Interpolant(ind.BrownianNoise(0.5))
    torch.testing.assert_close(interp.sample(x, y, 0.0).x_t, x)
    a = interp.sample(x, y, 0.5, generator=torch.Generator().manual_seed(3)).x_t
    b = interp.sample(x, y, 0.5, generator=torch.Generator().manual_seed(3)).x_t
    assert torch.equal(a, b)


def test_image_shaped_states():
    x = torch.randn(2, 3, 4, 5)
    s = ind.Interpolant(ind.ConstantNoise(0.1)).sample(x, x, torch.tensor([0.1, 0.9]))
    assert s.x_t.shape == x.shape and s.x_t.dtype == x.dtype


def test_bad_inputs():
    x, y = pair(4)
    with pytest.raises(ValueError, match="same shape"):
        ind.Interpolant().sample(x, y[:, :2], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ind.Interpolant().sample(x, y, 1.5)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        ind.Interpolant().sample(x.numpy(), y, 0.5)
    with pytest.raises(TypeError, match="generator"):
        ind.Interpolant().sample(x, y, 0.5, generator=0)
    with pytest.raises(TypeError, match="noise must be"):
        ind.Interpolant(noise=0.1)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        ind.ConstantNoise(-1.0)
    with pytest.raises(ValueError, match="eps0 must be >= 0"):
        ind.BrownianNoise(-1.0)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        ind.Interpolant().sample(x, y, torch.tensor([0.5, 0.5]))
