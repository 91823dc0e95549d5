"""Conversions between the InDI regressor and score / EDM / velocity / noise parametrisations.

For denoising, ``y = x + sigma * n``, the InDI state is ``x_t = x + t * sigma * n``: a
variance-exploding process with noise level ``t * sigma``. Tweedie's formula ties the InDI
regressor ``F(x_t, t) = E[x | x_t]`` to the score of the marginal,
``F = x_t + (t sigma)^2 ∇ log p_t(x_t)``, so every common parametrisation is an affine map of
``F``:

=====================  ====================================  ==================================
quantity               from the regressor ``F``              back to ``F``
=====================  ====================================  ==================================
score                  ``(F - x) / (t sigma)^2``             ``x + (t sigma)^2 * score``
EDM denoiser ``D``     ``D(x, s) = F(x, s / sigma)``         ``F(x, t) = D(x, t * sigma)``
velocity ``v``         ``(x - F) / t``                       ``x - t * v``
noise ``eps_hat``      ``(x - F) / (t sigma)``               ``x - t * sigma * eps_hat``
=====================  ====================================  ==================================

Each converter is a frozen dataclass holding the wrapped model and ``sigma``, so it is
inspectable and pickles whenever the wrapped model does. It is not an ``nn.Module``: move,
train or switch to ``eval()`` the wrapped model itself; the converter only holds a reference.

All of them take ``(x_t, t)`` with ``t`` of shape ``(B,)`` in InDI time (a Python float or 0-d
tensor is broadcast), except the EDM denoiser, which takes ``(x, s)`` with the noise level
``s = t * sigma`` of shape ``(B,)``. The wrapped model always receives a ``(B,)`` tensor.

The velocity-, score- and noise-from-regressor maps divide by ``t`` and raise ``ValueError``
for any ``t <= 0`` (one host-device synchronisation per call); the maps back to a regressor
only multiply by ``t`` and are safe at ``t = 0``, which indiflow's solvers never evaluate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import torch

from indiflow._checks import batch_times, check_positive, check_tensor, expand_times

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = [
    "EDMDenoiserFromRegressor",
    "EpsFromRegressor",
    "RegressorFromEDMDenoiser",
    "RegressorFromEps",
    "RegressorFromScore",
    "RegressorFromVelocity",
    "ScoreFromRegressor",
    "VelocityFromRegressor",
    "edm_denoiser_from_regressor",
    "eps_from_regressor",
    "regressor_from_edm_denoiser",
    "regressor_from_eps",
    "regressor_from_score",
    "regressor_from_velocity",
    "score_from_regressor",
    "velocity_from_regressor",
]


def _check_model(name: str, model: object, args: str = "x_t, t") -> None:
    if not callable(model):
        raise TypeError(
            f"{name} must be callable as {name}({args}) -> tensor (an nn.Module or a function), "
            f"got {type(model).__name__}"
        )


def _check_sigma(sigma: object) -> float:
    return check_positive("sigma (the noise std of y = x + sigma * n)", sigma)


def _inputs(x: object, t: object, x_name: str, t_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``x`` (batch first) and return it with ``t`` as a ``(B,)`` vector."""
    x = check_tensor(x_name, x)
    if not isinstance(t, torch.Tensor | Real) or isinstance(t, bool):
        raise TypeError(
            f"{t_name} must be a tensor of shape (B,) or a float, got {type(t).__name__}"
        )
    return x, batch_times(t, x, name=t_name)


def _require_positive_times(t_vec: torch.Tensor, what: str) -> None:
    # One sync: these maps divide by t, and a silent inf/NaN would surface far from its cause.
    if not bool((t_vec > 0).all()):
        raise ValueError(
            f"{what} divides by t and needs every t > 0, got min t = {float(t_vec.min())}; "
            "evaluate it only on (0, 1] (the regressor itself is defined at t = 0 as lim F)"
        )


