"""ToyMLP and its Fourier time embedding: formula, shapes, dtypes, input validation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.nets import FourierTimeEmbedding


def test_embedding_matches_its_formula() -> None:
    emb = FourierTimeEmbedding(n_freqs=4, max_freq=8.0)
    t = torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=torch.float64)
    freqs = [8.0 ** (j / 3) for j in range(4)]  # geometric from 1 to max_freq
    expected = torch.tensor(
        [
            [math.sin(2 * math.pi * f * v) for f in freqs]
            + [math.cos(2 * math.pi * f * v) for f in freqs]
            for v in t.tolist()
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(emb(t), expected)


@given(
    batch=st.integers(1, 17),
    dim=st.integers(1, 4),
    depth=st.integers(1, 3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
@settings(max_examples=25, deadline=None)
def test_shapes_and_dtypes_are_kept(batch: int, dim: int, depth: int, dtype: torch.dtype) -> None:
    net = ind.nets.ToyMLP(dim, hidden=8, depth=depth).to(dtype)
    x = torch.randn(batch, dim, dtype=dtype)
    out = net(x, torch.rand(batch, dtype=dtype))
    assert out.shape == (batch, dim)
    assert out.dtype == dtype


def test_scalar_time_equals_broadcast_time() -> None:
    torch.manual_seed(0)
    net = ind.nets.ToyMLP(2, hidden=16, depth=2)
    x = torch.randn(5, 2)
    torch.testing.assert_close(net(x, 0.3), net(x, torch.full((5,), 0.3)))
    torch.testing.assert_close(net(x, torch.tensor(0.3)), net(x, torch.full((5,), 0.3)))


def test_batch_rows_are_independent() -> None:
    torch.manual_seed(0)
    net = ind.nets.ToyMLP(2, hidden=16, depth=2)
    x, t = torch.randn(6, 2), torch.rand(6)
    torch.testing.assert_close(net(x, t)[2:4], net(x[2:4], t[2:4]))


def test_depth_and_width_build_the_stated_layers() -> None:
    net = ind.nets.ToyMLP(2, hidden=32, depth=3, n_freqs=5)
    linears = [m for m in net.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2 + 10, 32),
        (32, 32),
        (32, 32),
        (32, 2),
    ]


def test_defaults_follow_the_issue() -> None:
    net = ind.nets.ToyMLP(2)
    linears = [m for m in net.mlp if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 5 and linears[0].out_features == 256


def test_time_matters() -> None:
    torch.manual_seed(0)
    net = ind.nets.ToyMLP(2, hidden=16, depth=2)
    x = torch.randn(4, 2)
    assert not torch.allclose(net(x, 0.1), net(x, 0.9))


def test_bad_inputs_are_rejected() -> None:
    net = ind.nets.ToyMLP(2, hidden=8, depth=1)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 2\), got \(4, 3\)"):
        net(torch.zeros(4, 3), torch.ones(4))
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(B,\) = \(4,\)"):
        net(torch.zeros(4, 2), torch.ones(3))
    with pytest.raises(ValueError, match=r"hidden must be >= 1"):
        ind.nets.ToyMLP(2, hidden=0)
    with pytest.raises(TypeError, match=r"depth must be an int"):
        ind.nets.ToyMLP(2, depth=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"max_freq must be > 0"):
        FourierTimeEmbedding(4, max_freq=0.0)


def test_skip_output_is_the_velocity_form() -> None:
    """skip=True reads the same MLP as a velocity: F = x_t - t * MLP(x_t, t)."""
    torch.manual_seed(0)
    plain = ind.nets.ToyMLP(2, hidden=16, depth=2)
    skip = ind.nets.ToyMLP(2, hidden=16, depth=2, skip=True)
    skip.load_state_dict(plain.state_dict())
    x, t = torch.randn(6, 2), torch.rand(6)
    torch.testing.assert_close(skip(x, t), x - t[:, None] * plain(x, t))
    with pytest.raises(TypeError, match="skip must be a bool"):
        ind.nets.ToyMLP(2, skip=1)  # type: ignore[arg-type]
