"""2-D clean laws, linear degradations and the toy problems built from them.

Clean laws:
  * ``four_modes``: the paper's Fig. 1 prior, four equally likely modes at ``(±1, ±1)``, as
    Dirac masses (``std = 0``) or Gaussians of std ``std``;
  * ``ring``: ``n`` equally likely modes on a circle (Dirac or Gaussian);
  * ``checkerboard``: uniform on the black squares of a 4x4 board on ``[-2, 2]^2``;
  * ``two_moons``: two interleaved half circles with a little Gaussian jitter.

Degradations ``y = H x + sigma n``: ``H = I`` (denoising), ``H = diag(1, 0)`` (the second
coordinate is erased; the paper's Fig. 1(b)) and a general invertible 2x2 ``H`` (a rotation with
anisotropic gain).

Exact oracles: mixture laws (Dirac or Gaussian modes, hence ``four_modes`` and ``ring``) have a
closed-form posterior mean ``E[x | x_t]`` for every ``t`` in (0, 1] and every noise schedule
(``indiflow.oracles.PosteriorMean``). The checkerboard and the two moons have none (their
posterior mean is an integral of a Gaussian over polygons / curves with no closed form here), so
``Toy.oracle`` returns ``None`` for them and they are evaluated by sample-based metrics only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

import indiflow as ind


def _draw_normal(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float64)


@dataclass(frozen=True)
class MixtureLaw:
    """Equal-weight mixture of isotropic Gaussians (``std = 0``: Dirac masses) at ``means``."""

    name: str
    means: torch.Tensor
    std: float = 0.0

    @property
    def modes(self) -> torch.Tensor:
        """The mode centres, shape ``(K, 2)``."""
        return self.means

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` clean points of shape ``(n, 2)`` in float64."""
        k = torch.randint(len(self.means), (n,), generator=generator)
        return self.means[k] + self.std * _draw_normal((n, 2), generator)

    def oracle_prior(self) -> object:
        """The law as an ``indiflow.oracles.GaussianMixture``."""
        k = len(self.means)
        return ind.oracles.GaussianMixture(
            self.means, torch.full((k,), self.std, dtype=torch.float64), torch.full((k,), 1.0 / k)
        )


@dataclass(frozen=True)
class CheckerboardLaw:
    """Uniform on the 8 black squares of a 4x4 board on ``[-2, 2]^2``; no closed-form oracle."""

    name: str = "checkerboard"
    modes: None = None

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand((n, 2), generator=generator, dtype=torch.float64)
        cell = torch.randint(8, (n,), generator=generator)
        row = cell // 2
        col = 2 * (cell % 2) + (row % 2)  # shift every other row: black squares alternate
        corner = torch.stack([col, row], dim=1).to(torch.float64) - 2.0
        return corner + u

    def oracle_prior(self) -> None:
        return None


@dataclass(frozen=True)
class TwoMoonsLaw:
    """Two interleaved half circles of radius 1, jittered by ``noise``; no closed-form oracle."""

    name: str = "two_moons"
    noise: float = 0.05
    modes: None = None

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        upper = torch.rand(n, generator=generator) < 0.5
        x = torch.where(upper, angle.cos() - 0.5, 0.5 - angle.cos())
        y = torch.where(upper, angle.sin() - 0.25, 0.25 - angle.sin())
        return torch.stack([x, y], dim=1) + self.noise * _draw_normal((n, 2), generator)

    def oracle_prior(self) -> None:
        return None


CleanLaw = MixtureLaw | CheckerboardLaw | TwoMoonsLaw


def four_modes(std: float = 0.0) -> MixtureLaw:
    """The paper's Fig. 1 prior: modes at ``(±1, ±1)``; Dirac for ``std = 0``."""
    means = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], dtype=torch.float64)
    return MixtureLaw("four_dirac" if std == 0 else "four_gauss", means, std)


