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


def _raised(exc: type[Exception], call) -> str:
    with pytest.raises(exc) as info:
        call()
    return str(info.value)


def test_bad_inputs():
    x, y = pair(4)
    sample = ind.Interpolant().sample
    assert _raised(ValueError, lambda: sample(x, y[:, :2], 0.5)) == (
        "x and y must have the same shape, got (4, 3) and (4, 2)"
    )
    outside = "t must lie in [0, 1]; got values outside it"
    assert _raised(ValueError, lambda: sample(x, y, 1.5)) == outside
    assert _raised(ValueError, lambda: sample(x, y, torch.full((4,), -0.1))) == outside
    assert _raised(ValueError, lambda: sample(x, y, math.nan)) == outside
    wrap = " must be a torch.Tensor, got ndarray; wrap arrays with torch.as_tensor"
    assert _raised(TypeError, lambda: sample(x.numpy(), y, 0.5)) == "x" + wrap
    assert _raised(TypeError, lambda: sample(x, y.numpy(), 0.5)) == "y" + wrap
    assert _raised(TypeError, lambda: sample(x, y, 0.5, generator=0)) == (
        "generator must be a torch.Generator or None, got int"
    )
    assert _raised(TypeError, lambda: ind.Interpolant(noise=0.1)) == (
        "noise must be None, indiflow.ConstantNoise(eps) or indiflow.BrownianNoise(eps0), got float"
    )
    assert _raised(ValueError, lambda: ind.ConstantNoise(-1.0)) == (
        "ConstantNoise eps must be >= 0, got -1.0"
    )
    assert _raised(ValueError, lambda: ind.BrownianNoise(-1.0)) == (
        "BrownianNoise eps0 must be >= 0, got -1.0"
    )
    assert _raised(ValueError, lambda: sample(x, y, torch.tensor([0.5, 0.5]))) == (
        "t must be a scalar or have shape (B,) = (4,), got (2,)"
    )


@pytest.mark.parametrize(
    ("make", "attr", "given", "stored"),
    [
        (ind.ConstantNoise, "eps", torch.tensor(0.25), 0.25),
        (ind.ConstantNoise, "eps", 2, 2.0),
        (ind.BrownianNoise, "eps0", torch.tensor(0.5, dtype=torch.float64), 0.5),
        (ind.BrownianNoise, "eps0", 1, 1.0),
    ],
)
def test_noise_levels_are_stored_as_python_floats(make, attr, given, stored):
    noise = make(given)
    assert type(getattr(noise, attr)) is float and getattr(noise, attr) == stored
    assert noise == make(stored)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eps_at_on_tensors_is_elementwise(dtype):
    """Tensor times give a tensor of the schedule's values, in the times' dtype."""
    t = torch.tensor([0.0, 0.25, 1.0], dtype=dtype)
    constant = ind.ConstantNoise(0.3).eps_at(t)
    assert isinstance(constant, torch.Tensor) and constant.dtype == dtype
    assert torch.equal(constant, torch.full((3,), 0.3, dtype=dtype))  # also at t = 0
    brownian = ind.BrownianNoise(0.5).eps_at(t[1:])
    assert isinstance(brownian, torch.Tensor) and brownian.dtype == dtype
    assert torch.equal(brownian, torch.tensor([1.0, 0.5], dtype=dtype))  # eps0 / sqrt(t)
    assert ind.BrownianNoise(0.5).eps_at(0.25) == 1.0
    assert ind.ConstantNoise(0.3).eps_at(0.0) == 0.3


@pytest.mark.parametrize(
    ("noise", "t", "std"),
    [
        (None, 0.5, 0.0),
        (None, 0.0, 0.0),
        (ind.ConstantNoise(0.3), 0.5, 0.15),
        (ind.ConstantNoise(0.3), 0.0, 0.0),
        (ind.BrownianNoise(0.5), 0.25, 0.25),
    ],
)
def test_interpolant_std_is_t_times_eps_t(noise, t, std):
    interp = ind.Interpolant(noise)
    assert interp.std(t) == pytest.approx(std, abs=0.0, rel=1e-15)
    as_tensor = interp.std(torch.tensor([t, t], dtype=torch.float64))
    assert torch.equal(as_tensor, torch.full((2,), interp.std(t), dtype=torch.float64))


def test_sample_keeps_its_inputs():
    x, y = pair(6)
    s = ind.Interpolant(ind.ConstantNoise(0.1)).sample(x, y, 0.5)
    assert s.x is x and s.y is y


@pytest.mark.parametrize("noise", [ind.ConstantNoise(0.3), ind.BrownianNoise(0.5)])
def test_noise_is_the_generators_next_normal_draw(noise, monkeypatch):
    """x_t = (1 - t) x + t y + std(t) * eta, eta drawn in x's dtype and device from generator."""
    x, y = pair(6)
    t = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    calls = []
    randn = torch.randn

    def recording_randn(*size, generator=None, dtype=None, device=None):
        calls.append((size, generator, dtype, device))
        return randn(*size, generator=generator, dtype=dtype, device=device)

    monkeypatch.setattr(torch, "randn", recording_randn)
    g = torch.Generator().manual_seed(5)
    x_t = ind.Interpolant(noise).sample(x, y, t, generator=g).x_t
    assert calls == [((x.shape,), g, torch.float64, torch.device("cpu"))]
    eta = randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    tb = t[:, None]
    expected = (1 - tb) * x + tb * y + noise.std(tb) * eta
    torch.testing.assert_close(x_t, expected, rtol=0.0, atol=1e-15)
