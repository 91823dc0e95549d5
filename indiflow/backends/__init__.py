"""Other integrators behind ``ind.solve``: the same field, controllers, ``Solution`` and stats.

``TorchDiffEq(method)`` runs a torchdiffeq method (optional dependency, imported on first use).
"""

from indiflow.backends.torchdiffeq import TorchDiffEq

__all__ = ["TorchDiffEq"]
