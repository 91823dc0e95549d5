"""Covariance checks of the oracles (``psd_spectrum``): tolerances relative to ``max |C|``."""

from __future__ import annotations

import pytest
import torch
from oracle_cases import DT

from indiflow.oracles._spectral import psd_spectrum, spectral_rtol


def test_spectral_tolerance_is_100_dim_eps_of_the_dtype():
    assert spectral_rtol(torch.float32, 3) == 300.0 * torch.finfo(torch.float32).eps
    assert spectral_rtol(torch.float64, 2) == 200.0 * torch.finfo(torch.float64).eps


def test_symmetry_check_is_relative_to_the_largest_entry():
    # max |C| = 100: an asymmetry of 10 rtol is rounding (< rtol * 100), one of 1000 rtol is not;
    # only component 1 is asymmetric, and the message names it.
    rtol = spectral_rtol(DT, 2)
    near = torch.tensor([[100.0, 1.0], [1.0 + 10 * rtol, 50.0]], dtype=DT)
    far = torch.tensor([[100.0, 1.0], [1.0 + 1000 * rtol, 50.0]], dtype=DT)
    spectrum = psd_spectrum("covs", torch.stack([near, near]))
    assert not bool(spectrum.degenerate.any())
    with pytest.raises(ValueError) as info:
        psd_spectrum("covs", torch.stack([near, far]))
    asym = float(far[1, 0] - far[0, 1])
    assert str(info.value) == (
        f"covs[1] is not symmetric: max |C - C^T| = {asym:.3g} for max |C| = 100; "
        "pass (C + C.mT) / 2 if the asymmetry is rounding"
    )


def test_eigenvalue_checks_are_relative_to_the_largest_entry():
    # max |C| = 100: an eigenvalue of -10 rtol is rounding (accepted, singular), one of +10 rtol
    # is still singular to working precision; -0.1 is indefinite, with this exact message.
    rtol = spectral_rtol(DT, 2)
    rounding = torch.diag(torch.tensor([100.0, -10 * rtol], dtype=DT))
    tiny = torch.diag(torch.tensor([100.0, 10 * rtol], dtype=DT))
    regular = torch.diag(torch.tensor([100.0, 1.0], dtype=DT))
    spectrum = psd_spectrum("covs", torch.stack([rounding, tiny, regular]))
    assert spectrum.degenerate.tolist() == [True, True, False]
    assert spectrum.eigvals[0].tolist() == [0.0, 100.0]
    indefinite = torch.diag(torch.tensor([1.0, -0.1], dtype=DT))
    with pytest.raises(ValueError) as info:
        psd_spectrum("covs", torch.stack([regular, indefinite]))
    assert str(info.value) == (
        "covs[1] is not positive semi-definite: its smallest eigenvalue is -0.1 < 0; a "
        "covariance must be symmetric with eigenvalues >= 0 (build it as L @ L.mT, or pass "
        "standard deviations instead)"
    )
