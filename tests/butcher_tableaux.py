"""Published Butcher tableaux of the embedded Runge-Kutta pairs, shared by the solver tests.

Written out from the literature, independently of ``indiflow.solvers``: Heun with embedded
Euler, Bogacki-Shampine 3(2) and Dormand-Prince 5(4), the last two first-same-as-last (FSAL:
the final stage is evaluated at the new state with the main weights ``b``).
"""

from __future__ import annotations

from typing import NamedTuple


class Tableau(NamedTuple):
    """Nodes ``c``, lower-triangular rows of ``A``, main weights ``b``, embedded ``b_hat``."""

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_hat: tuple[float, ...]


HEUN = Tableau(c=(0, 1), a=((), (1,)), b=(1 / 2, 1 / 2), b_hat=(1, 0))

BOGACKI_SHAMPINE = Tableau(
    c=(0, 1 / 2, 3 / 4, 1),
    a=((), (1 / 2,), (0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    b=(2 / 9, 1 / 3, 4 / 9, 0),
    b_hat=(7 / 24, 1 / 4, 1 / 3, 1 / 8),
)

DORMAND_PRINCE = Tableau(
    c=(0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0),
    b_hat=(5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
)

# Keyed by the indiflow solver class each tableau is checked against.
TABLEAUX = {
    "Heun": HEUN,
    "BogackiShampine": BOGACKI_SHAMPINE,
    "DormandPrince": DORMAND_PRINCE,
}
