"""ind.restore and tiled evaluation: layout, partition of unity, tiled vs untiled, solvers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import indiflow as ind
from indiflow.restoration import TiledRegressor, blend_windows, tile_starts
from problems import algorithm1


def pointwise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A per-pixel regressor with a per-sample time dependence; smooth trajectories to t = 0."""
    tt = t[:, None, None, None]
    return 0.3 + tt * (0.5 * torch.sin(3 * x_t) - 0.2 * tt)


class SmallConv(nn.Module):
    """Two 3x3 convolutions with zero padding: output depends on inputs within 2 pixels."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x_t))) * t[:, None, None, None] + 0.5 * x_t


class WithMultiple(SmallConv):
    size_multiple = 4


def uniform(n: int) -> ind.FixedSteps:
    return ind.FixedSteps(ind.TimeGrid.uniform(n))


@given(
    length=st.integers(1, 300),
    tile=st.integers(1, 40),
    overlap=st.integers(0, 30),
    multiple=st.sampled_from([1, 2, 4, 8]),
)
@settings(max_examples=200, deadline=None)
def test_tiles_cover_the_axis_on_the_lattice_with_at_least_the_overlap(
    length: int, tile: int, overlap: int, multiple: int
) -> None:
    length, tile = length * multiple, tile * multiple
    if tile - overlap < multiple:
        return
    starts = tile_starts(length, tile, overlap, multiple)
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] == length - tile
    assert all(s % multiple == 0 for s in starts)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(0 < g <= tile - overlap for g in gaps)
    assert max(gaps) - min(gaps) <= multiple
    # Fewest tiles: one fewer could not cover the axis with strides of at most tile - overlap.
    max_stride = (tile - overlap) // multiple * multiple
    assert (len(starts) - 2) * max_stride + tile < length


@given(
    length=st.integers(1, 200),
    tile=st.integers(2, 64),
    overlap=st.integers(0, 40),
    multiple=st.sampled_from([1, 2, 4]),
)
@settings(max_examples=200, deadline=None)
def test_windows_are_a_partition_of_unity_vanishing_near_shared_edges(
    length: int, tile: int, overlap: int, multiple: int
) -> None:
    length, tile = length * multiple, tile * multiple
    if overlap >= tile or tile - overlap < multiple:
        return
    starts = tile_starts(length, tile, overlap, multiple)
    extent = min(length, tile)
    windows = blend_windows(starts, extent, overlap)
    total = torch.zeros(length, dtype=torch.float64)
    for start, w in zip(starts, windows, strict=True):
        assert ((w >= 0) & (w <= 1)).all()
        total[start : start + extent] += w
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-15)
    # A tile's weight is exactly 0 on pixels whose centre is within overlap / 4 of an edge it
    # shares with a neighbour.
    centres = torch.arange(extent, dtype=torch.float64) + 0.5
    for i, w in enumerate(windows):
        if i > 0:
            assert (w[centres < overlap / 4] == 0).all()
        if i < len(windows) - 1:
            assert (w[centres > extent - overlap / 4] == 0).all()


def test_windows_in_two_dimensions_sum_to_one() -> None:
    starts = tile_starts(100, 32, 12)
    windows = blend_windows(starts, 32, 12)
    total = torch.zeros(100, 100, dtype=torch.float64)
    for r, wr in zip(starts, windows, strict=True):
        for c, wc in zip(starts, windows, strict=True):
            total[r : r + 32, c : c + 32] += wr[:, None] * wc[None, :]
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-15)


def test_window_follows_the_raised_cosine_ramp() -> None:
    # Two tiles of 16 at 0 and 8 on an axis of 24: overlap [8, 16), centre 12, ramp width 4.
    first, second = blend_windows([0, 8], 16, 8)
    u = torch.arange(16, dtype=torch.float64) + 0.5 - 12
    ramp = torch.where(u.abs() < 2, torch.sin(torch.pi / 2 * (u / 4 + 0.5)) ** 2, (u > 0) * 1.0)
    torch.testing.assert_close(first, 1 - ramp, rtol=0, atol=1e-15)
    torch.testing.assert_close(second[:8], ramp[8:], rtol=0, atol=1e-15)
    assert (second[8:] == 1).all()


@pytest.mark.parametrize(("height", "width"), [(40, 40), (37, 53), (20, 90), (16, 16)])
def test_tiled_equals_untiled_for_a_pointwise_regressor(height: int, width: int) -> None:
    x = torch.rand(2, 3, height, width, dtype=torch.float64)
    t = torch.tensor([0.3, 0.8], dtype=torch.float64)
    tiled = TiledRegressor(pointwise, tile=16, overlap=6, tile_batch=3)(x, t)
    torch.testing.assert_close(tiled, pointwise(x, t), rtol=0, atol=1e-15)


@pytest.mark.parametrize("net", [SmallConv(), WithMultiple()])
def test_tiled_equals_untiled_when_the_receptive_field_is_within_a_quarter_overlap(
    net: nn.Module,
) -> None:
    net = net.double()
    x = torch.rand(2, 3, 52, 44, dtype=torch.float64)
    t = torch.tensor([0.4, 0.9], dtype=torch.float64)
    with torch.no_grad():
        tiled = TiledRegressor(net, tile=16, overlap=8)(x, t)
        torch.testing.assert_close(tiled, net(x, t), rtol=0, atol=1e-12)
        # A narrower overlap lets the tile edges show: the agreement is then not exact.
        seams = TiledRegressor(net, tile=16, overlap=4)(x, t)
        assert (seams - net(x, t)).abs().max() > 1e-6


def test_tile_batch_does_not_change_the_result() -> None:
    x, t = torch.rand(2, 3, 50, 50, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    net = SmallConv().double()
    with torch.no_grad():
        one = TiledRegressor(net, 16, 8, tile_batch=1)(x, t)
        many = TiledRegressor(net, 16, 8, tile_batch=7)(x, t)
    torch.testing.assert_close(one, many, rtol=0, atol=1e-14)


def test_euler_on_the_uniform_grid_is_algorithm_1() -> None:
    y = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    for tile in (None, 8):
        x = ind.restore(pointwise, y, ind.Euler(), uniform(7), tile=tile, overlap=4)
        torch.testing.assert_close(x, algorithm1(pointwise, y, 7), rtol=0, atol=1e-12)


def test_start_noise_is_drawn_from_the_generator() -> None:
    y = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    noise = ind.ConstantNoise(0.1)

    def run(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return ind.restore(pointwise, y, ind.Euler(), uniform(4), noise=noise, generator=generator)

    eta = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=y.dtype)
    expected = algorithm1(pointwise, y + ind.start_noise_std(noise) * eta, 4)
    torch.testing.assert_close(run(3), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(run(3), run(3), rtol=0, atol=0)
    assert (run(3) - run(4)).abs().max() > 1e-3


def test_brownian_noise_starts_with_std_eps0() -> None:
    y = torch.zeros(1, 1, 64, 64, dtype=torch.float64)

    def identity(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x_t

    # F = x_t makes the field zero, so the result is the start x_1 itself.
    x = ind.restore(identity, y, ind.Euler(), uniform(2), noise=ind.BrownianNoise(0.3))
    assert 0.28 < float(x.std()) < 0.32


GRID = ind.TimeGrid.power(6, 2.0)
DESIGN = ind.GridDesign(GRID, "Heun()", 6, 11.0, 1, 0.0, "power(6, rho=2.0)", 0.0, 0)


@pytest.mark.parametrize(
    ("solver", "controller"),
    [
        (ind.Euler(), uniform(5)),
        (ind.Heun(), ind.FixedSteps(GRID)),
        (ind.ExpMultistep3(), uniform(6)),
        (ind.DormandPrince(), ind.Adaptive(rtol=1e-5, atol=1e-7)),
        (ind.Heun(), ind.FixedSteps(DESIGN.grid)),
    ],
    ids=["euler", "heun", "expmultistep3", "dopri-adaptive", "grid-design"],
)
def test_any_solver_tiled_agrees_with_untiled_and_with_solve(solver, controller) -> None:
    y = torch.rand(2, 3, 30, 26, dtype=torch.float64)
    direct = ind.solve(ind.InDIField(pointwise), solver, y, controller).x
    untiled = ind.restore(pointwise, y, solver, controller)
    tiled = ind.restore(pointwise, y, solver, controller, tile=16, overlap=8, tile_batch=2)
    torch.testing.assert_close(untiled, direct, rtol=0, atol=0)
    torch.testing.assert_close(tiled, untiled, rtol=0, atol=1e-12)


def test_unet_tiles_sit_on_its_downsampling_lattice() -> None:
    # Interior pixels carry one tile's weight only, and there the tiled field is the network
    # applied to that tile alone: the tiling feeds the UNet tiles at lattice-aligned offsets.
    torch.manual_seed(0)
    net = ind.nets.UNet(width=8, multipliers=[1, 2, 2], attention=[False] * 3, groups=4).eval()
    with torch.no_grad():
        net.conv_out.weight.normal_(0.0, 0.05)
        x, t = torch.rand(1, 3, 60, 60), torch.tensor([0.5])
        assert tile_starts(60, 32, 4, net.size_multiple) == [0, 28]
        tiled = TiledRegressor(net, tile=32, overlap=4)(x, t)
        # The only ramp is on pixels 29 and 30 (centre 30, width overlap / 2 = 2).
        torch.testing.assert_close(tiled[..., :28, :28], net(x[..., :32, :32], t)[..., :28, :28])
        torch.testing.assert_close(tiled[..., 32:, 32:], net(x[..., 28:, 28:], t)[..., 4:, 4:])


def test_local_unet_tiled_restoration_equals_untiled() -> None:
    # Two levels of width 8 reach at most 26 pixels; tiles of 96 with an overlap of 80 here
    # overlap by 80 and blend over their central 16 pixels, leaving 32-pixel margins.
    torch.manual_seed(0)
    net = ind.nets.UNet(width=8, multipliers=[1, 2], attention=[False] * 2, norm="layer")
    net = net.double()
    with torch.no_grad():
        net.conv_out.weight.normal_(0.0, 0.05)
    y = torch.rand(1, 3, 160, 90, dtype=torch.float64)
    assert tile_starts(160, 96, 80, net.size_multiple) == [0, 16, 32, 48, 64]
    controller = uniform(3)
    untiled = ind.restore(net, y, ind.Heun(), controller)
    tiled = ind.restore(net, y, ind.Heun(), controller, tile=96, overlap=80, tile_batch=2)
    torch.testing.assert_close(tiled, untiled, rtol=0, atol=1e-12)


def test_regressor_runs_in_eval_mode_without_gradients_and_keeps_its_mode() -> None:
    class Dropping(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(0.5))
            self.drop = nn.Dropout(0.5)

        def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.drop(self.scale * x_t)

    net = Dropping().train()
    y = torch.rand(1, 3, 8, 8)
    x = ind.restore(net, y, ind.Euler(), uniform(3))
    torch.testing.assert_close(x, algorithm1(lambda x_t, t: 0.5 * x_t, y, 3))
    assert not x.requires_grad
    assert net.training


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tile": 8, "overlap": 8}, ValueError, r"larger than the overlap"),
        ({"tile": 8, "overlap": 12}, ValueError, r"larger than the overlap"),
        ({"tile": 0}, ValueError, "tile must be >= 1"),
        ({"tile": 16.0}, TypeError, "tile must be an int"),
        ({"tile": 16, "overlap": -1}, ValueError, "overlap must be >= 0"),
        ({"tile": 64, "tile_batch": 0}, ValueError, "tile_batch"),
        ({"overlap": -1}, ValueError, "overlap must be >= 0"),
        ({"noise": 0.1}, TypeError, "noise must be"),
        ({"generator": 0}, TypeError, "generator"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ind.restore(pointwise, torch.rand(1, 3, 8, 8), ind.Euler(), uniform(2), **kwargs)


def test_layout_helpers_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="length = 30 must be a multiple"):
        tile_starts(30, 16, 4, multiple=4)
    with pytest.raises(ValueError, match="larger than the overlap"):
        tile_starts(64, 16, 16)
    with pytest.raises(TypeError, match="length must be an int"):
        tile_starts(64.0, 16, 4)
    with pytest.raises(ValueError, match="starts must be increasing"):
        blend_windows([0, 8, 8], 16, 4)
    with pytest.raises(ValueError, match="starts must be increasing"):
        blend_windows([0, 14], 16, 4)  # neighbours overlap by 2 < 4
    with pytest.raises(ValueError, match="starts must be increasing"):
        blend_windows([], 16, 4)
    with pytest.raises(ValueError, match="extent must be >= 1"):
        blend_windows([0], 0, 0)


def test_tile_must_fit_the_network_multiple() -> None:
    y = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"multiple of the regressor's size_multiple = 4.*try 20"):
        ind.restore(WithMultiple(), y, ind.Euler(), uniform(2), tile=18, overlap=4)
    with pytest.raises(ValueError, match="lower the overlap"):
        ind.restore(WithMultiple(), y, ind.Euler(), uniform(2), tile=16, overlap=14)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ind.restore(pointwise, torch.rand(3, 8, 8), ind.Euler(), uniform(2))
    with pytest.raises(TypeError, match="floating-point"):
        ind.restore(pointwise, torch.ones(1, 3, 8, 8, dtype=torch.int64), ind.Euler(), uniform(2))
    with pytest.raises(TypeError, match="callable"):
        ind.restore("net", torch.rand(1, 3, 8, 8), ind.Euler(), uniform(2), tile=4, overlap=2)
    with pytest.raises(TypeError, match="callable"):
        ind.restore("net", torch.rand(1, 3, 8, 8), ind.Euler(), uniform(2))
    with pytest.raises(TypeError, match="solver"):
        ind.restore(pointwise, torch.rand(1, 3, 8, 8), "euler", uniform(2))
    with pytest.raises(ValueError, match="shaped like its input"):
        ind.restore(
            lambda x, t: x[..., :-1],
            torch.rand(1, 3, 8, 8),
            ind.Euler(),
            uniform(2),
            tile=4,
            overlap=2,
        )
