"""indiflow.nets.UNet: shapes for any size, time conditioning, output forms, config, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.nets.unet import pad_to_multiple
from indiflow.nets.unet_blocks import ChannelLayerNorm

SMALL = {
    "channels": 3,
    "width": 8,
    "multipliers": [1, 2, 2],
    "attention": [False, False, True],
    "groups": 4,
    "heads": 2,
    "time_dim": 16,
    "fourier_freqs": 4,
}


def small_net(seed: int = 0, **overrides: object) -> ind.nets.UNet:
    """A small UNet whose zero-initialised output layer is randomised, so the output varies."""
    torch.manual_seed(seed)
    net = ind.nets.UNet(**{**SMALL, **overrides})
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.conv_out.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator))
    return net.eval()


@given(
    height=st.integers(1, 41),
    width=st.integers(1, 41),
    batch=st.integers(1, 3),
    output=st.sampled_from(["direct", "residual"]),
)
@settings(max_examples=20, deadline=None)
def test_any_height_and_width_round_trips(height: int, width: int, batch: int, output: str) -> None:
    net = small_net(output=output)
    x = torch.rand(batch, 3, height, width)
    out = net(x, torch.rand(batch))
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()


def test_odd_size_output_equals_the_crop_of_the_padded_input() -> None:
    net = small_net()
    x, t = torch.rand(2, 3, 37, 53), torch.rand(2)
    padded = pad_to_multiple(x, net.size_multiple)
    assert padded.shape[-2:] == (40, 56)
    torch.testing.assert_close(padded[..., :37, :53], x, rtol=0, atol=0)
    # Reflection: the first padded row mirrors row 35 about the last row 36.
    torch.testing.assert_close(padded[..., 37, :53], x[..., 35, :], rtol=0, atol=0)
    torch.testing.assert_close(net(x, t), net(padded, t)[..., :37, :53])


def test_padding_falls_back_to_replicate_when_reflection_is_undefined() -> None:
    x = torch.rand(1, 1, 1, 2)
    padded = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 4)
    torch.testing.assert_close(padded[..., :, 2:], x[..., :, 1:].expand(1, 1, 4, 2))


def test_size_multiple_is_two_to_the_levels_minus_one() -> None:
    assert ind.nets.UNet(**{**SMALL, "multipliers": [1], "attention": [False]}).size_multiple == 1
    assert small_net().size_multiple == 4
    default = ind.nets.UNet()
    assert default.size_multiple == 2 ** (len(default.to_config()["multipliers"]) - 1)


def test_each_sample_uses_its_own_time() -> None:
    net = small_net()
    x = torch.rand(1, 3, 16, 16).expand(2, 3, 16, 16)
    out = net(x, torch.tensor([0.2, 0.9]))
    assert (out[0] - out[1]).abs().max() > 1e-4
    torch.testing.assert_close(out[1:], net(x[1:], torch.tensor([0.9])))
    torch.testing.assert_close(net(x, 0.3), net(x, torch.full((2,), 0.3)))


def test_batch_elements_are_independent_in_eval_mode() -> None:
    net = small_net()
    x, t = torch.rand(4, 3, 12, 20), torch.rand(4)
    full = net(x, t)
    for i in range(4):
        torch.testing.assert_close(full[i : i + 1], net(x[i : i + 1], t[i : i + 1]))


@pytest.mark.parametrize("output", ["direct", "residual"])
def test_fresh_network_is_zero_or_identity(output: str) -> None:
    net = ind.nets.UNet(**{**SMALL, "output": output}).eval()
    x, t = torch.rand(3, 3, 9, 14), torch.rand(3)
    expected = torch.zeros_like(x) if output == "direct" else x
    torch.testing.assert_close(net(x, t), expected, rtol=0, atol=0)


def test_residual_form_is_x_minus_t_times_the_direct_network() -> None:
    direct = small_net(output="direct")
    residual = ind.nets.UNet(**{**SMALL, "output": "residual"})
    residual.load_state_dict(direct.state_dict())
    residual.eval()
    x, t = torch.rand(2, 3, 16, 16), torch.tensor([0.25, 0.75])
    expected = x - t[:, None, None, None] * direct(x, t)
    torch.testing.assert_close(residual(x, t), expected)


def test_gradients_reach_every_parameter() -> None:
    net = small_net().train()
    x, t = torch.rand(2, 3, 16, 16), torch.rand(2)
    net(x, t).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_fresh_network_learns_through_its_zero_output_layer() -> None:
    net = ind.nets.UNet(**SMALL)
    net(torch.rand(2, 3, 8, 8), torch.rand(2)).sub(1).square().mean().backward()
    assert net.conv_out.weight.grad.abs().sum() > 0
    assert net.conv_out.bias.grad.abs().sum() > 0


def test_float64_computes_the_same_function_as_float32() -> None:
    net32 = small_net()
    net64 = small_net().double()
    x, t = torch.rand(2, 3, 10, 11, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    out = net64(x, t)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), net32(x.float(), t.float()), rtol=1e-4, atol=1e-5)


def test_channel_layer_norm_matches_its_formula() -> None:
    norm = ChannelLayerNorm(5).double()
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, 5))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, 5))
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    expected = torch.empty_like(x)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                v = x[b, :, i, j]
                mean, var = v.sum() / 5, ((v - v.sum() / 5) ** 2).sum() / 5
                expected[b, :, i, j] = (v - mean) / (var + 1e-5).sqrt() * norm.weight + norm.bias
    torch.testing.assert_close(norm(x), expected)


def test_layer_norm_network_is_local_and_group_norm_network_is_not() -> None:
    x = torch.rand(1, 3, 96, 96, dtype=torch.float64)
    changed = x.clone()
    changed[..., :8, :8] = 1.0  # farther than the receptive field from the opposite corner
    t = torch.tensor([0.5], dtype=torch.float64)
    for norm in ("layer", "group"):
        net = small_net(norm=norm, attention=[False, False, False]).double()
        with torch.no_grad():
            corner = (net(x, t) - net(changed, t))[..., -8:, -8:].abs().max()
        if norm == "layer":
            assert corner < 1e-14, float(corner)
        else:
            assert corner > 1e-6, float(corner)


def test_config_round_trips_through_json() -> None:
    net = small_net(dropout=0.1, output="residual")
    config = json.loads(json.dumps(net.to_config()))
    rebuilt = ind.nets.UNet.from_config(config)
    assert rebuilt.to_config() == net.to_config()
    rebuilt.load_state_dict(net.state_dict())  # same architecture, same parameter shapes
    assert isinstance(config["multipliers"], list) and isinstance(config["attention"], list)


def test_default_is_between_one_and_two_million_parameters() -> None:
    net = ind.nets.UNet()
    expected = sum(p.numel() for p in net.parameters())
    assert net.num_parameters() == expected
    assert 1_000_000 <= expected <= 2_000_000


def test_unknown_config_key_names_the_closest_valid_one() -> None:
    with pytest.raises(ValueError, match=r"'multiplier'.*'multipliers'"):
        ind.nets.UNet.from_config({"multiplier": [1, 2]})
    with pytest.raises(TypeError, match="dict"):
        ind.nets.UNet.from_config([("width", 8)])


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"width": 0}, ValueError, "width"),
        ({"width": 8.0}, TypeError, "width"),
        ({"blocks": True}, TypeError, "blocks"),
        ({"multipliers": []}, TypeError, "multipliers"),
        ({"multipliers": "12"}, TypeError, "multipliers"),
        ({"multipliers": [1, 0, 2]}, ValueError, r"multipliers\[1\]"),
        ({"attention": [True]}, ValueError, "one per entry"),
        ({"attention": [0, 0, 1]}, ValueError, "attention"),
        ({"groups": 3}, ValueError, "groups = 3"),
        ({"heads": 3}, ValueError, "heads = 3"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"dropout": "0.1"}, TypeError, "dropout"),
        ({"output": "velocity"}, ValueError, "direct"),
        ({"norm": "batch"}, ValueError, "norm must be one of"),
        ({"fourier_max_freq": -1.0}, ValueError, "fourier_max_freq"),
    ],
)
def test_bad_constructor_arguments(overrides: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ind.nets.UNet(**{**SMALL, **overrides})


def test_groups_only_constrain_group_norm() -> None:
    net = ind.nets.UNet(**{**SMALL, "norm": "layer", "groups": 3})
    assert net.to_config()["norm"] == "layer"
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in net.modules())


def test_bad_forward_inputs() -> None:
    net = small_net()
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        net(x, torch.rand(2, 1))
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        net(x, torch.rand(3))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(2, 1, 8, 8), torch.rand(2))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(3, 8, 8), torch.rand(3))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.ones(2, 3, 8, 8, dtype=torch.int64), torch.rand(2))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        net(x.numpy(), torch.rand(2))
    with pytest.raises(TypeError, match="t must be"):
        net(x, "0.5")
