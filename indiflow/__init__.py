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
from indiflow import oracles

# --- training: losses, time laws, networks, stochastic sampling ---
from indiflow import nets
from indiflow.losses import indi_loss
from indiflow.stochastic import sample_stochastic, start_noise_std, step_noise_std
from indiflow.time_laws import MixtureTime, PowerTime, TimeLaw, UniformTime

# --- parametrisation conversions ---
from indiflow import param

# --- multistep, per-sample stepping, grid design, backends ---
from indiflow.grid_design import GridDesign, design_grid
from indiflow.solver_design import SolverDesign, design_solver
from indiflow.multistep import ExpMultistep2, ExpMultistep3, ExpMultistep4, MultistepState
from indiflow import backends
from indiflow.per_sample import PerSampleSolution
from indiflow.per_sample_adaptive import PerSampleAdaptive

# --- image scale ---
from indiflow.restoration import restore

__version__ = "0.1.0"

# The image-side packages load on first use, so that `import indiflow` needs neither Pillow nor
# scikit-image and the numerics core never imports them.
_LAZY_SUBMODULES = ("data", "degradations", "metrics", "training")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"indiflow.{name}")
    raise AttributeError(f"module 'indiflow' has no attribute {name!r}")
