"""Per-sample adaptive stepping with batch compaction: the loop behind ``PerSampleAdaptive``.

Every sample carries its own time, step size and accept / reject decision. Each round gathers
the unfinished samples, takes one step of the solver on that sub-batch with per-sample ``(B,)``
times, and scatters the results back; a sample whose estimated limit error passes takes the
exact limit step ``x_i(0) = F(x_i, t_i)`` (free: that evaluation is already cached) and leaves
the batch. The regressor therefore sees fewer rows as samples finish, and what it computes for
one row never depends on the other rows (up to the rounding of batched kernels), so a sample's
result does not depend on the rest of the batch.

Division of work: the loop owns the states, the evaluations of the solver, the counters and
the trajectories; the controller's ``StepControl`` owns every step decision and answers once
per round with a ``Decision`` (accepted steps, finished samples, next steps, failure).

Cost of the bookkeeping: a few host synchronisations per round (to know which rows to gather),
which a fixed-grid solve avoids; per-sample stepping pays off when the regressor dominates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from indiflow.field import InDIField
from indiflow.solution import Solution, Stats
from indiflow.solvers import Solver

if TYPE_CHECKING:
    from indiflow.per_sample_adaptive import PerSampleAdaptive

Trajectory = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class PerSampleSolution(Solution):
    """What a ``PerSampleAdaptive`` solve returns.

    ``ts`` holds only the common start and end times ``[1, t_end]`` and ``xs`` is ``None``:
    samples step through different times, so their trajectories are in ``trajectories``.
    ``stats.nfe`` counts regressor calls and ``stats.rows`` the rows they evaluated;
    ``stats.steps``, ``accepted`` and ``rejected`` are summed over samples.

    Attributes:
        sample_nfe: ``(B,)`` evaluations of each sample (they sum to ``stats.rows``).
        sample_accepted: ``(B,)`` accepted steps of each sample, the limit step included.
        sample_rejected: ``(B,)`` rejected steps of each sample.
        trajectories: with ``save_trajectory``, one ``(ts_i, xs_i)`` per sample (accepted times,
            float64 ``(T_i,)``, and states ``(T_i, *dims)``); else ``None``.
    """

    sample_nfe: torch.Tensor
    sample_accepted: torch.Tensor
    sample_rejected: torch.Tensor
    trajectories: tuple[Trajectory, ...] | None


@dataclass(frozen=True)
class Decision:
    """What the controller decided in one round; samples are batch indices, ascending.

    Attributes:
        accepted: positions of the accepted steps among the last ``stepping`` samples.
        rejected: positions of the rejected ones.
        ended: samples whose accepted step reached ``t_end > 0``; they are finished.
        evaluated: samples at which the controller evaluated the field, in one regressor call.
        denoised: ``F`` at the new states of ``evaluated``; ``None`` for the starting probe.
        switched: samples that take the limit step now: finished, ``x_i(0) = F(x_i, t_i)``.
        stepping: samples to step next, from ``starts`` to ``ends`` (float64).
        starts: their times.
        ends: where their steps end.
        failure: a step size below ``min_step``; raised after the loop's own checks.
    """

    accepted: torch.Tensor
    rejected: torch.Tensor
    ended: torch.Tensor
    evaluated: torch.Tensor
    denoised: torch.Tensor | None
    switched: torch.Tensor
    stepping: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor
    failure: RuntimeError | None


def check_arguments(solver: object) -> None:
    if not callable(getattr(solver, "step", None)) or not hasattr(solver, "order"):
        raise TypeError(
            "solver must be a solver object such as ind.Heun() or ind.DormandPrince() (not a "
            f"string or a class), got {solver!r}"
        )
    if getattr(solver, "error_order", None) is None:
        raise ValueError(
            f"{type(solver).__name__} has no error estimate, so it cannot be used with "
            "PerSampleAdaptive; use a solver with an embedded estimate such as ind.Heun(), "
            "ind.BogackiShampine() or ind.DormandPrince()"
        )


def scatter_rows(target: torch.Tensor, index: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``target`` with ``rows`` written at ``index``; out of place, so autograd flows through."""
    return target.index_copy(0, index, rows.to(target.dtype))


