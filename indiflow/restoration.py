"""``restore``: the InDI ODE on degraded images with any solver, optionally with tiled evaluation.

Tiling splits the *network evaluation* inside each ODE step, never the ODE itself: every step
updates the whole image from a field that is assembled tile by tile, so the solver, its grid and
its error control see one image, exactly as untiled. Only the regressor's memory is bounded by
the tile size.

Tile layout, per axis of length ``L`` (after padding ``L`` to a multiple of the regressor's
``size_multiple``, as the network itself would): an axis with ``L <= tile`` is one tile of
length ``L``; otherwise ``n = 1 + ceil((L - tile) / S)`` tiles of length ``tile``, where the
largest stride ``S`` is ``tile - overlap`` rounded down to a multiple of ``size_multiple``. The
first tile starts at 0 and the last ends at ``L``; the strides between are multiples of
``size_multiple`` spread as evenly as possible (they differ by at most one multiple), so every
two neighbours overlap by at least ``overlap`` pixels, and every tile sits on the network's
downsampling lattice and touches the image border only where the image has one.

Blending: between neighbours ``i`` and ``i + 1`` the weight passes from tile ``i`` to tile
``i + 1`` along the raised-cosine ramp ``R(u) = sin^2(pi/2 (u / W + 1/2))`` on
``|u| <= W / 2``, ``u`` measured from the centre of their overlap to the pixel centre, with
``W = overlap / 2`` (narrowed where strides are short, so that ramps never meet). Tile ``i``'s
weight along an axis is ``R(u_{i-1}) (1 - R(u_i))`` (factors dropped at the image borders) and a
tile's 2-D weight is the product of its two axes' weights. At any pixel at most one ramp per axis
is active, so the weights sum to one (``R + (1 - R)``), and each tile has zero weight on the
outer quarter of every overlap it shares: a regressor whose output at a pixel depends only on
inputs at most ``overlap / 4`` pixels away gives the untiled result, up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise

import torch
from einops import rearrange
from torch import nn

from indiflow._checks import check_generator, check_int, check_tensor
from indiflow.controllers import Adaptive, FixedSteps
from indiflow.field import InDIField
from indiflow.interpolant import BrownianNoise, ConstantNoise
from indiflow.nets.unet import pad_to_multiple
from indiflow.per_sample_adaptive import PerSampleAdaptive
from indiflow.solve import solve
from indiflow.solvers import Solver
from indiflow.stochastic import start_noise_std

Regressor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_tiling(tile: object, overlap: object, multiple: int) -> tuple[int, int]:
    tile = check_int("tile", tile, 1)
    overlap = check_int("overlap", overlap, 0)
    if overlap >= tile:
        raise ValueError(
            f"the tile ({tile}) must be larger than the overlap ({overlap}); use a larger "
            "tile or a smaller overlap"
        )
    if tile % multiple:
        raise ValueError(
            f"tile = {tile} must be a multiple of the regressor's size_multiple = {multiple} "
            f"(the network's downsampling factor); try {-(-tile // multiple) * multiple}"
        )
    if tile - overlap < multiple:
        raise ValueError(
            f"tile - overlap = {tile - overlap} must be at least the regressor's "
            f"size_multiple = {multiple}; lower the overlap"
        )
    return tile, overlap


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of the tiles covering ``[0, length)`` (see the module docstring).

    Args:
        length: axis length, a multiple of ``multiple``.
        tile: tile length, a multiple of ``multiple``.
        overlap: smallest overlap between neighbouring tiles.
        multiple: every start is a multiple of it.

    Returns:
        ``[0]`` if ``length <= tile``, else increasing starts from 0 to ``length - tile``.

    Raises:
        ValueError: ``length`` or ``tile`` not a multiple of ``multiple``, ``overlap >= tile``
            or ``tile - overlap < multiple``.
    """
    multiple = check_int("multiple", multiple, 1)
    tile, overlap = _check_tiling(tile, overlap, multiple)
    length = check_int("length", length, 1)
    if length % multiple:
        raise ValueError(
            f"length = {length} must be a multiple of multiple = {multiple}; pad the image first"
        )
    if length <= tile:
        return [0]
    units, max_stride = (length - tile) // multiple, (tile - overlap) // multiple
    steps = -(-units // max_stride)
    short, extra = divmod(units, steps)
    starts = [0]
    for i in range(steps):
        starts.append(starts[-1] + multiple * (short + (1 if i < extra else 0)))
    return starts


def blend_windows(starts: list[int], extent: int, overlap: int) -> list[torch.Tensor]:
    """One-axis blending weights (float64, each of length ``extent``) of tiles at ``starts``.

    The windows sum to one at every pixel of ``[0, starts[-1] + extent)``; see the module
    docstring for the ramp ``R`` and its width.

    Args:
        starts: tile starts from :func:`tile_starts`: increasing, from 0, each tile overlapping
            the next by at least ``overlap``.
        extent: tile length.
        overlap: the smallest overlap the layout was made with.
    """
    extent = check_int("extent", extent, 1)
    overlap = check_int("overlap", overlap, 0)
    if (
        not isinstance(starts, list | tuple)
        or not starts
        or starts[0] != 0
        or any(not isinstance(s, int) or isinstance(s, bool) for s in starts)
        or any(not 0 < b - a <= extent - overlap for a, b in pairwise(starts))
    ):
        raise ValueError(
            "starts must be increasing ints from 0 whose neighbours overlap by at least "
            f"overlap = {overlap} within tiles of extent = {extent} (use tile_starts), "
            f"got {starts!r}"
        )
    if len(starts) == 1:
        return [torch.ones(extent, dtype=torch.float64)]
    centres = [(a + b + extent) / 2 for a, b in pairwise(starts)]
    # Ramps reach W / 2 either side of their centre, so W <= the centre spacing keeps them apart.
    width = min(overlap / 2, min((b - a for a, b in pairwise(centres)), default=math.inf))

    def ramp(u: torch.Tensor) -> torch.Tensor:
        if width == 0:
            return (u > 0).double() + 0.5 * (u == 0).double()
        phase = ((u / width) + 0.5).clamp(0.0, 1.0)
        return torch.sin(0.5 * math.pi * phase) ** 2

    windows = []
    for i, start in enumerate(starts):
        centre = torch.arange(start, start + extent, dtype=torch.float64) + 0.5
        w = torch.ones(extent, dtype=torch.float64)
        if i > 0:
            w = w * ramp(centre - centres[i - 1])
        if i < len(starts) - 1:
            w = w * (1 - ramp(centre - centres[i]))
        windows.append(w)
    return windows


def _size_multiple(regressor: object) -> int:
    multiple = getattr(regressor, "size_multiple", 1)
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise TypeError(f"the regressor's size_multiple must be a positive int, got {multiple!r}")
    return multiple


class TiledRegressor:
    """``F(x_t, t)`` evaluated on overlapping tiles and blended (layout and window: module doc).

    Tiles are taken from the image padded at the bottom and right to multiples of the
    regressor's ``size_multiple`` attribute (1 when it has none; ``indiflow.nets.UNet`` has one),
    evaluated ``tile_batch`` tiles at a time (each a batch of all ``B`` images, with each image's
    own ``t``), weighted, summed and cropped back to ``H x W``.

    Args:
        regressor: ``(x_t, t) -> F`` on ``(B, C, h, w)`` images, ``t`` of shape ``(B,)``.
        tile: tile side, in pixels; a multiple of the regressor's ``size_multiple``.
        overlap: smallest overlap between neighbouring tiles, in pixels; ``0 <= overlap < tile``
            and ``tile - overlap >= size_multiple``.
        tile_batch: tiles evaluated in one call of the regressor.
    """

    def __init__(self, regressor: Regressor, tile: int, overlap: int, tile_batch: int = 1) -> None:
        if not callable(regressor):
            raise TypeError(
                f"regressor must be callable as regressor(x_t, t), got {type(regressor).__name__}"
            )
        self.regressor = regressor
        self.multiple = _size_multiple(regressor)
        self.tile, self.overlap = _check_tiling(tile, overlap, self.multiple)
        self.tile_batch = check_int("tile_batch", tile_batch, 1)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Blended ``F(x_t, t)``: ``x_t`` of shape ``(B, C, H, W)``, ``t`` of shape ``(B,)``."""
        check_tensor("x_t", x_t)
        if x_t.dim() != 4 or not isinstance(t, torch.Tensor) or t.shape != (x_t.shape[0],):
            raise ValueError(
                "a tiled regressor takes x_t of shape (B, C, H, W) and t of shape (B,), got "
                f"{tuple(x_t.shape)} and {getattr(t, 'shape', t)!r}"
            )
        height, width = x_t.shape[-2:]
        x = pad_to_multiple(x_t, self.multiple)
        axes = []
        for length in x.shape[-2:]:
            starts = tile_starts(length, self.tile, self.overlap, self.multiple)
            extent = min(length, self.tile)
            windows = blend_windows(starts, extent, self.overlap)
            axes.append([(s, w.to(x.dtype)) for s, w in zip(starts, windows, strict=True)])
        extent_h, extent_w = min(x.shape[-2], self.tile), min(x.shape[-1], self.tile)
        tiles = [(row, col) for row in axes[0] for col in axes[1]]
        out = torch.zeros_like(x)
        for first in range(0, len(tiles), self.tile_batch):
            chunk = tiles[first : first + self.tile_batch]
            patches = torch.cat(
                [x[..., r : r + extent_h, c : c + extent_w] for (r, _), (c, _) in chunk]
            )
            denoised = self.regressor(patches, t.repeat(len(chunk)))
            if not isinstance(denoised, torch.Tensor) or denoised.shape != patches.shape:
                got = getattr(denoised, "shape", type(denoised).__name__)
                raise ValueError(
                    f"the regressor must return a tensor shaped like its input "
                    f"{tuple(patches.shape)}, got {got}"
                )
            denoised = rearrange(denoised, "(k b) c h w -> k b c h w", k=len(chunk))
            for ((r, w_row), (c, w_col)), part in zip(chunk, denoised, strict=True):
                weight = w_row[:, None] * w_col[None, :]
                out[..., r : r + extent_h, c : c + extent_w] += weight * part
        return out[..., :height, :width]


@contextmanager
def _eval_mode(regressor: object) -> Iterator[None]:
    """Put an ``nn.Module`` regressor in eval mode, and back to its own mode afterwards."""
    if not isinstance(regressor, nn.Module):
        yield
        return
    was_training = regressor.training
    regressor.eval()
    try:
        yield
    finally:
        regressor.train(was_training)


def restore(
    regressor: Regressor,
    y: torch.Tensor,
    solver: Solver,
    controller: FixedSteps | Adaptive | PerSampleAdaptive,
    *,
    noise: ConstantNoise | BrownianNoise | None = None,
    generator: torch.Generator | None = None,
    tile: int | None = None,
    overlap: int = 32,
    tile_batch: int = 1,
) -> torch.Tensor:
    """Restore degraded images: ``solve(InDIField(F), solver, x_1, controller).x``.

    The start is ``x_1 = y + start_noise_std(noise) * eta``, ``eta ~ N(0, I)`` drawn with
    ``generator`` (``x_1 = y`` without noise): a regressor trained with interpolant noise must
    start from the noisy ``x_1`` it saw at ``t = 1``. Only the start is noisy; the steps are the
    deterministic ODE (``indiflow.sample_stochastic`` injects noise at every step instead).
    Runs under ``torch.no_grad()`` with an ``nn.Module`` regressor in eval mode (its previous
    mode is restored afterwards).

    Args:
        regressor: ``(x_t, t) -> F ≈ E[x | x_t]``, e.g. an ``indiflow.nets.UNet``.
        y: degraded images of shape ``(B, C, H, W)``; their dtype and device are kept.
        solver: any solver object (``ind.Euler()``, ``ind.Heun()``, ``ind.ExpMultistep3()``,
            ``ind.DormandPrince()``, ...).
        controller: ``ind.FixedSteps(grid)`` (any grid, e.g. a ``GridDesign``'s ``.grid``),
            ``ind.Adaptive(...)`` or ``ind.PerSampleAdaptive(...)``.
        noise: the interpolant noise the regressor was trained with, or ``None``.
        generator: optional ``torch.Generator`` for the start noise.
        tile: ``None`` evaluates the regressor on whole images; an int evaluates it on tiles of
            ``tile x tile`` pixels inside every step (see :class:`TiledRegressor`).
        overlap: smallest overlap between neighbouring tiles, in pixels (ignored untiled).
        tile_batch: tiles per regressor call (ignored untiled); memory grows with it.

    Returns:
        The restored images ``x(0)``, shaped like ``y``.
    """
    check_tensor("y", y)
    if y.dim() != 4:
        raise ValueError(f"y must have shape (B, C, H, W), got {tuple(y.shape)}")
    check_generator(generator)
    std = start_noise_std(noise)
    if tile is None:
        evaluate = regressor
        check_int("overlap", overlap, 0)
        check_int("tile_batch", tile_batch, 1)
    else:
        evaluate = TiledRegressor(regressor, tile, overlap, tile_batch)
    field = InDIField(evaluate)
    with torch.no_grad(), _eval_mode(regressor):
        x_1 = y
        if std > 0:
            eta = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            x_1 = y + std * eta
        return solve(field, solver, x_1, controller).x
