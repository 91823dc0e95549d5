"""Inputs, reference and the anchor samplers of ``image_designs.py``.

Every method starts from the same state ``x_1 = y + eps_1 * eta`` (one seeded draw per batch,
as ``ind.restore`` draws it), so rows differ only by solver and grid. Evaluations are counted
with a forward hook on the network: evaluations per image = evaluated rows / batch size.

Anchors (``anchor_methods``), at a budget of ``B`` evaluations per image:

* indiflow ``Euler`` and ``ExpMultistep3`` on ``B`` steps and ``Heun`` on ``(B + 1) // 2``
  steps (its last step, onto 0, is the one-evaluation limit step: ``2 k - 1`` evaluations),
  on the uniform grid and power grids ``(1 - i/n)^rho``;
* k-diffusion's ``euler``, ``heun``, ``lms`` and ``dpmpp_2m`` on Karras et al. (2022) sigmas
  (``rho = 7``, ``sigma_max = 1``; ``lms`` and ``dpmpp_2m`` on uniform sigmas too) through
  ``ind.param.edm_denoiser_from_regressor(F, 1.0)``,
  i.e. ``D(x, s) = F(x, s)``: the VE probability-flow ODE in ``sigma = t`` is the InDI ODE;
* torchdiffeq's fixed-grid ``euler``, ``midpoint`` and ``rk4`` through indiflow's backend
  ``ind.backends.TorchDiffEq`` (integrate to the last positive node, then the limit step) on
  the uniform grid and the first power grid.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import indiflow as ind
from indiflow.backends import TorchDiffEq
from indiflow.stochastic import start_noise_std

Run = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """One fixed-budget sampler: ``run(model, x_1) -> x(0)``.

    Attributes:
        family: ``indiflow``, ``k-diffusion``, ``torchdiffeq`` or ``designed``.
        name: the solver or sampler name.
        grid: how its times are spaced (e.g. ``power rho=2``, ``karras 0.01``).
        budget: the evaluation budget per image it is matched to.
        run: the sampler.
    """

    family: str
    name: str
    grid: str
    budget: int
    run: Run


def random_patches(
    images: list[torch.Tensor], count: int, patch: int, generator: torch.Generator
) -> torch.Tensor:
    """``count`` random ``patch x patch`` crops, image and position drawn with ``generator``."""
    crops = []
    for _ in range(count):
        image = images[int(torch.randint(len(images), (1,), generator=generator))]
        top = int(torch.randint(image.shape[-2] - patch + 1, (1,), generator=generator))
        left = int(torch.randint(image.shape[-1] - patch + 1, (1,), generator=generator))
        crops.append(image[:, top : top + patch, left : left + patch])
    return torch.stack(crops)


def central_crops(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """The central ``size x size`` crop of every image (top-left rounding down)."""
    crops = []
    for image in images:
        top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
        crops.append(image[:, top : top + size, left : left + size])
    return torch.stack(crops)


def degrade_and_start(
    clean: torch.Tensor, degradation: Callable, noise: object, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, x_1)``: ``y = degradation(clean)``, ``x_1 = y + eps_1 * eta``; one seed for both."""
    generator = torch.Generator().manual_seed(seed)
    y = degradation(clean, generator=generator)
    eta = torch.randn(y.shape, generator=generator, dtype=y.dtype)
    return y, y + start_noise_std(noise) * eta


