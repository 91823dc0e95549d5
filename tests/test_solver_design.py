"""Tests of the gradient-based sampler design (indiflow/solver_design.py, designed_solver.py)."""

from __future__ import annotations

import json

import pytest
import torch
from gaussian_pilot import batch, exact_limit, regressor
from hypothesis import given, settings
from hypothesis import strategies as st

import indiflow as ind
from indiflow.design_inputs import pilot_reference
from indiflow.design_objective import differentiable_solve, grid_nodes, power_loss
from indiflow.designed_solver import DesignedSolver, solver_from_data, solver_to_data


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> None:
    """``torch.allclose`` with a message (``torch.testing.assert_close`` imports for seconds)."""
    gap = float((actual - expected).abs().max())
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"max difference {gap:.3g}"


DT = torch.float64
FIELD = ind.InDIField(regressor)
PILOT = batch(64, seed=1)
HELD_OUT = batch(512, seed=7)


def design(solver: object = None, **options: object) -> ind.SolverDesign:
    settings_ = {"reference": exact_limit(PILOT), "iterations": 40, "lr": 0.1, "batch_size": 32}
    settings_.update(options)
    generator = torch.Generator().manual_seed(0)
    solver = ind.Euler() if solver is None else solver
    return ind.design_solver(FIELD, solver, PILOT, 4, generator=generator, **settings_)


@pytest.fixture(scope="module")
def shifted() -> ind.SolverDesign:
    return design(start_time=True)


@pytest.fixture(scope="module")
def decoupled() -> ind.SolverDesign:
    return design(coefficients=True)


def rms(solver: object, grid: ind.TimeGrid, y: torch.Tensor) -> float:
    x = ind.solve(FIELD, solver, y, ind.FixedSteps(grid)).x
    return float((x - exact_limit(y)).square().sum(dim=1).mean().sqrt())


def test_never_worse_than_its_start_and_reports_what_it_measures(
    shifted: ind.SolverDesign, decoupled: ind.SolverDesign
) -> None:
    for d in (shifted, decoupled, design(iterations=1, lr=1e-9)):
        assert d.pilot_loss <= d.start_loss and d.steps == d.grid.steps == 4
        assert rms(d.solver, d.grid, PILOT) == pytest.approx(d.pilot_error, rel=1e-9)
        # 6 power grids + mini-batches + CHECKS-or-fewer full pilot solves, 4 evaluations each
        assert d.gradient_evaluations == d.iterations * 32 * 4
        assert 6 * 64 * 4 + d.gradient_evaluations < d.evaluations <= 11 * 64 * 4 + 40 * 32 * 4
    assert isinstance(decoupled.solver, DesignedSolver) and shifted.solver == ind.Euler()
    assert shifted.grid.ts[0] < 1.0  # the designed start time


def test_beats_uniform_and_power_grids_on_held_out_inputs(
    shifted: ind.SolverDesign, decoupled: ind.SolverDesign
) -> None:
    rivals = [ind.TimeGrid.uniform(4)] + [ind.TimeGrid.power(4, r) for r in (1.5, 2.0, 3.0)]
    best_rival = min(rms(ind.Euler(), grid, HELD_OUT) for grid in rivals)
    for d in (shifted, decoupled):
        assert rms(d.solver, d.grid, HELD_OUT) < 0.2 * best_rival


def test_regressor_times_move_with_the_nodes_unless_given_their_own_rate() -> None:
    """The regressor times are offsets from the nodes: frozen offsets keep them on the nodes
    (the start time's ``1e-4`` floor aside), while the nodes move as without coefficients."""
    plain = design(iterations=12)
    frozen = design(iterations=12, coefficients=True, coefficient_lr=1e-12)
    assert isinstance(frozen.solver, DesignedSolver) and plain.grid.ts != plain.start
    nodes, evals = frozen.solver.times, frozen.solver.evaluation_times
    assert_close(torch.tensor(evals), torch.tensor(nodes), rtol=2e-4, atol=0.0)
    assert_close(torch.tensor(nodes), torch.tensor(plain.grid.ts), rtol=1e-4, atol=0.0)
    free = design(iterations=12, coefficients=True, coefficient_lr=0.1)
    gap = max(abs(a / b - 1) for a, b in zip(free.solver.evaluation_times[:-1],
                                              free.solver.times[:-1], strict=True))  # fmt: skip
    assert gap > 1e-2


