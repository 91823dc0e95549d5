"""indi_loss: exact values for known regressors, composition of the draws, training, errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind


@dataclass(frozen=True)
class FixedTime:
    """A time law that always returns ``t`` (to make the loss deterministic)."""

    t: float

    def sample(self, n, generator=None, *, dtype=None, device=None):
        return torch.full((n,), self.t, dtype=dtype or torch.float32, device=device)


def _pairs(b: int = 64, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=torch.float64), torch.randn(
        b, d, generator=g, dtype=torch.float64
    )


@given(t=st.floats(0.01, 1.0), b=st.integers(1, 16), d=st.integers(1, 4))
@settings(max_examples=30, deadline=None)
def test_identity_regressor_gives_exact_loss(t: float, b: int, d: int) -> None:
    """F = x_t without noise: ``x_t - x = t (y - x)``, so both norms are known in closed form."""
    x, y = _pairs(b, d)
    law = FixedTime(t)
    l2 = ind.indi_loss(lambda x_t, _t: x_t, x, y, time_law=law, norm="l2")
    l1 = ind.indi_loss(lambda x_t, _t: x_t, x, y, time_law=law, norm="l1")
    torch.testing.assert_close(l2, (t**2 * (y - x).square().sum(1)).mean())
    torch.testing.assert_close(l1, (t * (y - x).abs().sum(1)).mean())


def test_zero_regressor_loss_is_mean_squared_norm() -> None:
    x, y = _pairs()
    loss = ind.indi_loss(lambda x_t, _t: torch.zeros_like(x_t), x, y)
    torch.testing.assert_close(loss, x.square().sum(1).mean())


@pytest.mark.parametrize("noise", [None, ind.ConstantNoise(0.3), ind.BrownianNoise(0.5)])
@pytest.mark.parametrize("law", [ind.UniformTime(), ind.MixtureTime(1.0), ind.PowerTime(2.0)])
def test_loss_composes_time_law_and_interpolant_draws(noise, law) -> None:
    """Same generator state: the loss equals drawing t, then x_t, then the norm, by hand."""
    x, y = _pairs()
    interpolant = ind.Interpolant(noise)

    def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.5 * x_t + t[:, None]

    g = torch.Generator().manual_seed(7)
    loss = ind.indi_loss(
        regressor, x, y, interpolant=interpolant, time_law=law, norm="l2", generator=g
    )
    g = torch.Generator().manual_seed(7)
    t = law.sample(x.shape[0], g, dtype=x.dtype)
    x_t = interpolant.sample(x, y, t, generator=g).x_t
    expected = (regressor(x_t, t) - x).square().sum(1).mean()
    torch.testing.assert_close(loss, expected)


def test_image_shaped_states_sum_over_all_dims() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 2, 3, 3, generator=g)
    loss = ind.indi_loss(lambda x_t, _t: x_t, x, y, time_law=FixedTime(0.5), norm="l1")
    torch.testing.assert_close(loss, (0.5 * (y - x).abs().flatten(1).sum(1)).mean())


def test_gradients_reach_parameters() -> None:
    x, y = _pairs(d=2)
    net = ind.nets.ToyMLP(2, hidden=8, depth=1).double()
    ind.indi_loss(net, x, y, generator=torch.Generator().manual_seed(0)).backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_loss_decreases_on_a_tiny_run(norm: str) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    net = ind.nets.ToyMLP(2, hidden=32, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        x = means[torch.randint(2, (128,), generator=g)]
        y = x + 0.5 * torch.randn(x.shape, generator=g)
        loss = ind.indi_loss(net, x, y, norm=norm, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.5 * first


def test_unknown_norm_is_rejected() -> None:
    x, y = _pairs()
    with pytest.raises(ValueError, match=r"norm must be one of \('l1', 'l2'\), got 'l3'"):
        ind.indi_loss(lambda x_t, _t: x_t, x, y, norm="l3")  # type: ignore[arg-type]


def test_mismatched_shapes_are_rejected() -> None:
    x, _ = _pairs(8, 2)
    with pytest.raises(ValueError, match=r"x and y must have the same shape"):
        ind.indi_loss(lambda x_t, _t: x_t, x, torch.zeros(8, 3, dtype=torch.float64))


def _message(error: pytest.ExceptionInfo) -> str:
    return str(error.value)


def test_bad_arguments_are_rejected() -> None:
    x, y = _pairs()
    f = lambda x_t, _t: x_t  # noqa: E731
    with pytest.raises(TypeError) as error:
        ind.indi_loss("net", x, y)  # type: ignore[arg-type]
    assert _message(error) == "regressor must be callable as regressor(x_t, t), got str"
    with pytest.raises(TypeError, match=r"^x must be a torch.Tensor, got ndarray"):
        ind.indi_loss(f, x.numpy(), y)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as error:
        ind.indi_loss(f, x, y, interpolant=ind.ConstantNoise(0.1))  # type: ignore[arg-type]
    assert _message(error) == "interpolant must be an indiflow.Interpolant, got ConstantNoise"
    with pytest.raises(TypeError, match=r"^time_law must be a time law .* got str$"):
        ind.indi_loss(f, x, y, time_law="uniform")  # type: ignore[arg-type]
    with pytest.raises(TypeError) as error:
        ind.indi_loss(f, x, y, generator=1)  # type: ignore[arg-type]
    assert _message(error) == "generator must be a torch.Generator or None, got int"


@pytest.mark.parametrize(
    ("output", "got"),
    [
        (lambda x_t: x_t[:, :1], "(64, 1)"),
        (lambda x_t: x_t[0], "(3,)"),
        (lambda x_t: x_t.tolist(), "list"),
        (lambda x_t: x_t.numpy(), "ndarray"),
        (lambda x_t: None, "NoneType"),
    ],
)
def test_regressor_output_must_be_a_tensor_shaped_like_x(output, got: str) -> None:
    """A wrong shape and a non-tensor both get the ValueError naming what came back."""
    x, y = _pairs()
    with pytest.raises(ValueError) as error:
        ind.indi_loss(lambda x_t, _t: output(x_t), x, y)
    expected = f"regressor(x_t, t) must return a tensor of the shape of x (64, 3), got {got}"
    assert _message(error) == expected


@dataclass
class RecordingTime:
    """A law that records each request and returns ``t = 0.5`` (and never checks a generator)."""

    calls: list

    def sample(self, n, generator=None, *, dtype=None, device=None):
        self.calls.append((n, generator, dtype, device))
        return torch.full((n,), 0.5, dtype=dtype, device=device)


def test_time_law_is_asked_for_the_batch_size_dtype_and_device_of_x() -> None:
    x, y = _pairs(5, 2)
    law = RecordingTime([])
    g = torch.Generator().manual_seed(0)
    ind.indi_loss(lambda x_t, _t: x_t, x, y, time_law=law, generator=g)
    assert law.calls == [(5, g, torch.float64, torch.device("cpu"))]


def test_generator_is_checked_before_a_user_time_law_draws() -> None:
    """A user law may not validate the generator itself; indi_loss does, before any draw."""
    x, y = _pairs(5, 2)
    law = RecordingTime([])
    with pytest.raises(TypeError, match=r"^generator must be a torch.Generator or None, got str$"):
        ind.indi_loss(lambda x_t, _t: x_t, x, y, time_law=law, generator="seed")  # type: ignore[arg-type]
    assert law.calls == []


@pytest.mark.parametrize("shape", [(4,), ()])
def test_rank_below_two_is_rejected_with_the_fix(shape: tuple[int, ...]) -> None:
    """A 1-D ``x`` used to reach ``flatten(1)`` and fail with an IndexError."""
    x = torch.zeros(shape)
    with pytest.raises(ValueError, match=r"x must have shape \(B, \*dims\).*pass x\[:, None\]"):
        ind.indi_loss(lambda x_t, _t: x_t, x, x)
    with pytest.raises(ValueError, match=r"y must have shape \(B, \*dims\)"):
        ind.indi_loss(lambda x_t, _t: x_t, torch.zeros(4, 1), torch.zeros(4))


def test_a_batch_of_scalars_as_b_by_one_works() -> None:
    x, y = _pairs(16, 1)
    loss = ind.indi_loss(lambda x_t, _t: x_t, x, y, time_law=FixedTime(0.5))
    torch.testing.assert_close(loss, (0.25 * (y - x).square()).mean())


def test_empty_batch_is_rejected_instead_of_nan() -> None:
    calls = []

    def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(t)
        return x_t

    empty = torch.zeros(0, 3)
    with pytest.raises(ValueError) as error:
        ind.indi_loss(regressor, empty, empty)
    assert _message(error) == (
        "x and y hold no samples (shape (0, 3)): the loss is a mean over the batch, so pass at "
        "least one pair"
    )
    assert not calls  # rejected before any draw or evaluation