def _call(name: str, model: Model, x: torch.Tensor, t_vec: torch.Tensor) -> torch.Tensor:
    out = model(x, t_vec)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(
            f"{name} must return a tensor shaped like its input {tuple(x.shape)}, "
            f"got {tuple(out.shape)}; check that the model keeps the batch and data dimensions"
        )
    return out


@dataclass(frozen=True)
class ScoreFromRegressor:
    """Score of the VE marginal from a regressor: ``∇ log p_t(x) = (F(x, t) - x) / (t sigma)^2``.

    Attributes:
        regressor: ``F(x_t, t)``, an estimate of ``E[x | x_t]``.
        sigma: noise std of the degradation ``y = x + sigma * n``.
    """

    regressor: Model
    sigma: float

    def __post_init__(self) -> None:
        _check_model("regressor", self.regressor)
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        x_t, t_vec = _inputs(x_t, t, "x_t", "t")
        _require_positive_times(t_vec, "score_from_regressor")
        f = _call("regressor", self.regressor, x_t, t_vec)
        level = expand_times(t_vec, x_t) * self.sigma
        return (f - x_t) / level**2


@dataclass(frozen=True)
class RegressorFromScore:
    """Regressor from a score model by Tweedie: ``F(x, t) = x + (t sigma)^2 score(x, t)``.

    Attributes:
        score: ``score(x_t, t)``, an estimate of ``∇ log p_t(x_t)`` in InDI time.
        sigma: noise std of the degradation ``y = x + sigma * n``.
    """

    score: Model
    sigma: float

    def __post_init__(self) -> None:
        _check_model("score", self.score)
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        x_t, t_vec = _inputs(x_t, t, "x_t", "t")
        s = _call("score", self.score, x_t, t_vec)
        level = expand_times(t_vec, x_t) * self.sigma
        return x_t + level**2 * s