def split(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions where ``mask`` holds and where it does not, with one synchronisation."""
    order = torch.argsort((~mask).to(torch.uint8), stable=True)
    n_true = int(mask.sum())
    return order[:n_true], order[n_true:]


def _assemble(
    y: torch.Tensor, t_start: float, records: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> tuple[Trajectory, ...]:
    """Per-sample ``(ts, xs)`` from the accepted steps, recorded in each sample's time order.

    One stable sort by sample groups the rows (``y`` first, then the steps in the order they
    were recorded) and one split cuts them: linear in the number of rows, not ``B`` times it.
    """
    batch = y.shape[0]
    index = torch.cat([torch.arange(batch, device=y.device), *(r[0] for r in records)])
    times = torch.cat(
        [torch.full((batch,), t_start, dtype=torch.float64), *(r[1].cpu() for r in records)]
    )
    states = torch.cat([y, *(r[2].to(y.dtype) for r in records)])
    order = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=batch).tolist()
    ts = torch.split(times[order.cpu()], counts)
    xs = torch.split(states[order], counts)
    return tuple(zip(ts, xs, strict=True))


def solve_per_sample(
    field: InDIField,
    solver: Solver,
    y: torch.Tensor,
    controller: PerSampleAdaptive,
    save_trajectory: bool = False,
    max_steps: int = 10_000,
) -> PerSampleSolution:
    """Integrate every sample of ``y`` from ``t = 1`` towards 0 with its own adaptive steps.

    Reached through ``ind.solve(field, solver, y, PerSampleAdaptive(...))``; see ``solve``.
    ``max_steps`` bounds the steps attempted by each sample. The solver must be a one-step
    method with an embedded error estimate (``Heun``, ``BogackiShampine``, ``DormandPrince``).
    """
    check_arguments(solver)
    control = controller.start(y, solver.error_order)
    batch, device = y.shape[0], y.device
    x, denoised = y, field.denoise(1.0, y)
    calls = 1
    sample_nfe = torch.ones(batch, dtype=torch.int64, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    accepted = torch.zeros(batch, dtype=torch.int64, device=device)
    rejected = torch.zeros(batch, dtype=torch.int64, device=device)
    records: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    decision = control.begin(field, y, denoised)
    while True:
        if decision.evaluated.numel() > 0:
            calls += 1
            sample_nfe[decision.evaluated] += 1
            if decision.denoised is not None:
                denoised = scatter_rows(denoised, decision.evaluated, decision.denoised)
        attempts = accepted + rejected
        over = (attempts >= max_steps) & ~done
        if bool(over.any()):
            i = int(over.nonzero()[0, 0])
            raise RuntimeError(
                f"sample {i} reached max_steps={max_steps} at t = {float(control.t[i]):.6g} "
                f"before t_end = {controller.t_end}; raise max_steps or loosen rtol/atol"
            )
        if decision.failure is not None:
            raise decision.failure
        finished = decision.switched
        if finished.numel() > 0:
            x = scatter_rows(x, finished, denoised[finished])
            done[finished] = True
            accepted[finished] += 1
            if save_trajectory:
                at_zero = torch.zeros(finished.numel(), dtype=torch.float64, device=device)
                records.append((finished, at_zero, denoised[finished]))

        rows, ends = decision.stepping, decision.ends
        if rows.numel() == 0:
            break
        x_a, den_a = x[rows], denoised[rows]
        result = solver.step(field, decision.starts, ends, x_a, den_a, None, True)
        if result.error is None or result.state is not None:
            raise TypeError(
                f"{type(solver).__name__} is not a one-step solver with an error estimate; "
                "PerSampleAdaptive supports Heun, BogackiShampine and DormandPrince"
            )
        calls += result.nfe
        sample_nfe[rows] += result.nfe
        decision = control.decide(x_a, den_a, result, field)
        ok, good = decision.accepted, rows[decision.accepted]
        rejected[rows[decision.rejected]] += 1
        accepted[good] += 1
        x = scatter_rows(x, good, result.x[ok])
        if result.denoised_next is not None:
            denoised = scatter_rows(denoised, good, result.denoised_next[ok])
        done[decision.ended] = True
        if save_trajectory:
            records.append((good, ends[ok], result.x[ok]))

    if not bool(torch.isfinite(x).all()):
        raise RuntimeError(
            "the field returned non-finite values (NaN or inf) at the last step of some sample; "
            "check the regressor at small t"
        )
    stats = Stats(
        nfe=calls,
        rows=int(sample_nfe.sum()),
        steps=int((accepted + rejected).sum()),
        accepted=int(accepted.sum()),
        rejected=int(rejected.sum()),
    )
    return PerSampleSolution(
        x=x,
        ts=torch.tensor([1.0, controller.t_end], dtype=torch.float64),
        xs=None,
        stats=stats,
        sample_nfe=sample_nfe.cpu(),
        sample_accepted=accepted.cpu(),
        sample_rejected=rejected.cpu(),
        trajectories=_assemble(y, 1.0, records) if save_trajectory else None,
    )