def test_the_pilot_reference_and_what_it_costs() -> None:
    """A given reference is used as is at no cost; otherwise a tight solve, all its rows counted."""
    given = exact_limit(PILOT)
    reference, rows = pilot_reference(FIELD, PILOT, given)
    assert reference is given and rows == 0
    computed, rows = pilot_reference(FIELD, PILOT, None)
    tight = ind.solve(FIELD, ind.DormandPrince(), PILOT, ind.Adaptive(rtol=1e-9, atol=1e-9))
    assert rows == tight.stats.rows > 0 and torch.equal(computed, tight.x)
    assert_close(computed, given, rtol=0.0, atol=1e-7)


def test_deterministic_with_a_generator() -> None:
    a, b = design(iterations=8), design(iterations=8)
    assert a == b
    c = ind.design_solver(FIELD, ind.Euler(), PILOT, 4, reference=exact_limit(PILOT),
                          iterations=8, lr=0.1, batch_size=32,
                          generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert c.grid != a.grid  # other mini-batches


def test_round_trips_through_plain_data(decoupled: ind.SolverDesign) -> None:
    for d in (
        decoupled,
        design(ind.ExpMultistep3(corrector=False), iterations=2, coefficients=True),
    ):
        data = json.loads(d.to_json())
        assert data["format"] == "indiflow.SolverDesign" and isinstance(data["grid"], list)
        assert ind.SolverDesign.from_dict(data) == d == ind.SolverDesign.from_json(d.to_json())
        loaded = ind.SolverDesign.from_json(d.to_json())
        assert rms(loaded.solver, loaded.grid, PILOT) == rms(d.solver, d.grid, PILOT)


def test_from_dict_rejects_what_is_not_a_design(decoupled: ind.SolverDesign) -> None:
    data = decoupled.to_dict()
    with pytest.raises(TypeError, match="must be a dict"):
        ind.SolverDesign.from_dict([1, 2])
    with pytest.raises(ValueError, match="not an indiflow solver design"):
        ind.SolverDesign.from_dict({**data, "format": "indiflow.GridDesign"})
    with pytest.raises(ValueError, match="missing the fields"):
        ind.SolverDesign.from_dict({k: v for k, v in data.items() if k != "pilot_error"})
    with pytest.raises(ValueError, match="only indiflow solvers"):
        ind.SolverDesign.from_dict({**data, "solver": {"class": "os.system", "args": {}}})
    with pytest.raises(ValueError, match="not an indiflow solver class"):
        solver_from_data({"class": "indiflow.solve.solve", "args": {}})
    with pytest.raises(TypeError, match="JSON string"):
        ind.SolverDesign.from_json(b"{}")
    with pytest.raises(TypeError, match="indiflow's dataclass solvers"):
        solver_to_data(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"field": regressor}, TypeError, "InDIField"),
        ({"solver": ind.Euler}, TypeError, "solver object"),
        ({"solver": "euler"}, TypeError, "solver object"),
        ({"y": torch.zeros(3, dtype=DT)}, ValueError, "at least 2"),
        ({"y": torch.zeros(0, 2, dtype=DT)}, ValueError, "empty"),
        ({"y": torch.full((2, 2), float("nan"), dtype=DT)}, ValueError, "finite"),
        ({"steps": 1}, ValueError, "steps must be >= 2"),
        ({"steps": 4.0}, TypeError, "steps must be an int"),
        ({"iterations": 0}, ValueError, "iterations"),
        ({"lr": -1.0}, ValueError, "lr must be > 0"),
        ({"coefficient_lr": 0.0}, ValueError, "coefficient_lr must be > 0"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"loss_power": 0.0}, ValueError, "loss_power"),
        ({"min_gap": 10.0}, ValueError, "min_gap"),
        ({"start_time": 1}, TypeError, "start_time must be a bool"),
        ({"coefficients": "yes"}, TypeError, "coefficients must be a bool"),
        ({"start": [1.0, 0.5, 0.0]}, TypeError, "start must be a TimeGrid"),
        ({"start": ind.TimeGrid.uniform(3)}, ValueError, "steps = 4 steps"),
        ({"reference": torch.zeros(3, 2, dtype=DT)}, ValueError, "shaped like y"),
        ({"generator": 0}, TypeError, "generator"),
    ],
)
def test_rejects_bad_input(change: dict, error: type, match: str) -> None:
    arguments = {"field": FIELD, "solver": ind.Euler(), "y": PILOT, "steps": 4,
                 "reference": exact_limit(PILOT), "iterations": 2}  # fmt: skip
    arguments.update(change)
    with pytest.raises(error, match=match):
        ind.design_solver(**arguments)


