"""How exact are the oracles? Tweedie residual, Monte Carlo z-scores, float32 drift, cost.

    python benchmarks/oracle_accuracy.py

Reuses the priors, degradations and noise schedules of tests/oracle_cases.py.
"""

import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
torch.set_num_threads(1)
import oracle_cases as T  # noqa: E402

from indiflow.oracles import GaussianMixture, LinearDegradation, PosteriorMean  # noqa: E402

tw, z, drift = 0.0, 0.0, 0.0
for pk in ("full", "iso", "dirac"):
    for noise in T.NOISES.values():
        pm = PosteriorMean(T.make_prior(pk), LinearDegradation(None, T.SIGMA), noise)
        x = 1.5 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=T.DT)
        for t in (0.01, 0.05, 0.5, 1.0):
            xr = x.clone().requires_grad_(True)
            (s,) = torch.autograd.grad(pm.log_marginal(xr, t).sum(), xr)
            tw = max(tw, float((pm(x, t) - x - T.r_squared(T.SIGMA, noise, t) * s).abs().max()))
        for hk in ("identity", "erase", "general"):
            h = T.make_h(hk)
            pm = PosteriorMean(T.make_prior(pk), LinearDegradation(h, T.SIGMA), noise)
            pm32 = PosteriorMean(
                T.make_prior(pk, torch.float32),
                LinearDegradation(None if h is None else h.float(), T.SIGMA),
                noise,
            )
            g = torch.Generator().manual_seed(1)
            for t in (0.4, 1.0):
                a, r2 = T.a_matrix(h, t), T.r_squared(T.SIGMA, noise, t)
                x_t = T.make_prior(pk).sample(8, generator=g) @ a.mT + math.sqrt(r2) * torch.randn(
                    8, 2, generator=g, dtype=T.DT
                )
                xs = T.make_prior(pk).sample(40_000, generator=g)
                w = torch.softmax(-0.5 * torch.cdist(x_t, xs @ a.mT).square() / r2, -1)
                est = w @ xs
                se = (w.square()[:, :, None] * (xs - est[:, None]).square()).sum(1).sqrt()
                z = max(z, float(((pm(x_t, t) - est).abs() / (se + 1e-12)).max()))
            xf = torch.tensor([[1e3, 3e2], [-7e2, 1e3], [0.9, 0.6], [-3.0, 0.1]], dtype=T.DT)
            for t in (1e-4, 1e-2, 1.0):
                sc = xf.abs().amax(-1, keepdim=True).clamp_min(1.0)
                drift = max(
                    drift, float(((pm32(xf.float(), t).double() - pm(xf, t)).abs() / sc).max())
                )
print(f"Tweedie max |E[x|x_t] - (x_t + r^2 score)| (float64, 9 configs x 4 t x 64 pts): {tw:.2e}")
print(
    "MC: max |oracle - SNIS| / (SE + 1e-12 summation rounding) over 27 configs x 2 t x 8 pts"
    f" x 2 coords: {z:.2f}"
)
print(f"float32 vs float64: max |diff| / max(1, |x|) at t in (1e-4, 1e-2, 1): {drift:.2e}")

# Cost per call: B = 4096, K = 4 Dirac modes, D = 2, float32, one thread.
means = torch.tensor([[1.0, 1], [-1, 1], [1, -1], [-1, -1]])
for name, H in (("I", None), ("diag(1,0)", torch.diag(torch.tensor([1.0, 0.0])))):
    pm = PosteriorMean(GaussianMixture(means, 0.0), LinearDegradation(H, 0.2))
    x, shared, per = torch.randn(4096, 2), torch.full((4096,), 0.5), torch.rand(4096) * 0.9 + 0.1
    for label, t in (("shared t", shared), ("per-sample t", per)):
        pm(x, t)
        t0 = time.perf_counter()
        for _ in range(20):
            pm(x, t)
        print(f"H = {name}, {label}: {(time.perf_counter() - t0) / 20 * 1e3:.2f} ms per call")
