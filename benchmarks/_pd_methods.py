"""The restorations compared by ``perception_distortion.py``: solvers, grids and the control.

Every method restores the same degraded batch from the same start draw (one generator seed per
noise draw), so rows differ only by solver and grid. The regressor's evaluations are counted
with a forward hook, so "equal evaluations" is measured, not assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import indiflow as ind

# The reference of the solver-accuracy column: a 50-step ExpMultistep3 solution.
REFERENCE_STEPS = 50
# Noise scales tried by the white-noise control before it refines one.
SCAN = 200


@dataclass(frozen=True)
class Method:
    """One restoration: a solver on a fixed grid.

    Attributes:
        label: row name in the CSV and the table (``euler``, ``heun``, ``expms3``, ``designed``).
        budget: the evaluation budget the method is matched to (Euler's ``N``).
        solver: the ``ind`` solver.
        grid: the time grid, from 1 to 0.
    """

    label: str
    budget: int
    solver: object
    grid: ind.TimeGrid


def heun_steps(evaluations: int) -> int:
    """Heun steps whose cost is closest to ``evaluations`` without exceeding it.

    Heun takes 2 evaluations per step except the last one onto ``t = 0``, which is the exact
    limit step (1 evaluation): ``k`` steps cost ``2 k - 1``.
    """
    return max(1, (evaluations + 1) // 2)


def build_methods(
    steps: list[int],
    design: Callable[[int], ind.TimeGrid] | None = None,
) -> list[Method]:
    """Euler at every ``N`` of ``steps``; Heun, ExpMultistep3 and a designed grid for ``N >= 2``.

    At ``N = 1`` every solver reduces to one regression step, so only Euler is kept there.
    ``design(N)`` returns a grid designed for ExpMultistep3 with ``N`` steps (``None``: no
    designed rows).
    """
    methods: list[Method] = []
    for n in steps:
        methods.append(Method("euler", n, ind.Euler(), ind.TimeGrid.uniform(n)))
        if n < 2:
            continue
        methods.append(Method("heun", n, ind.Heun(), ind.TimeGrid.uniform(heun_steps(n))))
        methods.append(Method("expms3", n, ind.ExpMultistep3(), ind.TimeGrid.uniform(n)))
        if design is not None:
            methods.append(Method("designed", n, ind.ExpMultistep3(), design(n)))
    return methods


def count_calls(model: nn.Module) -> tuple[list[int], Callable[[], None]]:
    """A one-element call counter on ``model``'s forward and the function that removes it."""
    calls = [0]

    def hook(module: nn.Module, inputs: object, output: object) -> None:
        calls[0] += 1

    handle = model.register_forward_hook(hook)
    return calls, handle.remove


def run_method(
    model: nn.Module, noise: object, y: torch.Tensor, method: Method, seed: int
) -> tuple[torch.Tensor, int]:
    """``(x, evaluations)``: ``method`` on ``y`` from the start draw of ``seed``, x in [0, 1]."""
    calls, remove = count_calls(model)
    try:
        x = ind.restore(
            model,
            y,
            method.solver,
            ind.FixedSteps(method.grid),
            noise=noise,
            generator=torch.Generator().manual_seed(seed),
        )
    finally:
        remove()
    return x.clamp(0.0, 1.0), calls[0]


def reference_solution(model: nn.Module, noise: object, y: torch.Tensor, seed: int) -> torch.Tensor:
    """The unclipped ``REFERENCE_STEPS``-step ExpMultistep3 solution from the draw of ``seed``."""
    return ind.restore(
        model,
        y,
        ind.ExpMultistep3(),
        ind.FixedSteps(ind.TimeGrid.uniform(REFERENCE_STEPS)),
        noise=noise,
        generator=torch.Generator().manual_seed(seed),
    )


def rms_distance(x: torch.Tensor, ref: torch.Tensor) -> list[float]:
    """Per image ``sqrt(mean (x - ref)^2)`` over channels and pixels."""
    return (x - ref).double().square().mean(dim=(1, 2, 3)).sqrt().tolist()


def designer(
    model: nn.Module, noise: object, pilot: torch.Tensor, evaluations: int
) -> Callable[[int], ind.TimeGrid]:
    """``N -> grid`` designed by ``ind.design_grid`` for ExpMultistep3 on the pilot batch.

    The pilot is ``pilot`` plus one fixed draw of the start noise (seed 0), the ``x_1`` that
    restoration starts from; its reference is the ``REFERENCE_STEPS``-step ExpMultistep3
    solution; ``evaluations`` bounds the pilot solves per design.
    """
    std = ind.start_noise_std(noise)
    eta = torch.randn(pilot.shape, generator=torch.Generator().manual_seed(0))
    start = pilot + std * eta
    field = ind.InDIField(model)
    # design_grid's default reference (DormandPrince at rtol 1e-9) cannot meet its tolerance
    # with a float32 network; the benchmark's own reference solver serves instead.
    grid = ind.FixedSteps(ind.TimeGrid.uniform(REFERENCE_STEPS))
    with torch.no_grad():
        reference = ind.solve(field, ind.ExpMultistep3(), start, grid).x

    def design(n: int) -> ind.TimeGrid:
        with torch.no_grad():
            return ind.design_grid(
                field, ind.ExpMultistep3(), start, n, reference, evaluations=evaluations
            ).grid

    return design


def white_noise_control(
    x1: torch.Tensor,
    gt: torch.Tensor,
    target_psnr: torch.Tensor,
    psnr: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    generator: torch.Generator,
) -> torch.Tensor:
    """``clip(x1 + s * n)`` per image, ``n ~ N(0, I)``, with ``s`` giving the target PSNR.

    The PSNR is the benchmark's own ``psnr`` after clipping, which need not fall monotonically
    in ``s`` (clipping can pull a poor ``x1`` towards ``gt``). So ``s`` is the first of
    ``SCAN`` values ``0, 1e-4 ... 1`` (geometric) whose PSNR is at or below the target, refined
    by 30 bisection steps against the value before it; without such a value, the scanned ``s``
    closest to the target.
    """
    n = torch.randn(x1.shape, generator=generator, dtype=x1.dtype)
    scales = torch.cat([torch.zeros(1), torch.logspace(-4, 0, SCAN - 1)]).tolist()
    out = []
    for i in range(x1.shape[0]):

        def score(s: float, i: int = i) -> float:
            return float(psnr((x1[i : i + 1] + s * n[i : i + 1]).clamp(0, 1), gt[i : i + 1])[0])

        target = float(target_psnr[i])
        values = [score(s) for s in scales]
        below = next((k for k, v in enumerate(values) if v <= target), None)
        if below is None:
            s = scales[min(range(SCAN), key=lambda k: abs(values[k] - target))]
        elif below == 0:
            s = 0.0
        else:
            low, high = scales[below - 1], scales[below]
            for _ in range(30):
                mid = (low + high) / 2
                low, high = (mid, high) if score(mid) > target else (low, mid)
            s = high
        out.append((x1[i] + s * n[i]).clamp(0.0, 1.0))
    return torch.stack(out)
