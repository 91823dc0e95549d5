"""Building blocks of :class:`indiflow.nets.UNet`: normalisations, residual block, attention.

Two normalisations, each with a per-channel affine map (weight 1 and bias 0 at initialisation)
and ``eps = 1e-5``:

- ``"group"``: ``torch.nn.GroupNorm(groups, channels)``: mean and variance over a group of
  channels *and all positions* of one image. The output at a pixel then depends on the whole
  image, so a network applied to a tile differs from the same network applied to the full image
  wherever the tile's statistics differ from the image's, and it differs between the training
  patch size and the restoration image size.
- ``"layer"``: :class:`ChannelLayerNorm`: mean and variance over all channels *at each position*
  (``groups`` is not used). Purely local: the network's output at a pixel depends only on its
  receptive field, whatever the image or tile size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from einops import rearrange
from torch import nn

NORMS = ("group", "layer")


class ChannelLayerNorm(nn.Module):
    """``(x - mean_c x) / sqrt(var_c x + eps) * weight + bias``, statistics over channels only."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # layer_norm on the channels-last view: one fused kernel instead of several passes.
        channels_last = rearrange(x, "b c h w -> b h w c")
        normed = functional.layer_norm(
            channels_last, (x.shape[1],), self.weight, self.bias, self.eps
        )
        return rearrange(normed, "b h w c -> b c h w")


def make_norm(kind: str, groups: int, channels: int) -> nn.Module:
    """``nn.GroupNorm(groups, channels)`` for ``"group"``, ``ChannelLayerNorm`` for ``"layer"``."""
    return nn.GroupNorm(groups, channels) if kind == "group" else ChannelLayerNorm(channels)


class ResBlock(nn.Module):
    """Norm-SiLU-conv twice, time scale-and-shift between them, residual connection.

    ``h = conv1(SiLU(N(x)))``, ``h = SiLU(N(h) (1 + scale) + shift)`` with
    ``(scale, shift) = Linear(SiLU(time))``, output ``conv2(dropout(h)) + skip(x)``, ``skip`` a
    1x1 convolution when the channel count changes and the identity otherwise.
    """

    def __init__(
        self, c_in: int, c_out: int, time_dim: int, groups: int, dropout: float, norm: str
    ) -> None:
        super().__init__()
        self.norm1 = make_norm(norm, groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, 2 * c_out)
        self.norm2 = make_norm(norm, groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.conv1(functional.silu(self.norm1(x)))
        time = self.time(functional.silu(time))
        scale, shift = rearrange(time, "b (two c) -> two b c 1 1", two=2)
        h = functional.silu(self.norm2(h) * (1 + scale) + shift)
        return self.conv2(self.dropout(h)) + self.skip(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all spatial positions, with a residual connection.

    ``x + proj(softmax(q k^T / sqrt(d)) v)`` with ``q, k, v`` from a 1x1 convolution of
    ``N(x)``, ``heads`` heads of ``d = channels / heads``. Global: its cost and memory grow with
    the square of the number of positions, and its output depends on the whole image.
    """

    def __init__(self, channels: int, heads: int, groups: int, norm: str) -> None:
        super().__init__()
        self.heads = heads
        self.norm = make_norm(norm, groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[2]
        q, k, v = rearrange(
            self.qkv(self.norm(x)), "b (three n d) h w -> three b n (h w) d", three=3, n=self.heads
        )
        out = functional.scaled_dot_product_attention(q, k, v)
        return x + self.proj(rearrange(out, "b n (h w) d -> b (n d) h w", h=height))