def ring(n_modes: int = 8, radius: float = 1.5, std: float = 0.05) -> MixtureLaw:
    """``n_modes`` equally likely modes on a circle of ``radius``."""
    angle = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)
    return MixtureLaw(f"ring{n_modes}", means, std)


@dataclass(frozen=True)
class Degradation:
    """``y = H x + sigma n``, ``n ~ N(0, I)``, for clean points of shape ``(B, 2)``."""

    name: str
    H: torch.Tensor
    sigma: float

    def apply(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x @ self.H.T.to(x.dtype) + self.sigma * _draw_normal(tuple(x.shape), generator)

    def oracle(self) -> object:
        return ind.oracles.LinearDegradation(self.H, self.sigma)


def denoising(sigma: float = 1.0) -> Degradation:
    """``H = I``: additive Gaussian noise of std ``sigma``."""
    return Degradation("denoise", torch.eye(2, dtype=torch.float64), sigma)


def erase_second(sigma: float = 0.2) -> Degradation:
    """``H = diag(1, 0)``: the second coordinate is lost; the paper's Fig. 1(b)."""
    return Degradation("erase2", torch.diag(torch.tensor([1.0, 0.0], dtype=torch.float64)), sigma)


def mixing(sigma: float = 0.3) -> Degradation:
    """A general 2x2 ``H``: rotation by 30 degrees with gains 1 and 0.3 (condition number 3.3)."""
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return Degradation("mixing", torch.diag(torch.tensor([1.0, 0.3])).double() @ rotation, sigma)


@dataclass(frozen=True)
class Toy:
    """A clean law and a degradation: the pairs ``(x, y)`` a toy trains and tests on."""

    name: str
    law: CleanLaw
    degradation: Degradation
    description: str = field(default="", compare=False)

    @property
    def modes(self) -> torch.Tensor | None:
        """Mode centres for mixture laws (for the nearest-mode distance), else ``None``."""
        return self.law.modes

    @property
    def has_dirac_modes(self) -> bool:
        return isinstance(self.law, MixtureLaw) and self.law.std == 0

    def sample_pairs(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` pairs ``(x, y)``, each of shape ``(n, 2)``."""
        x = self.law.sample(n, generator)
        y = self.degradation.apply(x, generator)
        return x.to(dtype), y.to(dtype)

    def oracle(self, noise: ind.ConstantNoise | ind.BrownianNoise | None = None) -> object | None:
        """The exact ``E[x | x_t]`` (``indiflow.oracles.PosteriorMean``), or ``None`` if none."""
        prior = self.law.oracle_prior()
        if prior is None:
            return None
        return ind.oracles.PosteriorMean(prior, self.degradation.oracle(), noise)


# Named problems for the command-line scripts (a CLI choice table, not a library registry).
TOYS: dict[str, Toy] = {
    "fig1a": Toy("fig1a", four_modes(), denoising(1.0), "four Dirac modes, H = I, sigma = 1"),
    "fig1b": Toy(
        "fig1b", four_modes(), erase_second(0.2), "four Dirac modes, H = diag(1, 0), sigma = 0.2"
    ),
    "gauss4": Toy("gauss4", four_modes(0.15), denoising(1.0), "four Gaussian modes (std 0.15)"),
    "ring8": Toy("ring8", ring(8, 1.5, 0.05), denoising(0.8), "ring of 8 modes, H = I"),
    "ring8_mix": Toy("ring8_mix", ring(8, 1.5, 0.05), mixing(0.3), "ring of 8, general 2x2 H"),
    "checkerboard": Toy("checkerboard", CheckerboardLaw(), denoising(0.5), "no oracle"),
    "moons": Toy("moons", TwoMoonsLaw(), denoising(0.3), "two moons, no oracle"),
}


def get_toy(name: str) -> Toy:
    """The named toy; ``ValueError`` listing the names otherwise."""
    if name not in TOYS:
        raise ValueError(f"unknown toy {name!r}; choose one of {sorted(TOYS)}")
    return TOYS[name]
