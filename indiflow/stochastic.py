"""Stochastic InDI: the paper's Algorithm 1 with noise injection, on a fixed time grid.

With a noise schedule ``eps_t`` the forward process is ``x_t = (1 - t) x + t y + t eps_t eta``.
The sampler starts from ``x_1 = y + eps_1 eta`` and takes, for each grid step ``t -> s < t``,

    ``x_s = (1 - s/t) F(x_t, t) + (s/t) x_t + s sqrt(eps_s^2 - eps_t^2) z``,   ``z ~ N(0, I)``,

the Euler step of Algorithm 1 plus exactly the extra noise that makes ``x_s`` carry noise of std
``s eps_s`` when ``F`` returns the true ``x`` (Prop. 4.1 applied to the noisy process). For
``ConstantNoise`` the extra term is zero (the noise only enters at the start); for
``BrownianNoise`` (``eps_t^2 = eps0^2 / t``) it is the Brownian-bridge step of std
``eps0 sqrt(s (t - s) / t)``, which vanishes at ``s = 0``. The step onto ``s = 0`` returns
``F(x_t, t)`` and adds nothing; the regressor is never evaluated at ``t <= 0``.

API choice: a standalone function rather than a solver for :func:`indiflow.solve`. ``solve`` is
the deterministic ODE loop (its solvers are pure step maps, and its adaptive controller judges
steps by a local error estimate, which has no meaning for a sampled noise path). The stochastic
sampler needs a generator and a noise schedule and is defined on a fixed grid only, so it takes
exactly those, and returns the same :class:`~indiflow.solution.Solution` as ``solve`` so that
downstream code treats both alike. With ``noise=None`` it is Algorithm 1 itself, bit for bit the
same as ``solve(field, Euler(), y, FixedSteps(grid))``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

from indiflow._checks import check_finite_tensor, check_generator, check_tensor
from indiflow.field import InDIField
from indiflow.grid import TimeGrid
from indiflow.interpolant import BrownianNoise, ConstantNoise
from indiflow.solution import Solution, Stats
from indiflow.solvers import Euler

NoiseSchedule = ConstantNoise | BrownianNoise
_EULER = Euler()


def _check_noise(noise: object) -> NoiseSchedule | None:
    if noise is not None and not isinstance(noise, ConstantNoise | BrownianNoise):
        raise TypeError(
            "noise must be None, indiflow.ConstantNoise(eps) or indiflow.BrownianNoise(eps0), "
            f"got {type(noise).__name__}"
        )
    return noise


def start_noise_std(noise: NoiseSchedule | None) -> float:
    """Std of the noise added to ``y`` at the start: ``1 * eps_1`` (0 without a schedule)."""
    _check_noise(noise)
    return 0.0 if noise is None else float(noise.std(1.0))


def step_noise_std(noise: NoiseSchedule | None, t: float, s: float) -> float:
    """Std of the noise injected by the step ``t -> s``: ``s sqrt(eps_s^2 - eps_t^2)``.

    Zero without a schedule and for ``ConstantNoise``; ``eps0 sqrt(s (t - s) / t)`` for
    ``BrownianNoise``, written so that it is exactly 0 at ``s = 0`` (where ``eps_s`` is infinite).

    Args:
        noise: the schedule, or ``None``.
        t: the current time, in ``(0, 1]``.
        s: the next time, in ``[0, t)``.
    """
    _check_noise(noise)
    if not (0.0 <= s < t <= 1.0):
        raise ValueError(f"step_noise_std needs 0 <= s < t <= 1, got t = {t} and s = {s}")
    if isinstance(noise, BrownianNoise):
        return noise.eps0 * math.sqrt(s * (t - s) / t)
    return 0.0


def sample_stochastic(
    field: InDIField | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    grid: TimeGrid,
    noise: NoiseSchedule | None,
    generator: torch.Generator | None = None,
    save_trajectory: bool = False,
) -> Solution:
    """Run stochastic InDI (Algorithm 1 with noise injection) from ``y`` at ``t = 1``.

    ``x_s = (d/t) F(x_t, t) + (1 - d/t) x_t + s sqrt(eps_s^2 - eps_t^2) z``, ``d = t - s``.
    Order 1 (weak) in the step; 1 evaluation per step; no error estimate; the step onto 0 is
    ``F(x_t, t)`` with no added noise. Fixed grids only; no device synchronisation per step.

    Args:
        field: an ``indiflow.InDIField``, or a regressor ``F(x_t, t)`` (wrapped in one).
        y: degraded input of shape ``(B, *dims)``; its dtype and device are kept.
        grid: a ``TimeGrid`` starting at 1 (e.g. ``TimeGrid.uniform(n)``); it may end at
            ``t_end > 0``, and the result is then the (noisy) state at ``t_end``.
        noise: ``ConstantNoise(eps)``, ``BrownianNoise(eps0)`` or ``None`` (plain Algorithm 1);
            use the schedule the regressor was trained with.
        generator: optional ``torch.Generator`` for the start noise and every injected draw.
        save_trajectory: keep the state at every grid time in ``Solution.xs`` (shape
            ``(T, *y.shape)``).

    Returns:
        ``Solution(x, ts, xs, stats)`` with ``stats.nfe == stats.steps == grid.steps``.

    Raises:
        TypeError: a wrong field, grid, noise or generator type.
        ValueError: a grid not starting at 1, or a non-finite or non-batched ``y``.
        RuntimeError: the regressor returned non-finite values (the step is named).
    """
    if not isinstance(field, InDIField):
        if not callable(field):
            raise TypeError(
                "field must be an indiflow.InDIField or a regressor callable as F(x_t, t), "
                f"got {type(field).__name__}"
            )
        field = InDIField(field)
    if not isinstance(grid, TimeGrid):
        raise TypeError(
            "grid must be an indiflow.TimeGrid (e.g. TimeGrid.uniform(n)), "
            f"got {type(grid).__name__}"
        )
    if grid.ts[0] != 1.0:
        raise ValueError(
            f"the stochastic sampler starts from y at t = 1, but the grid starts at {grid.ts[0]}; "
            "use a grid whose first time is 1"
        )
    _check_noise(noise)
    check_generator(generator)
    check_tensor("y", y, min_dim=2)
    check_finite_tensor("y", y)
    if not isinstance(save_trajectory, bool):
        raise TypeError(f"save_trajectory must be a bool, got {type(save_trajectory).__name__}")

    x = y
    std0 = start_noise_std(noise)
    if std0 > 0:
        x = y + std0 * torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
    states = [x] if save_trajectory else None
    finite: list[torch.Tensor] = []
    ts = grid.ts
    for t, s in itertools.pairwise(ts):
        denoised = field.denoise(t, x)
        finite.append(torch.isfinite(denoised).all())
        # indiflow.Euler's own step (not a copy of its formula), so that noise=None performs the
        # same operations in the same order as solve(field, Euler(), ...) and matches it bit for
        # bit, whatever fusion Euler uses.
        x = _EULER.step(field, t, s, x, denoised).x
        std = step_noise_std(noise, t, s)
        if std > 0:
            x = x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        if states is not None:
            states.append(x)
    # One deferred synchronisation for the whole run.
    ok = torch.stack(finite)
    if not bool(ok.all()):
        i = int((~ok).nonzero()[0, 0])
        raise RuntimeError(
            f"the regressor returned non-finite values (NaN or inf) at t = {ts[i]:.6g} (step to "
            f"{ts[i + 1]:.6g}); check the regressor at that time and its input scaling"
        )
    steps = grid.steps
    return Solution(
        x=x,
        ts=grid.as_tensor(),
        xs=torch.stack(states) if states is not None else None,
        stats=Stats(nfe=steps, rows=steps * y.shape[0], steps=steps, accepted=steps, rejected=0),
    )
