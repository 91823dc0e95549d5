"""Per-sample adaptive stepping with batch compaction: the loop behind ``PerSampleAdaptive``.

Every sample carries its own time ``t_i``, step size ``h_i``, PI memory and accept / reject
decision. Each round gathers the unfinished samples, takes one step of the solver on that
sub-batch with per-sample ``(B,)`` times, and scatters the results back; a sample whose
estimated limit error passes takes the exact limit step ``x_i(0) = F(x_i, t_i)`` (free: that
evaluation is already cached) and leaves the batch. The regressor therefore sees fewer rows as
samples finish, and what it computes for one row never depends on the other rows (up to the
rounding of batched kernels), so a sample's result does not depend on the rest of the batch.

Cost of the bookkeeping: a few host synchronisations per round (to know which rows to gather),
which a fixed-grid solve avoids; per-sample stepping pays off when the regressor dominates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from indiflow.controllers import nonfinite_field_error
from indiflow.field import InDIField
from indiflow.per_sample_adaptive import PerSampleAdaptive
from indiflow.solution import Solution, Stats
from indiflow.solvers import Solver

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


def _scatter(target: torch.Tensor, index: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    # Out of place, so that autograd can flow through the solve.
    return target.index_copy(0, index, rows.to(target.dtype))


def _split(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions where ``mask`` holds and where it does not, with one synchronisation."""
    order = torch.argsort((~mask).to(torch.uint8), stable=True)
    n_true = int(mask.sum())
    return order[:n_true], order[n_true:]


def _assemble(
    y: torch.Tensor, t_start: float, records: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> tuple[Trajectory, ...]:
    """Per-sample ``(ts, xs)`` from the accepted steps recorded in chronological order.

    One stable sort by sample groups the rows (``y`` first, then the steps in the order they
    were taken) and one split cuts them: linear in the number of rows, not ``B`` times it.
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


def _reject_or_raise(
    err: torch.Tensor,
    x_new: torch.Tensor,
    error: torch.Tensor,
    idx: torch.Tensor,
    t: torch.Tensor,
    s: torch.Tensor,
) -> torch.Tensor:
    """Non-finite error norms: ``RuntimeError`` for a row whose values are NaN or inf, else
    ``inf`` (a finite error against a zero tolerance: the step is rejected)."""
    rows_finite = torch.isfinite(x_new).flatten(1).all(1) & torch.isfinite(error).flatten(1).all(1)
    blamed = ~torch.isfinite(err) & ~rows_finite
    if bool(blamed.any()):
        j = int(blamed.nonzero()[0, 0])
        raise nonfinite_field_error(
            f"for sample {int(idx[j])} in the step from t = {float(t[j]):.6g} to "
            f"s = {float(s[j]):.6g}"
        )
    return torch.where(torch.isfinite(err), err, torch.inf)


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
    units_all = controller.input_units(y)
    t_end, order = controller.t_end, solver.error_order
    batch, device = y.shape[0], y.device
    as_times = {"dtype": torch.float64, "device": device}

    x = y
    t = torch.ones(batch, **as_times)
    denoised = field.denoise(1.0, y)
    calls = 1
    sample_nfe = torch.ones(batch, dtype=torch.int64, device=device)
    if controller.first_step is None:
        h = controller.initial_steps(
            t, y, field.derivative(1.0, y, denoised), field, order, units_all
        )
        calls += 1
        sample_nfe += 1
    else:
        h = torch.full((batch,), min(controller.first_step, controller.max_step), **as_times)
    err_prev = torch.full((batch,), float("nan"), **as_times)
    t_prev = torch.full((batch,), float("nan"), **as_times)
    denoised_prev = torch.zeros_like(y)
    fresh = torch.ones(batch, dtype=torch.bool, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    accepted = torch.zeros(batch, dtype=torch.int64, device=device)
    rejected = torch.zeros(batch, dtype=torch.int64, device=device)
    records: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    while True:
        idx = (~done).nonzero().flatten()
        if idx.numel() == 0:
            break
        stale = idx[~fresh[idx]]
        if stale.numel() > 0:
            # One-step solvers without first-same-as-last need F at the newly accepted states.
            denoised = _scatter(denoised, stale, field.denoise(t[stale], x[stale]))
            calls += 1
            sample_nfe[stale] += 1
            fresh[stale] = True
        attempts = accepted[idx] + rejected[idx]
        if bool((attempts >= max_steps).any()):
            i = int(idx[attempts >= max_steps][0])
            raise RuntimeError(
                f"sample {i} reached max_steps={max_steps} at t = {float(t[i]):.6g} before "
                f"t_end = {t_end}; raise max_steps or loosen rtol/atol"
            )
        units = None if units_all is None else units_all[idx]
        t_a, x_a, den_a = t[idx], x[idx], denoised[idx]

        if t_end == 0.0:
            has_prev = ~torch.isnan(t_prev[idx])
            limit = controller.limit_errors(t_a, x_a, den_a, t_prev[idx], denoised_prev[idx], units)
            switch, keep = _split(has_prev & (limit.detach() <= controller.switch_safety))
            if switch.numel() > 0:
                finished, x_0 = idx[switch], den_a[switch]
                x = _scatter(x, finished, x_0)
                t[finished] = 0.0
                done[finished] = True
                accepted[finished] += 1
                if save_trajectory:
                    records.append((finished, t[finished], x_0))
                idx, t_a, x_a, den_a = idx[keep], t_a[keep], x_a[keep], den_a[keep]
                units = None if units is None else units[keep]
                if idx.numel() == 0:
                    continue

        h_a = h[idx]
        if bool((h_a < controller.min_step).any()):
            i = int(idx[h_a < controller.min_step][0])
            raise RuntimeError(
                f"the step size of sample {i} fell to {float(h[i]):.3g} < "
                f"min_step={controller.min_step} at t = {float(t[i]):.6g}; loosen rtol/atol "
                "or lower min_step"
            )
        s = controller.propose_ends(t_a, h_a)
        result = solver.step(field, t_a, s, x_a, den_a, None, True)
        if result.error is None or result.state is not None:
            raise TypeError(
                f"{type(solver).__name__} is not a one-step solver with an error estimate; "
                "PerSampleAdaptive supports Heun, BogackiShampine and DormandPrince"
            )
        calls += result.nfe
        sample_nfe[idx] += result.nfe
        err = controller.error_norms(result.error, x_a, result.x, units).detach()
        err = err.to(torch.float64)
        if not bool(torch.isfinite(err).all()):
            err = _reject_or_raise(err, result.x, result.error, idx, t_a, s)
        h[idx] = controller.next_steps(t_a - s, err, err_prev[idx], order)
        ok, bad = _split(err <= 1.0)
        good = idx[ok]
        rejected[idx[bad]] += 1
        accepted[good] += 1
        err_prev[good] = err[ok]
        t_prev[good] = t_a[ok]
        denoised_prev = _scatter(denoised_prev, good, den_a[ok])
        x = _scatter(x, good, result.x[ok])
        t[good] = s[ok]
        if result.denoised_next is not None:
            denoised = _scatter(denoised, good, result.denoised_next[ok])
        else:
            fresh[good] = False
        if t_end > 0.0:
            done[good] = s[ok] <= t_end
        if save_trajectory:
            records.append((good, s[ok], result.x[ok]))

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
        ts=torch.tensor([1.0, t_end], dtype=torch.float64),
        xs=None,
        stats=stats,
        sample_nfe=sample_nfe.cpu(),
        sample_accepted=accepted.cpu(),
        sample_rejected=rejected.cpu(),
        trajectories=_assemble(y, 1.0, records) if save_trajectory else None,
    )