def test_a_regressor_without_gradient_is_refused() -> None:
    def frozen(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return regressor(x_t, t)

    with pytest.raises(ValueError, match="not differentiable"):
        ind.design_solver(ind.InDIField(frozen), ind.Euler(), PILOT, 3, reference=PILOT)


@settings(max_examples=12, deadline=None)
@given(
    gaps=st.lists(st.floats(0.05, 1.5), min_size=3, max_size=3),
    shifts=st.lists(st.floats(-0.3, 0.3), min_size=4, max_size=4),
    base=st.sampled_from([ind.Euler(), ind.Heun(), ind.ExpMultistep3(), ind.ExpMultistep4()]),
)
def test_a_constant_regressor_is_integrated_exactly(
    gaps: list[float], shifts: list[float], base: object
) -> None:
    """``F = c``: ``x(tau_i) = c + (tau_i / tau_0)(y - c)`` at every node, any regressor times."""
    tau = [0.9]
    for g in gaps:
        tau.append(tau[-1] * torch.exp(torch.tensor(-g)).item())
    evals = [min(1.0, t * (1 + 0.1 * sh)) for t, sh in zip(tau, shifts, strict=True)]
    evals = sorted(set(evals), reverse=True)
    if len(evals) != len(tau):
        return
    c = torch.tensor([0.3, -2.0], dtype=DT)
    field = ind.InDIField(lambda x, t: c.expand_as(x))
    solver = DesignedSolver(base, (*tau, 0.0), (*evals, 0.0))
    y = batch(5, 3)
    sol = ind.solve(field, solver, y, ind.FixedSteps(ind.TimeGrid([*evals, 0.0])), True)
    expected = torch.stack([c + (t / tau[0]) * (y - c) for t in (*tau, 0.0)])
    assert_close(sol.xs, expected, rtol=1e-12, atol=1e-12)


def test_designed_solver_with_equal_times_is_its_base() -> None:
    grid = ind.TimeGrid.power(6, 2.0)
    for base in (ind.Euler(), ind.BogackiShampine(), ind.ExpMultistep4()):
        solver = DesignedSolver(base, grid.ts, grid.ts)
        assert_close(
            ind.solve(FIELD, solver, PILOT, ind.FixedSteps(grid)).x,
            ind.solve(FIELD, base, PILOT, ind.FixedSteps(grid)).x,
            rtol=1e-14,
            atol=1e-14,
        )


def test_designed_solver_rejects_bad_construction_and_other_grids() -> None:
    with pytest.raises(TypeError, match="base must be a solver"):
        DesignedSolver(ind.Euler, (1.0, 0.0), (1.0, 0.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must end at 0"):
        DesignedSolver(ind.Euler(), (1.0, 0.5), (1.0, 0.5))
    with pytest.raises(ValueError, match="as many nodes"):
        DesignedSolver(ind.Euler(), (1.0, 0.5, 0.0), (1.0, 0.0))
    with pytest.raises(ValueError, match="strictly decreasing"):
        DesignedSolver(ind.Euler(), (1.0, 0.5, 0.0), (0.5, 1.0, 0.0))
    solver = DesignedSolver(ind.Euler(), (1.0, 0.5, 0.0), (0.9, 0.4, 0.0))
    with pytest.raises(ValueError, match="runs only on its own grid"):
        ind.solve(FIELD, solver, PILOT, ind.FixedSteps(ind.TimeGrid.uniform(2)))


def test_a_grid_starting_below_one_starts_from_y_there() -> None:
    c = torch.tensor([1.0, 2.0], dtype=DT)
    field = ind.InDIField(lambda x, t: c.expand_as(x))
    sol = ind.solve(field, ind.Euler(), PILOT, ind.FixedSteps(ind.TimeGrid([0.5, 0.25, 0.0])), True)
    assert sol.ts.tolist() == [0.5, 0.25, 0.0]
    assert_close(sol.xs[1], c + 0.5 * (PILOT - c), rtol=1e-15, atol=1e-15)
    assert_close(sol.x, c.expand_as(PILOT), rtol=0.0, atol=0.0)


def test_gradient_through_the_solve_matches_finite_differences() -> None:
    z = torch.tensor([-1.0, -0.5, 0.2], dtype=DT, requires_grad=True)
    v = torch.tensor(0.1, dtype=DT, requires_grad=True)
    reference = exact_limit(PILOT)

    def objective(z_: torch.Tensor, v_: torch.Tensor) -> torch.Tensor:
        x, _ = differentiable_solve(
            FIELD, ind.ExpMultistep3(), PILOT, grid_nodes(z_, v_, 0.01), None
        )
        return power_loss(x, reference, 1.0)

    objective(z, v).backward()
    h = 1e-6
    for i in range(4):
        step = torch.zeros(4, dtype=DT)
        step[i] = h
        up = objective(z.detach() + step[:3], v.detach() + step[3])
        down = objective(z.detach() - step[:3], v.detach() - step[3])
        numeric = float(up - down) / (2 * h)
        analytic = float(z.grad[i]) if i < 3 else float(v.grad)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)
