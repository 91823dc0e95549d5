"""Validation helpers shared by the public API.

Every helper raises ``TypeError`` or ``ValueError`` whose message says what was wrong,
what was received and how to fix it. None of them synchronises with the device unless
its docstring says so.
"""

from __future__ import annotations

import math
from numbers import Real

import torch


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a Python float, rejecting bools, tensors of many items and NaN."""
    if isinstance(value, bool) or not isinstance(value, Real | torch.Tensor):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def check_positive(name: str, value: object) -> float:
    out = check_real(name, value)
    if out <= 0:
        raise ValueError(f"{name} must be > 0, got {out}")
    return out


def check_nonnegative(name: str, value: object) -> float:
    out = check_real(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_tensor(name: str, value: object, min_dim: int = 1) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}; "
            "wrap arrays with torch.as_tensor"
        )
    if value.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s) (batch first), "
            f"got shape {tuple(value.shape)}"
        )
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def check_finite_tensor(name: str, value: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or infinity (synchronises once)."""
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} holds NaN or infinite values; clean or clamp it before solving")


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    return generator


_SMALLEST_NORMAL: dict[torch.dtype, float] = {}  # torch.finfo(dtype).tiny, cached: 0.4 µs each


def check_representable_time(name: str, t: float, dtype: torch.dtype) -> None:
    """Raise ``ValueError`` if the time ``t > 0`` becomes 0 once cast to ``dtype``.

    The regressor receives times in the state's dtype, and the field is singular at 0: a time
    below the dtype's smallest subnormal (about ``6e-8`` in float16, ``1.4e-45`` in float32)
    rounds to 0 there. Only times below the smallest normal number are cast (on the host), so
    the common case costs a comparison.
    """
    tiny = _SMALLEST_NORMAL.get(dtype)
    if tiny is None:
        tiny = _SMALLEST_NORMAL.setdefault(dtype, torch.finfo(dtype).tiny)
    if t < tiny and float(torch.tensor(t, dtype=dtype)) <= 0.0:
        raise ValueError(
            f"{name} = {t:.3g} rounds to 0 in {dtype} (the dtype of the state), where the InDI "
            f"field is singular; keep positive times >= {torch.finfo(dtype).tiny:.3g} "
            "(e.g. a larger t_min of TimeGrid.log_uniform) or solve in float32"
        )


def batch_times(t: float | torch.Tensor, x: torch.Tensor, name: str = "t") -> torch.Tensor:
    """Per-sample times of shape ``(B,)`` in ``x``'s dtype and device.

    A Python float becomes a filled vector; a tensor must be a scalar or have shape ``(B,)``.
    """
    batch = x.shape[0]
    if isinstance(t, torch.Tensor):
        if t.dim() == 0:
            return t.to(dtype=x.dtype, device=x.device).expand(batch)
        if t.shape != (batch,):
            raise ValueError(
                f"{name} must be a scalar or have shape (B,) = ({batch},), got {tuple(t.shape)}"
            )
        return t.to(dtype=x.dtype, device=x.device)
    return torch.full((batch,), float(t), dtype=x.dtype, device=x.device)


def expand_times(t: float | torch.Tensor, x: torch.Tensor) -> float | torch.Tensor:
    """Make a per-sample ``(B,)`` time broadcast against ``x`` of shape ``(B, *dims)``."""
    if isinstance(t, torch.Tensor) and t.dim() == 1:
        return t.to(dtype=x.dtype).reshape(t.shape[0], *([1] * (x.dim() - 1)))
    return t
