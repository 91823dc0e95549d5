"""Exact oracles for InDI: Gaussian-mixture priors, linear degradations, posterior means.

``PosteriorMean(prior, degradation, noise)`` is the ideal regressor ``E[x | x_t]`` for the
interpolant ``x_t = (1 - t) x + t y + t eps_t eta`` with ``x ~ prior`` and
``y = H x + sigma n``; ``gaussian_trajectory`` is the closed-form solution of the InDI ODE for
one Gaussian prior. Both serve as ground truth in tests and benchmarks.
"""

from indiflow.oracles.degradation import LinearDegradation
from indiflow.oracles.mixture import GaussianMixture
from indiflow.oracles.posterior import PosteriorMean
from indiflow.oracles.trajectory import gaussian_posterior_mean, gaussian_trajectory

__all__ = [
    "GaussianMixture",
    "LinearDegradation",
    "PosteriorMean",
    "gaussian_posterior_mean",
    "gaussian_trajectory",
]
