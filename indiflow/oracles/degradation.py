"""Linear-Gaussian degradations ``y = H x + sigma n``, ``n ~ N(0, I)``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from indiflow._checks import (
    check_finite_tensor,
    check_generator,
    check_nonnegative,
    check_tensor,
)


def flatten_states(name: str, x: torch.Tensor, dim: int) -> torch.Tensor:
    """View ``x`` of shape ``(B, D)`` or ``(B, *dims)`` with ``prod(dims) = D`` as ``(B, D)``."""
    check_tensor(name, x, min_dim=2)
    if math.prod(x.shape[1:]) != dim:
        raise ValueError(
            f"{name} must have shape (B, D) = (B, {dim}) or (B, *dims) with prod(dims) = {dim}, "
            f"got {tuple(x.shape)}"
        )
    return x.reshape(x.shape[0], dim)


@dataclass(frozen=True, eq=False)
class LinearDegradation:
    """``y = H x + sigma n`` with ``n ~ N(0, I)``.

    Args:
        H: ``(D, D)`` floating tensor, or ``None`` for the identity in any dimension
            (denoising). It is cast to the dtype and device of the states it acts on.
        sigma: noise standard deviation, ``>= 0``.
    """

    H: torch.Tensor | None
    sigma: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_nonnegative("sigma", self.sigma))
        if self.H is None:
            return
        check_tensor("H", self.H, min_dim=2)
        if self.H.dim() != 2 or self.H.shape[0] != self.H.shape[1]:
            raise ValueError(
                f"H must be a square (D, D) matrix (or None for the identity), "
                f"got shape {tuple(self.H.shape)}"
            )
        check_finite_tensor("H", self.H)

    @property
    def is_identity(self) -> bool:
        """True when ``H`` is ``None`` or exactly the identity matrix."""
        if self.H is None:
            return True
        return torch.equal(
            self.H, torch.eye(self.H.shape[0], dtype=self.H.dtype, device=self.H.device)
        )

    def matrix(self, dim: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """``H`` as a detached ``(D, D)`` tensor in ``dtype`` on ``device``."""
        if self.H is None:
            return torch.eye(dim, dtype=dtype, device=device)
        if self.H.shape[0] != dim:
            raise ValueError(f"H is {tuple(self.H.shape)} but the states have D = {dim}")
        return self.H.detach().to(dtype=dtype, device=device)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Degrade ``x`` of shape ``(B, D)`` or ``(B, *dims)``: ``y = H x + sigma n``, same shape.

        With ``sigma = 0`` no random numbers are drawn.
        """
        check_tensor("x", x, min_dim=2)
        check_generator(generator)
        dim = math.prod(x.shape[1:]) if self.H is None else self.H.shape[0]
        flat = flatten_states("x", x, dim)
        y = flat.clone() if self.H is None else flat @ self.matrix(dim, x.dtype, x.device).mT
        if self.sigma > 0:
            noise = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            y = y + self.sigma * noise
        return y.reshape(x.shape)
