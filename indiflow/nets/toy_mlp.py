"""A small MLP regressor ``F(x_t, t)`` for low-dimensional (2-D toy) InDI problems.

The time enters through Fourier features ``[sin(2 pi f_j t), cos(2 pi f_j t)]`` with
geometrically spaced frequencies, concatenated with ``x_t`` and fed to a SiLU MLP. The file holds
the network only: losses live in :mod:`indiflow.losses`, training loops in ``toy/train.py``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from indiflow._checks import check_int, check_positive


class FourierTimeEmbedding(nn.Module):
    """``t -> [sin(2 pi f_j t), cos(2 pi f_j t)]_j`` with ``f_j`` geometric in ``[1, max_freq]``.

    Frequencies are fixed (a buffer, not trained); ``max_freq`` sets the finest time resolution,
    roughly ``1 / max_freq``, which matters near ``t = 0`` where the ideal regressor changes
    fastest.

    Args:
        n_freqs: number of frequencies (output width ``2 * n_freqs``).
        max_freq: highest frequency in cycles per unit time.
    """

    freqs: torch.Tensor

    def __init__(self, n_freqs: int = 16, max_freq: float = 64.0) -> None:
        super().__init__()
        n_freqs = check_int("n_freqs", n_freqs, 1)
        max_freq = check_positive("max_freq", max_freq)
        exponents = torch.linspace(0.0, math.log(max_freq), n_freqs, dtype=torch.float64)
        self.register_buffer("freqs", (2 * math.pi) * exponents.exp(), persistent=False)
        self.out_features = 2 * n_freqs

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Embed times of shape ``(B,)`` into ``(B, 2 * n_freqs)``."""
        angles = t[:, None] * self.freqs.to(t.dtype)
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class ToyMLP(nn.Module):
    """MLP regressor ``F(x_t, t) ≈ E[x | x_t]`` for states of shape ``(B, dim)``.

    ``F = W_out h_depth``, ``h_{i+1} = SiLU(W_i h_i + b_i)``, ``h_0 = [x_t, embed(t)]``; with
    ``skip=True`` the MLP output ``v`` is read as a velocity instead: ``F = x_t - t v``.

    The skip form is exact in law (``v* = E[y - x | x_t]`` is the InDI field itself), and it
    makes ``F - x_t`` vanish as ``t -> 0``, so the network's error in ``F`` shrinks with ``t``
    where the sampler takes its finest steps.

    Args:
        dim: state dimension (2 for the toys).
        hidden: width of each hidden layer.
        depth: number of hidden layers (``>= 1``).
        n_freqs: Fourier frequencies in the time embedding.
        max_freq: highest time frequency (cycles per unit time).
        skip: output ``F = x_t - t * MLP(x_t, t)`` (velocity parametrisation).
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 256,
        depth: int = 4,
        *,
        n_freqs: int = 16,
        max_freq: float = 64.0,
        skip: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, 1)
        if not isinstance(skip, bool):
            raise TypeError(f"skip must be a bool, got {type(skip).__name__}")
        self.skip = skip
        hidden = check_int("hidden", hidden, 1)
        depth = check_int("depth", depth, 1)
        self.embed = FourierTimeEmbedding(n_freqs, max_freq)
        layers: list[nn.Module] = []
        width = dim + self.embed.out_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Estimate ``E[x | x_t]``.

        Args:
            x_t: states of shape ``(B, dim)``.
            t: times of shape ``(B,)``, a 0-d tensor or a float, in ``(0, 1]``.

        Returns:
            A tensor of shape ``(B, dim)`` in the dtype of ``x_t``.
        """
        if not isinstance(x_t, torch.Tensor) or x_t.dim() != 2 or x_t.shape[1] != self.dim:
            got = tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ValueError(f"x_t must have shape (B, {self.dim}), got {got}")
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device).expand(x_t.shape[0])
        elif t.shape != (x_t.shape[0],):
            raise ValueError(
                f"t must be a scalar or have shape (B,) = ({x_t.shape[0]},), got {tuple(t.shape)}"
            )
        t = t.to(x_t.dtype)
        out = self.mlp(torch.cat([x_t, self.embed(t)], dim=1))
        return x_t - t[:, None] * out if self.skip else out
