"""The solve loop: argument checks, failures, trajectories, autograd, dtype and device."""

import pytest
import torch

import indiflow as ind
from problems import GaussianProblem

GRID = ind.FixedSteps(ind.TimeGrid.uniform(5))


def shrink(x, t):
    return 0.5 * x


def test_solution_fields_and_trajectory():
    y = torch.randn(3, 2, dtype=torch.float64)
    sol = ind.solve(ind.InDIField(shrink), ind.Heun(), y, GRID, save_trajectory=True)
    assert torch.equal(sol.ts, torch.tensor(GRID.grid.ts, dtype=torch.float64))
    assert sol.xs.shape == (6, 3, 2)
    assert torch.equal(sol.xs[0], y) and torch.equal(sol.xs[-1], sol.x)
    assert sol.stats == ind.Stats(nfe=9, rows=27, steps=5, accepted=5, rejected=0)
    assert ind.solve(ind.InDIField(shrink), ind.Heun(), y, GRID).xs is None


def test_grid_ending_above_zero_returns_state_there():
    problem = GaussianProblem.default()
    y = problem.inputs(8)
    grid = ind.TimeGrid(torch.linspace(1.0, 0.3, 200, dtype=torch.float64))
    sol = ind.solve(problem.field(), ind.DormandPrince(), y, ind.FixedSteps(grid))
    torch.testing.assert_close(sol.x, problem.exact(y, 0.3), rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(4, 2), (2, 3, 5, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "solver", [ind.Euler(), ind.DormandPrince()], ids=lambda s: type(s).__name__
)
def test_shape_dtype_device_kept(shape, dtype, solver):
    y = torch.randn(shape, dtype=dtype)
    sol = ind.solve(ind.InDIField(shrink), solver, y, GRID, save_trajectory=True)
    assert sol.x.shape == shape and sol.x.dtype == dtype and sol.x.device == y.device
    assert sol.xs.dtype == dtype
    if solver.error_order is not None:
        sol = ind.solve(ind.InDIField(shrink), solver, y, ind.Adaptive(rtol=1e-4, atol=1e-4))
        assert sol.x.shape == shape and sol.x.dtype == dtype


def test_gradients_reach_input_and_parameters():
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    y = torch.randn(5, 2, requires_grad=True)
    field = ind.InDIField(lambda x, t: net(x) + t[:, None])
    for controller in (GRID, ind.Adaptive(rtol=1e-3, atol=1e-3)):
        net.zero_grad()
        y.grad = None
        ind.solve(field, ind.BogackiShampine(), y, controller).x.square().sum().backward()
        assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_gradient_matches_finite_differences():
    field = GaussianProblem.default().field()
    y = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda v: ind.solve(field, ind.Heun(), v, GRID).x, (y,))


def test_works_under_inference_mode():
    y = torch.randn(3, 2)
    with torch.inference_mode():
        sol = ind.solve(ind.InDIField(shrink), ind.DormandPrince(), y, ind.Adaptive())
    assert sol.x.is_inference()


def test_non_finite_regressor_output_reports_the_time():
    def bad(x, t):
        return torch.where(t[:, None] < 0.5, torch.full_like(x, float("nan")), x)

    y = torch.randn(3, 2)
    with pytest.raises(RuntimeError, match=r"non-finite.*from t = 0\.4 to s = 0\.2"):
        ind.solve(ind.InDIField(bad), ind.Euler(), y, GRID)
    with pytest.raises(RuntimeError, match=r"non-finite.*from t = 1 to s = 0\.4"):
        ind.solve(ind.InDIField(bad), ind.Heun(), y, ind.Adaptive(first_step=0.6))


def test_bad_arguments():
    field = ind.InDIField(shrink)
    y = torch.randn(3, 2)
    with pytest.raises(TypeError, match=r"wrap your regressor as ind.InDIField"):
        ind.solve(shrink, ind.Euler(), y, GRID)
    with pytest.raises(TypeError, match="solver object"):
        ind.solve(field, "euler", y, GRID)
    with pytest.raises(TypeError, match=r"an instance such as Euler\(\)"):
        ind.solve(field, ind.Euler, y, GRID)
    with pytest.raises(TypeError, match="controller must be"):
        ind.solve(field, ind.Euler(), y, ind.TimeGrid.uniform(4))
    with pytest.raises(ValueError, match="NaN or infinite"):
        ind.solve(field, ind.Euler(), torch.tensor([[0.0, float("inf")]]), GRID)
    with pytest.raises(ValueError, match=r"at least 2 dimension"):
        ind.solve(field, ind.Euler(), torch.randn(3), GRID)
    with pytest.raises(TypeError, match="floating-point"):
        ind.solve(field, ind.Euler(), torch.ones(3, 2, dtype=torch.long), GRID)
    with pytest.raises(ValueError, match="max_steps=3"):
        ind.solve(field, ind.Euler(), y, GRID, max_steps=3)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        ind.solve(field, ind.Euler(), y, GRID, max_steps=0)
    with pytest.raises(TypeError, match="save_trajectory must be a bool"):
        ind.solve(field, ind.Euler(), y, GRID, save_trajectory="yes")


@pytest.mark.parametrize(
    "solver", [ind.Euler(), ind.Heun(), ind.DormandPrince()], ids=lambda s: type(s).__name__
)
def test_fixed_grid_loop_never_reads_device_data(solver):
    # Meta tensors have no data: any .item(), bool(tensor) or data-dependent branch in the loop
    # raises, so this runs only if the fixed-grid loop never synchronises with the device.
    from indiflow.solve import _integrate

    net = torch.nn.Linear(2, 2, device="meta")
    y = torch.empty(8, 2, device="meta")
    grid = ind.FixedSteps(ind.TimeGrid.uniform(6))
    sol = _integrate(ind.InDIField(lambda x, t: net(x)), solver, y, grid, True, 100, False)
    assert sol.x.device.type == "meta" and sol.xs.shape == (7, 8, 2)
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(torch.isfinite(sol.x).all())  # the same loop, checking, would have failed
