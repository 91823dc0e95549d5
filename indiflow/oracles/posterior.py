"""Exact posterior mean ``E[x | x_t]`` for a Gaussian-mixture prior and ``y = H x + sigma n``.

With ``x_t = (1 - t) x + t y + t eps_t eta`` we have ``x_t = A_t x + nu_t``, where
``A_t = (1 - t) I + t H`` and ``nu_t ~ N(0, r_t^2 I)``, ``r_t^2 = t^2 (sigma^2 + eps_t^2)``.
Each component then gives ``x_t ~ N(A_t mu_k, S_k)``, ``S_k = A_t C_k A_t^T + r_t^2 I``, and
``E[x | x_t, k] = mu_k + C_k A_t^T S_k^{-1} (x_t - A_t mu_k)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from indiflow._checks import batch_times, check_finite_tensor, check_generator, check_real
from indiflow.interpolant import BrownianNoise, ConstantNoise
from indiflow.oracles._spectral import spectral_log_normal
from indiflow.oracles.degradation import LinearDegradation, flatten_states
from indiflow.oracles.mixture import GaussianMixture, MixtureArrays

_LOG_2PI = math.log(2.0 * math.pi)


def _noise_level(noise: ConstantNoise | BrownianNoise | None) -> float:
    if noise is None:
        return 0.0
    return noise.eps if isinstance(noise, ConstantNoise) else noise.eps0


def _no_density(t: float, k: int, r2: float, dtype: torch.dtype) -> ValueError:
    if r2 == 0:
        fix = (
            "there is no noise, so give the degradation sigma > 0 or add a noise schedule, or "
            "avoid the t where A_t = (1 - t) I + t H is singular"
        )
    elif dtype != torch.float64:
        fix = f"r_t^2 is below {dtype}'s resolution of S_k: compute in float64 or use a larger t"
    else:
        fix = "r_t^2 is below float64's resolution of S_k: use a larger t or more noise"
    return ValueError(
        f"x_t has no density at t = {t:.6g}: S_k = A_t C_k A_t^T + r_t^2 I of component {k} "
        f"is singular in {dtype} (r_t^2 = {r2:.3g}); {fix}"
    )


@dataclass(frozen=True, eq=False)
class PosteriorMean:
    """The exact InDI regressor ``F*(x_t, t) = E[x | x_t]`` for a mixture prior.

    ``E[x | x_t] = sum_k w_k E[x | x_t, k]``, ``w_k ∝ pi_k N(x_t; A_t mu_k, S_k)``.

    Call it as ``pm(x_t, t)`` with ``x_t`` of shape ``(B, D)`` or ``(B, *dims)`` and ``t`` a
    float or a ``(B,)`` tensor in ``(0, 1]``. Computation runs in the dtype and on the device
    of ``x_t`` (the prior is cast once per dtype and device and cached), is differentiable
    in ``x_t``, and validates its inputs (a few host-device synchronisations per call, so
    time solvers with a network rather than this oracle). With ``H = I``
    the eigendecompositions of the ``C_k`` serve every ``t``; otherwise ``S_k`` is factorised
    by a Cholesky decomposition batched over samples and components.

    Args:
        prior: the clean-data law.
        degradation: ``y = H x + sigma n``.
        noise: ``None``, ``ConstantNoise(eps)`` or ``BrownianNoise(eps0)``, as in the
            ``Interpolant`` that produced ``x_t``.

    Raises:
        ValueError: at construction when ``x_t`` has no density for any ``t`` (a singular
            ``C_k`` with ``sigma = 0`` and no noise); at call time, with the ``t``, when
            ``S_k`` is singular there.
    """

    prior: GaussianMixture
    degradation: LinearDegradation
    noise: ConstantNoise | BrownianNoise | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prior, GaussianMixture):
            raise TypeError(
                "prior must be an indiflow.oracles.GaussianMixture, "
                f"got {type(self.prior).__name__}"
            )
        if not isinstance(self.degradation, LinearDegradation):
            raise TypeError(
                "degradation must be an indiflow.oracles.LinearDegradation, "
                f"got {type(self.degradation).__name__}"
            )
        if self.noise is not None and not isinstance(self.noise, ConstantNoise | BrownianNoise):
            raise TypeError(
                "noise must be None, indiflow.ConstantNoise(eps) or indiflow.BrownianNoise(eps0), "
                f"got {type(self.noise).__name__}"
            )
        H = self.degradation.H
        if H is not None and H.shape[0] != self.prior.dim:
            raise ValueError(
                f"H has shape {tuple(H.shape)} but the prior lives in D = {self.prior.dim} "
                "dimensions; H must be (D, D)"
            )
        degenerate = torch.nonzero(self.prior.degenerate).flatten()
        if self.degradation.sigma == 0 and _noise_level(self.noise) == 0 and degenerate.numel():
            raise ValueError(
                f"x_t has no density for any t: component {int(degenerate[0])} has a singular "
                "covariance (a Dirac mode or a rank-deficient C_k) and there is no noise "
                "(sigma = 0 and no noise schedule). Give the degradation sigma > 0, add "
                "ConstantNoise / BrownianNoise, or give every component a positive-definite "
                "covariance"
            )

    def noise_var(self, t: torch.Tensor) -> torch.Tensor:
        """``r_t^2 = t^2 sigma^2 + (t eps_t)^2``, the variance of the noise in ``x_t``."""
        r2 = (t * self.degradation.sigma).square()
        if self.noise is not None:
            r2 = r2 + torch.as_tensor(self.noise.std(t)).square()
        return r2

    def _times(self, t: object, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` times (or ``(1,)`` when all are equal) checked to lie in ``(0, 1]``."""
        if not isinstance(t, torch.Tensor):
            check_real("t", t)
        t_vec = batch_times(t, x)
        lo, hi = torch.stack([t_vec.min(), t_vec.max()]).tolist()
        if not (math.isfinite(lo) and math.isfinite(hi) and lo > 0 and hi <= 1):
            raise ValueError(
                f"t must lie in (0, 1] (in x_t's dtype {x.dtype}), got values in [{lo}, {hi}]; "
                "the regression target at t = 0 is the clean x itself"
            )
        # Equal times share one A_t, so S_k is factorised K times rather than B * K times.
        return t_vec[:1] if lo == hi else t_vec

    def _identity_terms(
        self, x: torch.Tensor, t: torch.Tensor, r2: torch.Tensor, arr: MixtureArrays
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # A_t = I: S_k = V_k diag(lam_k + r_t^2) V_k^T, diagonal in C_k's fixed eigenbasis.
        var = arr.eigvals + r2[:, None, None]
        if not bool((var > 0).all()):
            b, k, _ = (var <= 0).nonzero()[0].tolist()
            raise _no_density(float(t[b]), k, float(r2[b]), x.dtype)
        z = torch.einsum("kji,bkj->bki", arr.eigvecs, x[:, None, :] - arr.means)
        log_normal = spectral_log_normal(z, var)
        cond = arr.means + torch.einsum("kij,bkj->bki", arr.eigvecs, arr.eigvals / var * z)
        return log_normal, cond

    def _general_terms(
        self, x: torch.Tensor, t: torch.Tensor, r2: torch.Tensor, arr: MixtureArrays
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dim = x.shape[1]
        eye = torch.eye(dim, dtype=x.dtype, device=x.device)
        H = self.degradation.matrix(dim, x.dtype, x.device)
        A = (1 - t)[:, None, None] * eye + t[:, None, None] * H
        G = A[:, None] @ arr.factor  # A_t L_k, so that A_t C_k A_t^T = G G^T
        S = G @ G.mT + r2[:, None, None, None] * eye
        chol, info = torch.linalg.cholesky_ex(S)
        if bool((info > 0).any()):
            b, k = (info > 0).nonzero()[0].tolist()
            raise _no_density(float(t[b]), k, float(r2[b]), x.dtype)
        d = x[:, None, :, None] - (A[:, None] @ arr.means[..., None])
        w = torch.linalg.solve_triangular(chol, d, upper=False)
        logdet = 2.0 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        log_normal = -0.5 * (w.square().sum((-2, -1)) + logdet + dim * _LOG_2PI)
        s_inv_d = torch.linalg.solve_triangular(chol.mT, w, upper=True)
        cond = arr.means + (arr.factor @ (G.mT @ s_inv_d)).squeeze(-1)
        return log_normal, cond

    def _log_joint(
        self, x_t: torch.Tensor, t: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``log pi_k + log N(x_t; m_k, S_k)`` of shape ``(B, K)`` and ``E[x | x_t, k]``."""
        x = flatten_states("x_t", x_t, self.prior.dim)
        if x.shape[0] == 0:
            raise ValueError("x_t must hold at least one sample, got batch size 0")
        check_finite_tensor("x_t", x)
        t_vec = self._times(t, x)
        r2 = self.noise_var(t_vec)
        arr = self.prior.arrays(x.dtype, x.device)
        terms = self._identity_terms if self.degradation.is_identity else self._general_terms
        log_normal, cond = terms(x, t_vec, r2, arr)
        return arr.log_weights + log_normal, cond

    def __call__(self, x_t: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """``E[x | x_t]``, in the shape, dtype and device of ``x_t``."""
        log_joint, cond = self._log_joint(x_t, t)
        post = torch.softmax(log_joint, dim=-1)
        return torch.einsum("bk,bkd->bd", post, cond).reshape(x_t.shape)

    def weights(self, x_t: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """Posterior component probabilities ``P(k | x_t)``, shape ``(B, K)``."""
        return torch.softmax(self._log_joint(x_t, t)[0], dim=-1)

    def log_marginal(self, x_t: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        """``log p_t(x_t) = logsumexp_k (log pi_k + log N(x_t; m_k, S_k))``, shape ``(B,)``.

        Differentiable in ``x_t``: for ``H = I``, ``E[x | x_t] = x_t + r_t^2 grad log p_t``.
        """
        return torch.logsumexp(self._log_joint(x_t, t)[0], dim=-1)

    def sample_pairs(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs: ``x`` from the prior and ``y = H x + sigma n``, each ``(n, D)``."""
        check_generator(generator)
        x = self.prior.sample(n, generator=generator)
        return x, self.degradation.apply(x, generator=generator)
