"""Per-sample adaptive stepping: batch independence, compaction, accuracy, error norms, inputs."""

import math
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.controllers import initial_step
from problems import GaussianProblem, RecordingRegressor

SOLVERS = [ind.Heun(), ind.BogackiShampine(), ind.DormandPrince()]
F64 = torch.float64


def four_modes() -> ind.oracles.PosteriorMean:
    means = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=F64)
    prior = ind.oracles.GaussianMixture(means, 0.1)
    return ind.oracles.PosteriorMean(prior, ind.oracles.LinearDegradation(torch.eye(2), 1.0))


def mixed_inputs(n: int, seed: int = 0) -> torch.Tensor:
    """Inputs near the mode boundaries (hard) interleaved with inputs far from them (easy)."""
    g = torch.Generator().manual_seed(seed)
    y = 2.5 * torch.rand(n, 2, generator=g, dtype=F64) - 1.25
    y[::2, 0] = 0.02 * y[::2, 0]
    return y


def shrink_to(mean: torch.Tensor, var: float, sigma: float = 1.0):
    """Elementwise Gaussian posterior mean ``mu + var / (var + t^2 sigma^2) (x - mu)``: rows and
    entries never interact, so batch composition cannot change a result even by rounding."""

    def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tt = t.reshape(-1, *([1] * (x_t.dim() - 1)))
        return mean + var / (var + (tt * sigma) ** 2) * (x_t - mean)

    return regressor


def shrink_exact(y: torch.Tensor, mean: float, var: float, sigma: float = 1.0) -> torch.Tensor:
    return mean + math.sqrt(var / (var + sigma**2)) * (y - mean)


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
def test_a_sample_alone_equals_the_sample_in_a_batch(solver):
    field = ind.InDIField(four_modes())
    y = mixed_inputs(12)
    ctrl = ind.PerSampleAdaptive(rtol=1e-5, atol=1e-5)
    batch = ind.solve(field, solver, y, ctrl)
    assert batch.sample_nfe.min() < batch.sample_nfe.max()  # the batch really mixes
    for i in (0, 3, 7, 10):
        alone = ind.solve(field, solver, y[i : i + 1], ctrl)
        # Batched kernels may round rows differently by batch size: 1e-12 in float64.
        torch.testing.assert_close(alone.x[0], batch.x[i], rtol=0, atol=1e-12)
        assert int(alone.sample_nfe[0]) == int(batch.sample_nfe[i])
        assert int(alone.sample_rejected[0]) == int(batch.sample_rejected[i])


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=6), st.sampled_from([0.0, 0.05]))
def test_any_sub_batch_reproduces_the_full_batch(picks, t_end):
    mean = torch.tensor([0.3, -0.2], dtype=F64)
    field = ind.InDIField(shrink_to(mean, 0.05))
    y = mean + torch.linspace(-3, 3, 20, dtype=F64).reshape(10, 2)
    ctrl = ind.PerSampleAdaptive(rtol=1e-4, atol=1e-5, t_end=t_end)
    full = ind.solve(field, ind.BogackiShampine(), y, ctrl)
    sub = ind.solve(field, ind.BogackiShampine(), y[picks], ctrl)
    # Elementwise regressor: no cross-row rounding, so equality is exact.
    assert torch.equal(sub.x, full.x[picks])
    assert torch.equal(sub.sample_nfe, full.sample_nfe[picks])


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("t_end", [0.0, 0.05])
def test_one_sample_matches_the_batch_global_controller(solver, t_end):
    field = GaussianProblem.default().field()
    y = GaussianProblem.default().inputs(1, seed=3)
    kwargs = {"rtol": 1e-6, "atol": 1e-6, "t_end": t_end}
    ps = ind.solve(field, solver, y, ind.PerSampleAdaptive(**kwargs))
    gl = ind.solve(field, solver, y, ind.Adaptive(**kwargs))
    torch.testing.assert_close(ps.x, gl.x, rtol=0, atol=1e-12)
    assert (ps.stats.nfe, ps.stats.accepted, ps.stats.rejected) == (
        gl.stats.nfe,
        gl.stats.accepted,
        gl.stats.rejected,
    )


