"""Training-time laws ``p(t)`` on ``(0, 1]`` for the InDI loss.

Inference always starts at exactly ``t = 1`` and ends near ``t = 0``; the law decides where the
regressor is trained hardest. Three laws are offered:

* ``UniformTime``: ``t ~ U(0, 1]``.
* ``MixtureTime(a)``: the uniform law with weight ``1 / (1 + a)`` plus a point mass at ``t = 1``
  with weight ``a / (1 + a)`` (the first inference step is always taken from ``t = 1``).
* ``PowerTime(k)``: density ``(k + 1) t^k``, drawn by inverting its CDF ``t^(k + 1)``.

Every law draws with an optional ``torch.Generator`` and never returns ``t = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from indiflow._checks import check_generator, check_int, check_nonnegative, check_positive


@runtime_checkable
class TimeLaw(Protocol):
    """Anything with ``sample(n, generator=None, *, dtype=None, device=None) -> (n,)`` times."""

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor: ...


def _uniform_open_closed(
    n: int,
    generator: torch.Generator | None,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
) -> torch.Tensor:
    """``n`` draws of ``U(0, 1]``: ``t = max(1 - u, eps / 2)``, ``u ~ U[0, 1)`` in ``dtype``.

    ``u = 0`` gives ``t = 1`` exactly. The largest ``u < 1`` of a floating dtype is
    ``1 - eps / 2`` (``eps`` its machine epsilon), so for every ``u`` in ``[0, 1)`` the floor
    ``eps / 2`` changes nothing; it only catches ``u = 1``, which ``torch.rand`` returns in
    float16 and bfloat16 on some devices (rounding of a wider draw) and which would give
    ``t = 0``.
    """
    check_int("n", n, 0)
    check_generator(generator)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    u = torch.rand(n, generator=generator, dtype=dtype, device=device)
    return (1.0 - u).clamp_min(torch.finfo(dtype).eps / 2)


@dataclass(frozen=True)
class UniformTime:
    """``t ~ U(0, 1]``: density ``p(t) = 1`` (the paper's default)."""

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` times of shape ``(n,)`` in ``(0, 1]``.

        Args:
            n: number of draws (``>= 0``).
            generator: optional ``torch.Generator`` for reproducible draws.
            dtype: floating dtype of the result (default: torch's default dtype).
            device: device of the result (must match the generator's device).
        """
        return _uniform_open_closed(n, generator, dtype, device)


@dataclass(frozen=True)
class MixtureTime:
    """Uniform law mixed with a point mass at ``t = 1``.

    ``p(t) = 1 / (1 + a) * U(0, 1] + a / (1 + a) * delta_1``; ``a > 0``.
    """

    a: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "a", check_positive("MixtureTime a", self.a))

    @property
    def point_mass(self) -> float:
        """Probability of drawing exactly ``t = 1``: ``a / (1 + a)``."""
        return self.a / (1.0 + self.a)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` times of shape ``(n,)``; a fraction ``a / (1 + a)`` equals 1 exactly.

        Args:
            n: number of draws (``>= 0``).
            generator: optional ``torch.Generator`` for reproducible draws.
            dtype: floating dtype of the result (default: torch's default dtype).
            device: device of the result (must match the generator's device).
        """
        t = _uniform_open_closed(n, generator, dtype, device)
        # A second uniform draw picks the component; comparing it with the point-mass weight
        # keeps the whole draw on the device (no per-sample Python branching).
        pick = torch.rand(n, generator=generator, dtype=t.dtype, device=t.device)
        return torch.where(pick < self.point_mass, torch.ones_like(t), t)


@dataclass(frozen=True)
class PowerTime:
    """Power law ``p(t) = (k + 1) t^k`` on ``(0, 1]``, ``k >= 0``.

    ``k = 0`` is the uniform law; larger ``k`` trains more near ``t = 1``.
    """

    k: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_nonnegative("PowerTime k", self.k))

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` times of shape ``(n,)`` by inversion: ``t = u^(1/(k+1))``, ``u ~ U(0, 1]``.

        Args:
            n: number of draws (``>= 0``).
            generator: optional ``torch.Generator`` for reproducible draws.
            dtype: floating dtype of the result (default: torch's default dtype).
            device: device of the result (must match the generator's device).
        """
        u = _uniform_open_closed(n, generator, dtype, device)
        return u.pow(1.0 / (self.k + 1.0))


def check_time_law(time_law: object) -> TimeLaw:
    """Return ``time_law`` if it has a ``sample`` method, else raise a ``TypeError``."""
    if not isinstance(time_law, TimeLaw):
        raise TypeError(
            "time_law must be a time law such as indiflow.UniformTime(), MixtureTime(a) or "
            f"PowerTime(k) (an object with .sample(n, generator)), got {type(time_law).__name__}"
        )
    return time_law