def counted_run(model: nn.Module, run: Run, x_1: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``run(model, x_1)`` without gradients, and the network's evaluations per image."""
    rows = [0]

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        rows[0] += inputs[0].shape[0]

    handle = model.register_forward_hook(hook)
    try:
        with torch.no_grad():
            x = run(model, x_1)
    finally:
        handle.remove()
    return x, rows[0] / x_1.shape[0]


def fixed(solver: object, grid: ind.TimeGrid) -> Run:
    """``solve(InDIField(model), solver, x_1, FixedSteps(grid)).x``."""

    def run(model: nn.Module, x_1: torch.Tensor) -> torch.Tensor:
        return ind.solve(ind.InDIField(model), solver, x_1, ind.FixedSteps(grid)).x

    return run


def reference_solutions(
    model: nn.Module, x_1: torch.Tensor, steps: int
) -> tuple[torch.Tensor, float, float]:
    """``(reference, rms_gap, evaluations)``: ``ExpMultistep3`` on ``uniform(2 steps)``.

    ``rms_gap`` is the per-pixel RMS distance to the same solve on ``uniform(steps)``: about the
    error at ``steps`` steps, so about 8 times the reference's own error for a third-order
    method. Uniform, not power, grids: this network's ``F`` varies quickly in ``t`` near
    ``t = 1`` as well as near 0, and the long first steps of power grids do not converge there.
    """
    fine = fixed(ind.ExpMultistep3(), ind.TimeGrid.uniform(2 * steps))
    coarse = fixed(ind.ExpMultistep3(), ind.TimeGrid.uniform(steps))
    reference, fine_evals = counted_run(model, fine, x_1)
    check, coarse_evals = counted_run(model, coarse, x_1)
    return reference, rms(check, reference), fine_evals + coarse_evals


def rms(x: torch.Tensor, reference: torch.Tensor) -> float:
    """Per-pixel RMS distance ``sqrt(mean (x - reference)^2)`` over the whole batch."""
    return float((x - reference).double().square().mean().sqrt())


def _kdiffusion(sampling: types.ModuleType, name: str, sigmas: torch.Tensor) -> Run:
    def run(model: nn.Module, x_1: torch.Tensor) -> torch.Tensor:
        denoiser = ind.param.edm_denoiser_from_regressor(model, 1.0)
        sampler = getattr(sampling, f"sample_{name}")
        return sampler(denoiser, x_1.clone(), sigmas.to(x_1.dtype), disable=True)

    return run


def anchor_methods(
    budget: int,
    sampling: types.ModuleType | None,
    rhos: tuple[float, ...] = (2.0,),
    sigma_mins: tuple[float, ...] = (1e-2, 3e-2),
) -> list[Method]:
    """The anchors at ``budget`` evaluations per image (see the module).

    indiflow's solvers on the uniform grid and the power grids ``rhos``; torchdiffeq on the
    uniform grid and the first power grid; k-diffusion's ``euler``, ``heun`` and ``lms`` on
    Karras sigmas with ``sigma_mins[0]``, ``dpmpp_2m`` with every ``sigma_min``, and ``lms``
    and ``dpmpp_2m`` on uniform sigmas ``1, 1 - 1/n, ..., 0``.
    """
    heun_steps = (budget + 1) // 2
    methods = []
    grids = {"uniform": 1.0} | {f"power rho={rho:g}": rho for rho in rhos}
    for label, rho in grids.items():
        for name, solver, steps in (
            ("euler", ind.Euler(), budget),
            ("heun", ind.Heun(), heun_steps),
            ("expms3", ind.ExpMultistep3(), budget),
        ):
            grid = ind.TimeGrid.power(steps, rho)
            methods.append(Method("indiflow", name, label, budget, fixed(solver, grid)))
    # Through the backend, a torchdiffeq method with s evaluations per step reaches the last
    # positive node of an n-step grid in s (n - 1) evaluations, then takes the limit step (1
    # more). rk4 (the 3/8 rule) saves one per step only where its last stage's state equals the
    # next state bit for bit (the backend reuses a repeated evaluation): s = 4 in the worst case.
    for name, per_step in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        steps = (budget - 1) // per_step + 1
        for label, rho in list(grids.items())[:2]:
            method = fixed(TorchDiffEq(name), ind.TimeGrid.power(steps, rho))
            methods.append(Method("torchdiffeq", name, label, budget, method))
    if sampling is None:
        return methods
    for name in ("euler", "heun", "lms", "dpmpp_2m"):
        steps = heun_steps if name == "heun" else budget
        # The first-order samplers get one sigma_min; the multistep ones every value.
        schedules = {}
        for sigma_min in sigma_mins if name == "dpmpp_2m" else sigma_mins[:1]:
            karras = sampling.get_sigmas_karras(steps, sigma_min, 1.0, rho=7.0)
            schedules[f"karras {sigma_min:g}"] = karras.double()
        if name in ("lms", "dpmpp_2m"):
            schedules["uniform"] = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
        for label, sigmas in schedules.items():
            run = _kdiffusion(sampling, name, sigmas)
            methods.append(Method("k-diffusion", name, label, budget, run))
    return methods
