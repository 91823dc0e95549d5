"""A time-conditioned U-Net regressor ``F(x_t, t) ≈ E[x | x_t]`` for images ``(B, C, H, W)``.

Layout (``L = len(multipliers)`` levels, level ``i`` has ``width * multipliers[i]`` channels):

- ``t`` -> Fourier features (:class:`~indiflow.nets.FourierTimeEmbedding`) -> two-layer SiLU MLP
  -> a time vector of size ``time_dim`` shared by every residual block;
- a 3x3 input convolution; per level, ``blocks`` residual blocks (each followed by self-attention
  where ``attention[i]`` is true), then a stride-2 3x3 convolution to the next level's channel
  count (not after the last level);
- a middle of residual block, self-attention (if ``attention[-1]``), residual block;
- the mirror path: per level, ``blocks`` residual blocks on ``[h, skip]`` concatenated with the
  matching encoder output, then a x2 transposed convolution with kernel 2 and stride 2 (one tap
  per output pixel, so no checkerboard pattern) to the finer level's channel count;
- a normalisation, SiLU and a 3x3 output convolution whose weights and bias start at zero.

Residual blocks (normalisation, SiLU, time scale-and-shift) and self-attention are in
:mod:`indiflow.nets.unet_blocks`, with the two normalisations ``norm = "group"`` (GroupNorm) and
``"layer"`` (a layer norm over the channels of each pixel: local, for tiled restoration).

Any ``H`` and ``W``: the input is padded at the bottom and right to the next multiple of
``size_multiple = 2 ** (L - 1)`` (reflect padding; replicate where the image is smaller than the
padding, where reflection is undefined) and the output is cropped back to ``H x W``.

Output parametrisation: ``"direct"``: ``F = net(x_t, t)``; ``"residual"``: ``F = x_t - t *
net(x_t, t)`` (the network predicts the velocity ``(x_t - F) / t``). The zero output convolution
makes a fresh network return ``F = 0`` (direct) or ``F = x_t`` (residual: the identity map).
The default is ``"residual"``: along the ODE ``dx/dt = (x - F) / t`` an error ``e`` of ``F``
enters as ``e / t`` (direct) but a residual network's own error enters unscaled, and after equal
training on 4x super-resolution the residual form restored 3.1 dB (PSNR) closer after 20 steps
and 0.9 dB after one (``benchmarks/README.md``, perception–distortion section).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as functional
from einops import rearrange
from torch import nn

from indiflow._checks import check_int, check_positive
from indiflow.nets.toy_mlp import FourierTimeEmbedding
from indiflow.nets.unet_blocks import NORMS, ResBlock, SelfAttention, make_norm

OUTPUTS = ("direct", "residual")


def _int_list(name: str, value: object) -> list[int]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0:
        raise TypeError(f"{name} must be a non-empty list of ints, got {value!r}")
    return [check_int(f"{name}[{i}]", v, 1) for i, v in enumerate(value)]


def _bool_list(name: str, value: object, length: int) -> list[bool]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of bools (one per level), got {value!r}")
    if len(value) != length or not all(isinstance(v, bool) for v in value):
        raise ValueError(
            f"{name} must hold {length} bools, one per entry of multipliers, got {value!r}"
        )
    return list(value)


class UNet(nn.Module):
    """Time-conditioned U-Net ``(x_t, t) -> F`` for images; see the module docstring for layout.

    Every argument is a plain int, float, bool, string or list, so that ``to_config()`` (the
    ``[model]`` section of a training config) rebuilds the network with ``UNet(**config)``.
    The defaults (about 1.4 M parameters, 4 levels, attention on the 1/8-resolution level only)
    are sized to train on 64x64 patches on a CPU.

    Args:
        channels: image channels ``C`` (3 for RGB, 1 for grey).
        width: channels of the first level.
        multipliers: channel multiplier per level; ``len(multipliers)`` levels, each but the
            last followed by a x2 downsampling.
        blocks: residual blocks per level (in the encoder and in the decoder).
        attention: per level, whether self-attention follows each residual block; its cost is
            quadratic in the number of positions at that level, so keep it at coarse levels.
        heads: attention heads; must divide the channel count of every attention level.
        groups: GroupNorm groups (``norm="group"`` only); must divide ``width * m`` for every
            multiplier ``m``.
        norm: ``"group"`` (``nn.GroupNorm``: statistics over each image's positions) or
            ``"layer"`` (a layer norm over the channels of each pixel: a local network, whose
            output on a tile equals its output on the whole image away from the tile's
            edges); see :mod:`indiflow.nets.unet_blocks`.
        time_dim: size of the time vector fed to the residual blocks.
        fourier_freqs: frequencies of the Fourier time embedding.
        fourier_max_freq: its highest frequency, in cycles per unit time.
        dropout: dropout probability inside the residual blocks (active in training mode only).
        output: ``"residual"`` (``F = x_t - t * net``, the default) or ``"direct"``
            (``F = net``).
    """

    def __init__(
        self,
        channels: int = 3,
        *,
        width: int = 16,
        multipliers: Sequence[int] = (1, 2, 4, 6),
        blocks: int = 1,
        attention: Sequence[bool] = (False, False, False, True),
        heads: int = 4,
        groups: int = 8,
        norm: str = "group",
        time_dim: int = 128,
        fourier_freqs: int = 16,
        fourier_max_freq: float = 64.0,
        dropout: float = 0.0,
        output: str = "residual",
    ) -> None:
        super().__init__()
        mults = _int_list("multipliers", multipliers)
        attn = _bool_list("attention", attention, len(mults))
        self._config: dict[str, object] = {
            "channels": check_int("channels", channels, 1),
            "width": check_int("width", width, 1),
            "multipliers": mults,
            "blocks": check_int("blocks", blocks, 1),
            "attention": attn,
            "heads": check_int("heads", heads, 1),
            "groups": check_int("groups", groups, 1),
            "norm": _check_choice("norm", norm, NORMS),
            "time_dim": check_int("time_dim", time_dim, 1),
            "fourier_freqs": check_int("fourier_freqs", fourier_freqs, 1),
            "fourier_max_freq": check_positive("fourier_max_freq", fourier_max_freq),
            "dropout": _check_dropout(dropout),
            "output": _check_choice("output", output, OUTPUTS),
        }
        widths = [width * m for m in mults]
        for level, c in enumerate(widths):
            if norm == "group" and c % groups:
                raise ValueError(
                    f"groups = {groups} must divide every level's channel count, but level "
                    f"{level} has width * multipliers[{level}] = {c}; change groups or width"
                )
            if attn[level] and c % heads:
                raise ValueError(
                    f"heads = {heads} must divide the channels of every attention level, but "
                    f"level {level} has {c}; change heads or attention"
                )
        self.channels = channels
        self.output = output
        self.size_multiple = 2 ** (len(mults) - 1)

        embed = FourierTimeEmbedding(fourier_freqs, fourier_max_freq)
        self.time = nn.Sequential(
            embed, nn.Linear(embed.out_features, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)

        def block(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, time_dim, groups, dropout, norm)

        def maybe_attention(c: int, on: bool) -> nn.Module:
            return SelfAttention(c, heads, groups, norm) if on else nn.Identity()

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c_prev, skips = width, []
        for level, c in enumerate(widths):
            stage = nn.ModuleList()
            for _ in range(blocks):
                stage.append(nn.ModuleList([block(c_prev, c), maybe_attention(c, attn[level])]))
                c_prev = c
                skips.append(c)
            self.down.append(stage)
            if level + 1 < len(widths):
                c_prev = widths[level + 1]
                self.downsample.append(nn.Conv2d(c, c_prev, 3, stride=2, padding=1))
        self.mid = nn.ModuleList(
            [block(c_prev, c_prev), maybe_attention(c_prev, attn[-1]), block(c_prev, c_prev)]
        )
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            stage = nn.ModuleList()
            for _ in range(blocks):
                c = widths[level]
                stage.append(
                    nn.ModuleList([block(c_prev + skips.pop(), c), maybe_attention(c, attn[level])])
                )
                c_prev = c
            self.up.append(stage)
            if level > 0:
                # Kernel = stride: every output pixel gets one tap, so no checkerboard pattern.
                self.upsample.append(nn.ConvTranspose2d(c_prev, widths[level - 1], 2, stride=2))
                c_prev = widths[level - 1]
        self.norm_out = make_norm(norm, groups, width)
        self.conv_out = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def to_config(self) -> dict[str, object]:
        """The constructor's arguments as plain data (lists, not tuples): ``UNet(**config)``."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._config.items()}

    @classmethod
    def from_config(cls, config: dict[str, object]) -> UNet:
        """``UNet(**config)``, with an unknown key named together with the closest valid one."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        valid = [name for name in inspect.signature(cls).parameters]
        for key in config:
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown UNet config key {key!r}{hint} Valid keys: {valid}")
        return cls(**config)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Estimate ``E[x | x_t]``.

        Args:
            x_t: images of shape ``(B, channels, H, W)``, floating point, any ``H, W >= 1``.
            t: times of shape ``(B,)`` (one per image), a 0-d tensor or a float.

        Returns:
            ``F`` of the shape and dtype of ``x_t``.
        """
        t = self._check_inputs(x_t, t)
        height, width = x_t.shape[-2:]
        h = pad_to_multiple(x_t, self.size_multiple)
        time = self.time(t)
        h = self.conv_in(h)
        skips = []
        for level, stage in enumerate(self.down):
            for block, attention in stage:
                h = attention(block(h, time))
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.mid[2](self.mid[1](self.mid[0](h, time)), time)
        for level, stage in enumerate(self.up):
            for block, attention in stage:
                h = attention(block(torch.cat([h, skips.pop()], dim=1), time))
            if level < len(self.upsample):
                h = self.upsample[level](h)
        out = self.conv_out(functional.silu(self.norm_out(h)))[..., :height, :width]
        if self.output == "residual":
            return x_t - rearrange(t, "b -> b 1 1 1") * out
        return out

    def _check_inputs(self, x_t: object, t: object) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor):
            raise TypeError(f"x_t must be a torch.Tensor, got {type(x_t).__name__}")
        if x_t.dim() != 4 or x_t.shape[1] != self.channels:
            raise ValueError(
                f"x_t must have shape (B, {self.channels}, H, W) for this UNet(channels="
                f"{self.channels}), got {tuple(x_t.shape)}"
            )
        if not x_t.is_floating_point():
            raise TypeError(f"x_t must be a floating-point tensor, got dtype {x_t.dtype}")
        batch = x_t.shape[0]
        if not isinstance(t, torch.Tensor):
            if isinstance(t, bool) or not isinstance(t, int | float):
                raise TypeError(f"t must be a tensor of shape (B,) or a float, got {t!r}")
            t = torch.tensor(float(t))
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(
                f"t must have shape (B,) = ({batch},) (one time per image) or be a scalar, "
                f"got shape {tuple(t.shape)}"
            )
        return t.to(dtype=x_t.dtype, device=x_t.device)


def _check_dropout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"dropout must be a number in [0, 1), got {value!r}")
    if not 0 <= value < 1:
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return float(value)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return str(value)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the last two axes at the end to multiples of ``multiple``.

    Reflect padding, or replicate padding where a pad is not smaller than its axis (reflection
    is undefined there). Returns ``x`` itself when no padding is needed.
    """
    pad_h, pad_w = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    fits = pad_h < x.shape[-2] and pad_w < x.shape[-1]
    return functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if fits else "replicate")
