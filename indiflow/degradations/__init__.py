"""Degradation operators ``op(x, generator=None) -> y`` on ``(B, C, H, W)`` images in [0, 1].

Each returns ``y`` of ``x``'s shape, dtype and device, deterministic given the generator, and
states its exact definition (kernel, padding, rounding, clipping) in its docstring.
"""

from indiflow.degradations.base import Degradation
from indiflow.degradations.blur import GaussianBlur
from indiflow.degradations.compose import Compose
from indiflow.degradations.jpeg import JPEG
from indiflow.degradations.motion import MotionBlur
from indiflow.degradations.noise import GaussianNoise
from indiflow.degradations.resize import BicubicSR

__all__ = [
    "JPEG",
    "BicubicSR",
    "Compose",
    "Degradation",
    "GaussianBlur",
    "GaussianNoise",
    "MotionBlur",
]
