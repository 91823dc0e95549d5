"""One-step solvers for the InDI ODE ``dx/dt = (x - F(x, t)) / t``, integrated from 1 towards 0.

A solver is only its ``step``: it advances ``x`` from ``t`` to ``s < t`` given ``F(x, t)``, which
the ``solve`` loop always evaluates first (and reuses across rejected steps). Steps onto
``s = 0`` never evaluate anything at ``t <= 0``: they return the exact limit
``x(0) = lim_{t -> 0} F(x(t), t)``, approximated by ``F(x_t, t)`` (the Euler step onto 0), whose
error is ``t^2 / 2 * |x''(0)|``: second order in the last step size.

Times ``t`` and ``s`` are Python floats (fixed grids: no device synchronisation) or per-sample
``(B,)`` tensors. Stage times are ``s + (1 - c)(t - s)``, never below ``s``, so no stage lands
on ``t = 0`` however small ``s`` is. Conditioning: a stage at ``t_i`` divides the rounding of its
state by ``t_i``, so one step whose end is far below its start (``s / t`` under about ``1e-8`` in
float64) is dominated by rounding in methods with a stage at ``s`` (``Heun``,
``DormandPrince``); take such a step as the limit step onto 0, or use a geometric grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from indiflow._checks import expand_times
from indiflow.field import InDIField

Time = float | torch.Tensor


@dataclass(frozen=True)
class StepResult:
    """What one step produced.

    Attributes:
        x: the state at ``s``.
        error: local error estimate shaped like ``x`` (``None`` when not asked or not available).
        denoised_next: ``F(x, s)`` at the new state when the step evaluated it (first same as
            last), else ``None``.
        nfe: regressor evaluations made by the step itself.
        state: solver memory carried to the next step (multistep methods); ``None`` for one-step.
    """

    x: torch.Tensor
    error: torch.Tensor | None
    denoised_next: torch.Tensor | None
    nfe: int
    state: object = None


class Solver(Protocol):
    """What ``solve`` needs from a solver."""

    order: int
    error_order: int | None

    def step(
        self,
        field: InDIField,
        t: Time,
        s: Time,
        x: torch.Tensor,
        denoised: torch.Tensor,
        state: object,
        with_error: bool,
    ) -> StepResult: ...


def limit_step(denoised: torch.Tensor, state: object = None) -> StepResult:
    """The exact step onto ``t = 0``: ``x(0) = F(x_t, t)``, no evaluation at ``t = 0``."""
    return StepResult(x=denoised, error=None, denoised_next=None, nfe=0, state=state)


@dataclass(frozen=True)
class Euler:
    """Explicit Euler, the paper's Algorithm 1: ``x_s = (d/t) F(x_t, t) + (1 - d/t) x_t``.

    Here ``d = t - s`` is the step length.
    Order 1; 1 evaluation per step (the ``F(x_t, t)`` supplied by the loop); no error estimate.
    At ``s = 0`` the convex combination is exactly ``F(x_t, t)``. With ``F`` frozen over the step
    the update is exact, so Euler here equals DDIM (eta = 0) and first-order DPM-Solver++.
    """

    order: int = 1
    error_order: int | None = None

    def step(
        self,
        field: InDIField,
        t: Time,
        s: Time,
        x: torch.Tensor,
        denoised: torch.Tensor,
        state: object = None,
        with_error: bool = False,
    ) -> StepResult:
        ratio = expand_times((t - s) / t, x)
        if isinstance(ratio, torch.Tensor):
            x_new = ratio * denoised + (1 - ratio) * x
        else:  # the same convex combination, with the second product fused into the add
            x_new = torch.add(ratio * denoised, x, alpha=1 - ratio)
        return StepResult(x=x_new, error=None, denoised_next=None, nfe=0)


@dataclass(frozen=True)
class _Tableau:
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_err: tuple[float, ...]  # b - b_hat: weights of the embedded error estimate
    fsal: bool


def _lincomb(
    base: torch.Tensor | None, terms: list[tuple[float | torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """``base + sum_j w_j r_j``: one fused multiply-add per term when ``w_j`` is a float."""
    acc = base
    for w, r in terms:
        if acc is None:
            acc = r * w
        elif isinstance(w, torch.Tensor):
            acc = acc + w * r
        else:
            acc = acc.add(r, alpha=w)
    if acc is None:
        raise ValueError("a Runge-Kutta combination needs at least one term")
    return acc


def _rk_step(
    tab: _Tableau,
    field: InDIField,
    t: Time,
    s: Time,
    x: torch.Tensor,
    denoised: torch.Tensor,
    with_error: bool,
) -> StepResult:
    """One explicit Runge-Kutta step on ``k_j = (x_j - F_j) / t_j``.

    The stages keep the residuals ``r_j = x_j - F_j`` and fold ``h / t_j`` into the tableau
    weights, which saves one tensor operation per stage and per combination on float times.
    """
    if not isinstance(s, torch.Tensor) and s == 0.0:
        return limit_step(denoised)
    h = expand_times(s - t, x)
    residuals = [x - denoised]
    scales = [h / expand_times(t, x)]  # h / t_j, the factor turning r_j into h * k_j
    nfe = 0
    n_stages = len(tab.c) - 1 if tab.fsal else len(tab.c)
    for i in range(1, n_stages):
        terms = [(a * q, r) for a, q, r in zip(tab.a[i - 1], scales, residuals, strict=True) if a]
        x_i = _lincomb(x, terms)
        # Measured from s, not t: t + c (s - t) rounds to exactly 0 for c = 1 and s < eps * t
        # (TimeGrid([1, 1e-17])), while s + (1 - c)(t - s) >= s > 0 for every c in [0, 1].
        t_i = s + (1.0 - tab.c[i]) * (t - s)
        residuals.append(x_i - field.denoise(t_i, x_i))
        scales.append(h / expand_times(t_i, x))
        nfe += 1
    x_new = _lincomb(x, [(b * q, r) for b, q, r in zip(tab.b, scales, residuals, strict=True) if b])
    if not with_error:
        return StepResult(x=x_new, error=None, denoised_next=None, nfe=nfe)
    denoised_next = None
    if tab.fsal:
        denoised_next = field.denoise(s, x_new)
        residuals.append(x_new - denoised_next)
        scales.append(h / expand_times(s, x))
        nfe += 1
    error = _lincomb(
        None, [(e * q, r) for e, q, r in zip(tab.b_err, scales, residuals, strict=True) if e]
    )
    return StepResult(x=x_new, error=error, denoised_next=denoised_next, nfe=nfe)


_HEUN = _Tableau(c=(0.0, 1.0), a=((1.0,),), b=(0.5, 0.5), b_err=(-0.5, 0.5), fsal=False)

_BS3 = _Tableau(
    c=(0.0, 1 / 2, 3 / 4, 1.0),
    a=((1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    b=(2 / 9, 1 / 3, 4 / 9),
    b_err=(2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    fsal=True,
)

_DP5_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_DP5_B_HAT = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_DP5 = _Tableau(
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        _DP5_B,
    ),
    b=_DP5_B,
    b_err=tuple(b - bh for b, bh in zip((*_DP5_B, 0.0), _DP5_B_HAT, strict=True)),
    fsal=True,
)


@dataclass(frozen=True)
class Heun:
    """Heun's method (explicit trapezoid) with an embedded Euler estimate.

    Order 2; 2 evaluations per step (``F(x_t, t)`` and one at ``s``); error estimate
    ``h/2 (k2 - k1)`` (order 1). Onto ``s = 0`` the solve takes the exact limit step instead.
    """

    order: int = 2
    error_order: int | None = 1

    def step(
        self,
        field: InDIField,
        t: Time,
        s: Time,
        x: torch.Tensor,
        denoised: torch.Tensor,
        state: object = None,
        with_error: bool = False,
    ) -> StepResult:
        return _rk_step(_HEUN, field, t, s, x, denoised, with_error)


@dataclass(frozen=True)
class BogackiShampine:
    """Bogacki–Shampine 3(2), first same as last.

    Order 3; 3 evaluations per step (4 stages, the last reused as the next step's first when an
    error estimate is asked for); embedded order-2 error estimate. Onto ``s = 0`` the solve takes
    the exact limit step, free when the last stage was kept.
    """

    order: int = 3
    error_order: int | None = 2

    def step(
        self,
        field: InDIField,
        t: Time,
        s: Time,
        x: torch.Tensor,
        denoised: torch.Tensor,
        state: object = None,
        with_error: bool = False,
    ) -> StepResult:
        return _rk_step(_BS3, field, t, s, x, denoised, with_error)


@dataclass(frozen=True)
class DormandPrince:
    """Dormand–Prince 5(4), first same as last.

    Order 5; 6 evaluations per step (7 stages, the last reused); embedded order-4 error estimate.
    Onto ``s = 0`` the solve takes the exact limit step, free when the last stage was kept.
    """

    order: int = 5
    error_order: int | None = 4

    def step(
        self,
        field: InDIField,
        t: Time,
        s: Time,
        x: torch.Tensor,
        denoised: torch.Tensor,
        state: object = None,
        with_error: bool = False,
    ) -> StepResult:
        return _rk_step(_DP5, field, t, s, x, denoised, with_error)