@dataclass(frozen=True)
class EDMDenoiserFromRegressor:
    """EDM / k-diffusion denoiser from a regressor: ``D(x, s) = F(x, s / sigma)``.

    Called as ``D(x, s)`` with the noise level ``s = t * sigma`` of shape ``(B,)``.

    Attributes:
        regressor: ``F(x_t, t)`` in InDI time.
        sigma: noise std of the degradation ``y = x + sigma * n``.
    """

    regressor: Model
    sigma: float

    def __post_init__(self) -> None:
        _check_model("regressor", self.regressor)
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))

    def __call__(self, x: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
        x, s_vec = _inputs(x, s, "x", "s (noise level)")
        return _call("regressor", self.regressor, x, s_vec / self.sigma)


@dataclass(frozen=True)
class RegressorFromEDMDenoiser:
    """Regressor from an EDM / k-diffusion denoiser: ``F(x, t) = D(x, t * sigma)``.

    Attributes:
        denoiser: ``D(x, s)`` taking the noise level ``s`` of shape ``(B,)``.
        sigma: noise std of the degradation ``y = x + sigma * n``.
    """

    denoiser: Model
    sigma: float

    def __post_init__(self) -> None:
        _check_model("denoiser", self.denoiser, "x, s")
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        x_t, t_vec = _inputs(x_t, t, "x_t", "t")
        return _call("denoiser", self.denoiser, x_t, t_vec * self.sigma)


@dataclass(frozen=True)
class VelocityFromRegressor:
    """The InDI field as a velocity model: ``v(x, t) = (x - F(x, t)) / t``.

    Attributes:
        regressor: ``F(x_t, t)`` in InDI time.
    """

    regressor: Model

    def __post_init__(self) -> None:
        _check_model("regressor", self.regressor)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        x_t, t_vec = _inputs(x_t, t, "x_t", "t")
        _require_positive_times(t_vec, "velocity_from_regressor")
        f = _call("regressor", self.regressor, x_t, t_vec)
        return (x_t - f) / expand_times(t_vec, x_t)


@dataclass(frozen=True)
class RegressorFromVelocity:
    """Regressor from a velocity model ``dx/dt = v``: ``F(x, t) = x - t * v(x, t)``.

    Attributes:
        velocity: ``v(x_t, t)`` in InDI time (time running from 1 to 0).
    """

    velocity: Model

    def __post_init__(self) -> None:
        _check_model("velocity", self.velocity)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        x_t, t_vec = _inputs(x_t, t, "x_t", "t")
        v = _call("velocity", self.velocity, x_t, t_vec)
        return x_t - expand_times(t_vec, x_t) * v


@dataclass(frozen=True)
class EpsFromRegressor:
    """Noise prediction from a regressor: ``eps_hat(x, t) = (x - F(x, t)) / (t sigma)``.

    Attributes:
        regressor: ``F(x_t, t)`` in InDI time.
        sigma: noise std of the degradation ``y = x + sigma * n``.
    """

    regressor: Model
    sigma: float

    def __post_init__(self) -> None:
        _check_model("regressor", self.regressor)
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        x_t, t_vec = _inputs(x_t, t, "x_t", "t")
        _require_positive_times(t_vec, "eps_from_regressor")
        f = _call("regressor", self.regressor, x_t, t_vec)
        return (x_t - f) / (expand_times(t_vec, x_t) * self.sigma)


@dataclass(frozen=True)
class RegressorFromEps:
    """Regressor from a noise-prediction model: ``F(x, t) = x - t sigma eps_hat(x, t)``.

    Attributes:
        eps: ``eps_hat(x_t, t)``, an estimate of the unit noise ``n`` in ``x_t = x + t sigma n``.
        sigma: noise std of the degradation ``y = x + sigma * n``.
    """

    eps: Model
    sigma: float

    def __post_init__(self) -> None:
        _check_model("eps", self.eps)
        object.__setattr__(self, "sigma", _check_sigma(self.sigma))

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        x_t, t_vec = _inputs(x_t, t, "x_t", "t")
        e = _call("eps", self.eps, x_t, t_vec)
        return x_t - (expand_times(t_vec, x_t) * self.sigma) * e


def score_from_regressor(regressor: Model, sigma: float) -> ScoreFromRegressor:
    """``score(x_t, t) = (F(x_t, t) - x_t) / (t sigma)^2``; raises for ``t <= 0``."""
    return ScoreFromRegressor(regressor, sigma)


def regressor_from_score(score: Model, sigma: float) -> RegressorFromScore:
    """``F(x_t, t) = x_t + (t sigma)^2 score(x_t, t)``: run a score model on indiflow's solvers."""
    return RegressorFromScore(score, sigma)


def edm_denoiser_from_regressor(regressor: Model, sigma: float) -> EDMDenoiserFromRegressor:
    """``D(x, s) = F(x, s / sigma)`` with the EDM noise level ``s = t * sigma``."""
    return EDMDenoiserFromRegressor(regressor, sigma)


def regressor_from_edm_denoiser(denoiser: Model, sigma: float) -> RegressorFromEDMDenoiser:
    """``F(x_t, t) = D(x_t, t * sigma)``: run an EDM / k-diffusion denoiser on indiflow."""
    return RegressorFromEDMDenoiser(denoiser, sigma)


def velocity_from_regressor(regressor: Model) -> VelocityFromRegressor:
    """``v(x_t, t) = (x_t - F(x_t, t)) / t``, the InDI ODE's right-hand side; raises for t <= 0."""
    return VelocityFromRegressor(regressor)


def regressor_from_velocity(velocity: Model) -> RegressorFromVelocity:
    """``F(x_t, t) = x_t - t v(x_t, t)`` for a velocity ``dx/dt`` in InDI time."""
    return RegressorFromVelocity(velocity)


def eps_from_regressor(regressor: Model, sigma: float) -> EpsFromRegressor:
    """``eps_hat(x_t, t) = (x_t - F(x_t, t)) / (t sigma)``; raises for ``t <= 0``."""
    return EpsFromRegressor(regressor, sigma)


def regressor_from_eps(eps: Model, sigma: float) -> RegressorFromEps:
    """``F(x_t, t) = x_t - t sigma eps_hat(x_t, t)`` for a noise-prediction model."""
    return RegressorFromEps(eps, sigma)
