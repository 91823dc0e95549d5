"""indiflow: numerics-first InDI (Inversion by Direct Iteration) for PyTorch."""

from indiflow.interpolant import (
    BrownianNoise,
    ConstantNoise,
    Interpolant,
    InterpolantSample,
)

# --- core: field, grids, solvers, controllers, solve ---
from indiflow.controllers import Adaptive, FixedSteps
from indiflow.field import InDIField
from indiflow.grid import TimeGrid
from indiflow.solution import Solution, Stats
from indiflow.solve import solve
from indiflow.solvers import BogackiShampine, DormandPrince, Euler, Heun, StepResult

# --- oracles ---

# --- training: losses, time laws, networks, stochastic sampling ---

# --- parametrisation conversions ---

# --- multistep, per-sample stepping, grid design, backends ---

__version__ = "0.1.0"