def test_stats_count_calls_and_rows_and_fall_below_whole_batch_work():
    rec = RecordingRegressor(four_modes())
    y = mixed_inputs(16)
    for solver in SOLVERS:
        rec.times.clear()
        rec.rows = 0
        sol = ind.solve(ind.InDIField(rec), solver, y, ind.PerSampleAdaptive(rtol=1e-4, atol=1e-4))
        s = sol.stats
        assert s.nfe == len(rec.times)
        assert s.rows == rec.rows == int(sol.sample_nfe.sum())
        assert s.rows < s.nfe * y.shape[0]
        assert s.steps == s.accepted + s.rejected
        assert s.accepted == int(sol.sample_accepted.sum())
        assert s.rejected == int(sol.sample_rejected.sum())
        assert torch.equal(sol.ts, torch.tensor([1.0, 0.0], dtype=F64))


class IdRecorder:
    """Gaussian shrinkage on the first entries; the last entry is a sample id that F keeps, so
    it never moves (dx/dt = 0) and every call reveals which samples it evaluated."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.inner = shrink_to(torch.tensor(0.0, dtype=F64), 0.05)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls.append(x_t[:, -1].round().long().tolist())
        return torch.cat([self.inner(x_t[:, :-1], t), x_t[:, -1:]], dim=1)


@pytest.mark.parametrize(
    "solver", [ind.Heun(), ind.DormandPrince()], ids=lambda s: type(s).__name__
)
def test_finished_samples_are_never_evaluated_again(solver):
    rec = IdRecorder()
    n = 8
    spread = torch.logspace(-3, 1, n, dtype=F64)[:, None]
    y = torch.cat([spread * torch.tensor([[1.0, -0.5]]), torch.arange(n, dtype=F64)[:, None]], 1)
    sol = ind.solve(ind.InDIField(rec), solver, y, ind.PerSampleAdaptive(rtol=1e-6, atol=1e-6))
    counts = torch.zeros(n, dtype=torch.int64)
    for ids in rec.calls:
        counts += torch.bincount(torch.tensor(ids), minlength=n)
    assert torch.equal(counts, sol.sample_nfe)
    last_call = [max(k for k, ids in enumerate(rec.calls) if i in ids) for i in range(n)]
    assert min(last_call) < len(rec.calls) - 1  # some sample left the batch before the end
    if isinstance(solver, ind.DormandPrince):
        # First same as last: the set of running samples only ever shrinks.
        for before, after in zip(rec.calls, rec.calls[1:], strict=False):
            assert set(after) <= set(before)
    torch.testing.assert_close(sol.x[:, -1], y[:, -1], rtol=0, atol=0)


@pytest.mark.parametrize("t_end", [0.0, 0.05])
def test_never_evaluated_at_or_below_zero_nor_above_one(t_end):
    rec = RecordingRegressor(four_modes())
    ctrl = ind.PerSampleAdaptive(rtol=1e-5, atol=1e-5, t_end=t_end)
    for solver in SOLVERS:
        ind.solve(ind.InDIField(rec), solver, mixed_inputs(8), ctrl)
    times = rec.all_times()
    assert times.min() > 0 and times.min() >= t_end * (1 - 1e-12) and times.max() <= 1


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("t_end", [0.0, 0.05])
def test_error_is_within_a_constant_of_the_tolerance(solver, t_end):
    problem = GaussianProblem.default()
    y = problem.inputs(16)
    exact = problem.exact(y, t_end)
    tols = [1e-3, 1e-5] if solver.order > 2 else [1e-3, 1e-4]
    for tol in tols:
        ctrl = ind.PerSampleAdaptive(rtol=tol, atol=tol, t_end=t_end)
        sol = ind.solve(problem.field(), solver, y, ctrl, save_trajectory=True)
        assert (sol.x - exact).abs().max().item() <= 10 * tol
        for i, (ts, xs) in enumerate(sol.trajectories):
            assert ts[0] == 1.0 and ts[-1] == t_end and bool((ts.diff() < 0).all())
            assert len(ts) == int(sol.sample_accepted[i]) + 1
            assert torch.equal(xs[0], y[i]) and torch.equal(xs[-1], sol.x[i])


def test_per_image_norm_for_image_states():
    ctrl = ind.PerSampleAdaptive(rtol=0.0, atol=0.5)
    err = torch.zeros(2, 3, 4, 4)
    err[0] = 1.0
    err[1, 0, 0, 0] = 4.0 * math.sqrt(48)  # one pixel of image 1: RMS over C*H*W = 48 entries
    x = torch.zeros_like(err)
    norms = ctrl.error_norms(err, x, x, None)
    torch.testing.assert_close(norms, torch.tensor([2.0, 8.0]))


def test_image_batch_solves_each_image_on_its_own():
    field = ind.InDIField(shrink_to(torch.tensor(0.0, dtype=F64), 0.02))
    g = torch.Generator().manual_seed(1)
    scales = torch.tensor([0.01, 1.0, 5.0], dtype=F64)[:, None, None, None]
    y = torch.randn(3, 3, 6, 6, generator=g, dtype=F64) * scales
    ctrl = ind.PerSampleAdaptive(rtol=1e-5, atol=1e-5)
    sol = ind.solve(field, ind.DormandPrince(), y, ctrl)
    assert sol.x.shape == y.shape
    assert int(sol.sample_nfe[0]) < int(sol.sample_nfe[2])
    alone = ind.solve(field, ind.DormandPrince(), y[1:2], ctrl)
    assert torch.equal(alone.x[0], sol.x[1])
    torch.testing.assert_close(sol.x, shrink_exact(y, 0.0, 0.02), rtol=0, atol=1e-3)


def test_relative_atol_makes_the_solve_scale_invariant():
    field = ind.InDIField(shrink_to(torch.tensor(0.0, dtype=F64), 0.05))
    y = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(2), dtype=F64)
    rel = ind.PerSampleAdaptive(rtol=1e-4, atol=1e-3, atol_relative=True)
    small = ind.solve(field, ind.BogackiShampine(), y, rel)
    large = ind.solve(field, ind.BogackiShampine(), 255.0 * y, rel)
    assert torch.equal(small.sample_nfe, large.sample_nfe)
    torch.testing.assert_close(large.x, 255.0 * small.x, rtol=1e-12, atol=0)
    absolute = ind.PerSampleAdaptive(rtol=1e-4, atol=1e-3)
    fixed_large = ind.solve(field, ind.BogackiShampine(), 255.0 * y, absolute)
    assert int(fixed_large.sample_nfe.sum()) > int(large.sample_nfe.sum())


def test_relative_atol_norm_formula():
    ctrl = ind.PerSampleAdaptive(rtol=0.5, atol=0.1, atol_relative=True)
    y = torch.tensor([[3.0, 4.0], [0.0, 2.0]], dtype=F64)
    units = ctrl.input_units(y)
    torch.testing.assert_close(units, torch.tensor([math.sqrt(12.5), math.sqrt(2.0)], dtype=F64))
    err = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=F64)
    x = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=F64)
    scale = 0.1 * units[:, None] + 0.5 * x.abs()
    expected = (err / scale).square().mean(1).sqrt()
    torch.testing.assert_close(ctrl.error_norms(err, x, x, units), expected)
    assert ind.PerSampleAdaptive().input_units(y) is None


def test_limit_errors_are_exact_for_a_quadratic_denoiser():
    # F(x(t), t) = x0 - c t^2 exactly: the estimate t^2 (F - F_prev) / (t_prev^2 - t^2) = c t^2.
    ctrl = ind.Adaptive(rtol=0.0, atol=1.0, switch_time_max=1.0)
    x0 = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=F64)
    c = torch.tensor([[3.0, -1.0], [2.0, 2.0]], dtype=F64)
    t = torch.tensor([0.1, 0.02], dtype=F64)
    tp = torch.tensor([0.3, 0.05], dtype=F64)
    den, den_prev = x0 - c * t[:, None] ** 2, x0 - c * tp[:, None] ** 2
    expected = (c * t[:, None] ** 2).square().mean(1).sqrt()
    got = ctrl.limit_errors(t, x0, den, tp, den_prev)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    assert ctrl.limit_error(0.1, x0, den, 0.3, den_prev) == pytest.approx(
        float(ctrl.limit_errors(0.1, x0, den, 0.3, den_prev).max())
    )


@settings(max_examples=60, deadline=None)
@given(
    st.floats(1e-6, 0.9),
    st.one_of(st.just(0.0), st.floats(1e-12, 1e6)),
    st.one_of(st.none(), st.floats(1e-12, 10.0)),
    st.integers(1, 4),
    st.floats(0.0, 0.9),
)
def test_vectorised_control_laws_equal_the_scalar_ones(h, err, err_prev, order, t_end):
    base = {"t_end": t_end, "factor_max": 4.0, "max_step": 0.8}
    ps, gl = ind.PerSampleAdaptive(**base), ind.Adaptive(**base)
    as_t = lambda v: torch.tensor([v], dtype=F64)  # noqa: E731
    prev = as_t(float("nan") if err_prev is None else err_prev)
    got = float(ps.next_steps(as_t(h), as_t(err), prev, order)[0])
    assert got == pytest.approx(gl.next_step(h, err, err_prev, order), rel=1e-14)
    t = 1.0 - 0.5 * h
    if t > t_end:
        assert float(ps.propose_ends(as_t(t), as_t(h))[0]) == pytest.approx(
            gl.propose_end(t, h), rel=1e-14
        )


def test_gradients_flow_through_a_per_sample_solve():
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    y = torch.randn(4, 2, requires_grad=True)
    field = ind.InDIField(lambda x, t: net(x) * t[:, None] + x * (1 - t[:, None]))
    sol = ind.solve(field, ind.BogackiShampine(), y, ind.PerSampleAdaptive(rtol=1e-3, atol=1e-3))
    sol.x.sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_bad_inputs_raise_clear_errors():
    field = ind.InDIField(four_modes())
    y = mixed_inputs(4)
    with pytest.raises(TypeError, match="atol_relative must be a bool"):
        ind.PerSampleAdaptive(atol_relative=1)
    with pytest.raises(ValueError, match="rtol must be >= 0"):
        ind.PerSampleAdaptive(rtol=-1.0)
    with pytest.raises(ValueError, match="min_time_ratio"):
        ind.PerSampleAdaptive(min_time_ratio=1.0)
    with pytest.raises(ValueError, match="Euler has no error estimate"):
        ind.solve(field, ind.Euler(), y, ind.PerSampleAdaptive())
    with pytest.raises(TypeError, match="InDIField"):
        ind.solve(four_modes(), ind.Heun(), y, ind.PerSampleAdaptive())
    with pytest.raises(TypeError, match="solver must be a solver object"):
        ind.solve(field, "heun", y, ind.PerSampleAdaptive())
    with pytest.raises(TypeError, match="save_trajectory must be a bool"):
        ind.solve(field, ind.Heun(), y, ind.PerSampleAdaptive(), save_trajectory=1)
    with pytest.raises(ValueError, match="at least 2 dimension"):
        ind.solve(field, ind.Heun(), y[0], ind.PerSampleAdaptive())
    zero = torch.cat([y, torch.zeros(1, 2, dtype=F64)])
    with pytest.raises(ValueError, match="sample 4 of y is all zeros"):
        ind.solve(field, ind.Heun(), zero, ind.PerSampleAdaptive(atol_relative=True))


def test_runtime_failures_name_the_sample():
    field = ind.InDIField(four_modes())
    y = mixed_inputs(4)
    with pytest.raises(RuntimeError, match=r"sample \d+ reached max_steps=3"):
        ind.solve(field, ind.Heun(), y, ind.PerSampleAdaptive(rtol=1e-8, atol=1e-8), max_steps=3)
    tiny = ind.PerSampleAdaptive(rtol=1e-12, atol=1e-12, min_step=1e-3, first_step=2e-3)
    with pytest.raises(RuntimeError, match=r"step size of sample \d+ fell.*min_step"):
        ind.solve(field, ind.Heun(), y, tiny)

    def bad(x, t):
        out = 0.5 * x
        out[(t < 0.5) & (x[:, 0] > 0)] = float("nan")
        return out

    pos = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=F64)
    with pytest.raises(RuntimeError, match=r"non-finite values.*for sample 1"):
        ind.solve(ind.InDIField(bad), ind.Heun(), pos, ind.PerSampleAdaptive(rtol=1e-3))


@dataclass(frozen=True)
class RejectionSpy(ind.Adaptive):
    """``Adaptive`` recording the start time of every rejected step (``next_step`` follows
    ``propose_end`` once per attempted step)."""

    log: list = dataclass_field(default_factory=list, compare=False)

    def propose_end(self, t: float, h: float) -> float:
        self.log.append(t)
        return super().propose_end(t, h)

    def next_step(self, h: float, err: float, err_prev: float | None, error_order: int) -> float:
        if err <= 1.0:
            self.log.pop()
        return super().next_step(h, err, err_prev, error_order)


def near_boundary() -> tuple[ind.InDIField, torch.Tensor]:
    """Four modes of std 0.03 and an input between two of them: the posterior commits late,
    so steps are rejected below switch_time_max = 0.05."""
    means = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=F64)
    prior = ind.oracles.GaussianMixture(means, 0.03)
    oracle = ind.oracles.PosteriorMean(prior, ind.oracles.LinearDegradation(torch.eye(2), 1.0))
    return ind.InDIField(oracle), torch.tensor([[-0.1, 0.8]], dtype=F64)


# Tolerances at which each solver rejects steps on near_boundary(); Heun and Bogacki-Shampine
# also reject steps that start below switch_time_max = 0.05 (measured: t = 0.02-0.048).
REJECTING = [(ind.Heun(), 1e-3, True), (ind.BogackiShampine(), 1e-4, True)]
REJECTING += [(ind.DormandPrince(), 1e-5, False)]


@pytest.mark.parametrize(
    ("solver", "tol", "below"), REJECTING, ids=[type(r[0]).__name__ for r in REJECTING]
)
@pytest.mark.parametrize("first_step", [None, 0.5])
def test_one_sample_matches_the_global_controller_through_rejections(
    solver, tol, below, first_step
):
    field, y = near_boundary()
    kwargs = {"rtol": tol, "atol": tol, "first_step": first_step}
    spy = RejectionSpy(**kwargs)
    gl = ind.solve(field, solver, y, spy)
    ps = ind.solve(field, solver, y, ind.PerSampleAdaptive(**kwargs), save_trajectory=True)
    assert len(spy.log) == gl.stats.rejected > 0
    assert (min(spy.log) < 0.05) == below
    torch.testing.assert_close(ps.x, gl.x, rtol=0, atol=1e-12)
    assert (ps.stats.nfe, ps.stats.rows, ps.stats.accepted, ps.stats.rejected) == (
        gl.stats.nfe,
        gl.stats.rows,
        gl.stats.accepted,
        gl.stats.rejected,
    )
    torch.testing.assert_close(ps.trajectories[0][0], gl.ts, rtol=1e-11, atol=0)


@settings(max_examples=40, deadline=None)
@given(
    loc=st.floats(-3.0, 3.0),
    spread=st.sampled_from([0.0, 1e-9, 0.3, 2.0]),
    tol=st.sampled_from([(1e-3, 1e-6), (1e-6, 1e-9), (1e-2, 0.0), (0.0, 1e-4)]),
    order=st.integers(1, 4),
    t0=st.sampled_from([1.0, 0.3, 0.01]),
    max_step=st.sampled_from([1.0, 0.05]),
)
def test_vectorised_starting_step_equals_the_float_rule_per_sample(
    loc, spread, tol, order, t0, max_step
):
    # Each row's per-sample starting step is the float rule applied to that row alone; the
    # cases reach d0 < 1e-5 (x near 0), max(d1, d2) <= 1e-15 (F = x), max_step and t0 caps.
    rtol, atol = tol
    kwargs = {"rtol": rtol, "atol": atol, "max_step": max_step, "min_time_ratio": 0.2}
    field = ind.InDIField(shrink_to(torch.tensor(0.1, dtype=F64), 0.05))
    still = ind.InDIField(lambda x, t: x)
    g = torch.Generator().manual_seed(0)
    x = loc + spread * torch.randn(4, 3, generator=g, dtype=F64)
    x[1] = 1e-12  # below every threshold
    per_sample = ind.PerSampleAdaptive(**kwargs)
    for f in (field, still):
        times = torch.full((4,), t0, dtype=F64)
        deriv = f.derivative(t0, x, f.denoise(t0, x))
        got = per_sample.initial_steps(times, x, deriv, f, order, None)
        for i in range(4):
            row, d_row = x[i : i + 1], deriv[i : i + 1]
            expected = initial_step(ind.Adaptive(**kwargs), t0, row, d_row, f, order)
            assert float(got[i]) == pytest.approx(expected, rel=1e-12)


def test_trajectories_in_a_batch_equal_each_sample_solved_alone():
    field = ind.InDIField(shrink_to(torch.tensor(0.0, dtype=F64), 0.05))
    y = torch.tensor([[0.01, -0.02], [3.0, 1.0], [-1.0, 0.5], [0.2, 0.2]], dtype=F64)
    ctrl = ind.PerSampleAdaptive(rtol=1e-6, atol=1e-6)
    batch = ind.solve(field, ind.BogackiShampine(), y, ctrl, save_trajectory=True)
    assert len({len(ts) for ts, _ in batch.trajectories}) > 1  # samples take different steps
    for i, (ts, xs) in enumerate(batch.trajectories):
        alone = ind.solve(field, ind.BogackiShampine(), y[i : i + 1], ctrl, save_trajectory=True)
        assert torch.equal(ts, alone.trajectories[0][0])
        assert torch.equal(xs, alone.trajectories[0][1])
