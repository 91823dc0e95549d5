"""The acceptance criteria of the perception–distortion experiment, checked on a sweep's rows.

Every criterion reads the Euler rows (``N`` steps = ``N`` evaluations) averaged over photos and
noise draws, except the per-draw stability, the per-photo trend counts and the solver
comparison (RMS distance to the 50-step ``ExpMultistep3`` solution of the same draw). The
thresholds are those of the project's image issue (4x super-resolution of the held-out photos);
``TREND_STEPS`` are the step counts along which PSNR and the Laplacian SWD must not rise.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

Row = dict[str, object]
TREND_STEPS = (1, 2, 5, 10, 20)


@dataclass(frozen=True)
class Check:
    """One criterion: what was measured, the rule, and whether it holds (``None``: not run)."""

    name: str
    measured: str
    rule: str
    passed: bool | None


def _value(rows: list[Row], method: str, n: int, metric: str) -> float:
    values = [float(r[metric]) for r in rows if r["method"] == method and r["N"] == n]  # type: ignore[arg-type]
    return statistics.fmean(values) if values else float("nan")


def _steps(rows: list[Row]) -> list[int]:
    present = {int(r["N"]) for r in rows if r["method"] == "euler"}  # type: ignore[call-overload]
    return [n for n in TREND_STEPS if n in present]


def _never_rises(values: list[float], slack: float = 0.0) -> bool:
    return all(b <= a + slack for a, b in zip(values, values[1:], strict=False))


def acceptance_checks(seed_means: list[Row]) -> list[Check]:
    """The criteria on the per-draw photo means (rows of ``per_seed_means``)."""
    m = seed_means
    steps = _steps(m)
    if steps[:1] != [1] or steps[-1:] != [20]:
        return [Check("criteria", f"Euler steps {steps}", "need N = 1 and N = 20", None)]
    psnr = [_value(m, "euler", n, "psnr") for n in steps]
    swd = [_value(m, "euler", n, "laplacian_swd") for n in steps]
    w1 = [_value(m, "euler", n, "gradient_w1") for n in (1, 20)]
    gap = [_value(m, "euler", n, "spectrum_gap") for n in (1, 20)]
    gain = psnr[0] - _value(m, "input", 0, "psnr")
    drop = psnr[0] - psnr[-1]
    checks = [
        Check("PSNR(1) - PSNR(input)", f"{gain:+.2f} dB", ">= +0.2 dB", gain >= 0.2),
        Check(
            f"PSNR along N = {steps}",
            " > ".join(f"{p:.2f}" for p in psnr),
            "never rises",
            _never_rises(psnr),
        ),
        Check("PSNR(1) - PSNR(20)", f"{drop:.2f} dB", "0.3 to 2.5 dB", 0.3 <= drop <= 2.5),
        Check(
            f"Laplacian SWD along N = {steps}",
            " > ".join(f"{s:.4f}" for s in swd),
            "never rises",
            _never_rises(swd),
        ),
        Check("SWD(20) / SWD(1)", f"{swd[-1] / swd[0]:.3f}", "<= 0.8", swd[-1] <= 0.8 * swd[0]),
        Check("grad W1(20) / grad W1(1)", f"{w1[1] / w1[0]:.3f}", "<= 0.92", w1[1] <= 0.92 * w1[0]),
        Check("spectrum gap(1)", f"{gap[0]:.3f}", "<= -0.9", gap[0] <= -0.9),
        Check(
            "|gap(20)| / |gap(1)|",
            f"{abs(gap[1]) / abs(gap[0]):.3f}",
            "<= 0.5",
            abs(gap[1]) <= 0.5 * abs(gap[0]),
        ),
    ]
    checks += _control_checks(m)
    checks += _solver_check(m)
    checks += _stability_checks(m)
    return checks


def _control_checks(m: list[Row]) -> list[Check]:
    control = [r for r in m if r["method"] == "control"]
    if not control:
        return [Check("white-noise control", "absent", "needs N = 1 and N > 1", None)]
    n = int(control[0]["N"])  # type: ignore[call-overload]
    swd = _value(m, "euler", n, "laplacian_swd") / _value(m, "control", n, "laplacian_swd")
    ssim = _value(m, "euler", n, "ssim") - _value(m, "control", n, "ssim")
    return [
        Check(f"SWD(N={n}) / SWD(control)", f"{swd:.3f}", "<= 0.9", swd <= 0.9),
        Check(f"SSIM(N={n}) - SSIM(control)", f"{ssim:+.4f}", ">= +0.03", ssim >= 0.03),
    ]


def _solver_check(m: list[Row]) -> list[Check]:
    multistep = _value(m, "expms3", 10, "rms_to_ref")
    euler = _value(m, "euler", 20, "rms_to_ref")
    if multistep != multistep or euler != euler:
        return [Check("ExpMultistep3(10) vs Euler(20)", "not run", "<= 1.25", None)]
    ratio = multistep / euler
    return [
        Check("RMS to ref: ExpMultistep3(10) / Euler(20)", f"{ratio:.3f}", "<= 1.25", ratio <= 1.25)
    ]


def _stability_checks(m: list[Row]) -> list[Check]:
    seeds = sorted({r["seed"] for r in m})  # type: ignore[type-var]
    if len(seeds) < 2:
        return [Check("stability across noise draws", "one draw", "needs --seeds >= 2", None)]
    worst_psnr, worst_swd = 0.0, 0.0
    for n in _steps(m):
        same = [r for r in m if r["method"] == "euler" and r["N"] == n]
        psnrs = [float(r["psnr"]) for r in same]  # type: ignore[arg-type]
        swds = [float(r["laplacian_swd"]) for r in same]  # type: ignore[arg-type]
        worst_psnr = max(worst_psnr, max(psnrs) - min(psnrs))
        worst_swd = max(worst_swd, (max(swds) - min(swds)) / statistics.fmean(swds))
    return [
        Check(
            f"PSNR spread over {len(seeds)} draws",
            f"{worst_psnr:.3f} dB",
            "<= 0.1 dB",
            worst_psnr <= 0.1,
        ),
        Check(
            f"SWD spread over {len(seeds)} draws", f"{worst_swd:.1%}", "<= 3 %", worst_swd <= 0.03
        ),
    ]


def trend_counts(rows: list[Row]) -> list[tuple[str, int, int]]:
    """Per photo (mean over draws): how many photos follow each trend, of how many."""
    photos = sorted({str(r["photo"]) for r in rows if r["photo"] != "mean"})
    steps = _steps(rows)
    if not photos or steps[:1] != [1] or steps[-1:] != [20]:
        return []
    tests = {
        "PSNR never rises along N": lambda v: _never_rises(v("psnr")),
        "PSNR falls 0.3 to 2.5 dB from N = 1 to 20": lambda v: (
            0.3 <= v("psnr")[0] - v("psnr")[-1] <= 2.5
        ),
        "Laplacian SWD never rises along N": lambda v: _never_rises(v("laplacian_swd")),
        "SWD(20) <= 0.8 x SWD(1)": lambda v: v("laplacian_swd")[-1] <= 0.8 * v("laplacian_swd")[0],
        "grad W1(20) <= 0.92 x grad W1(1)": lambda v: (
            v("gradient_w1")[-1] <= 0.92 * v("gradient_w1")[0]
        ),
        "ST-LPIPS(20) < ST-LPIPS(1)": lambda v: v("stlpips")[-1] < v("stlpips")[0],
    }
    metrics = ("psnr", "laplacian_swd", "gradient_w1", "stlpips")
    series = {}  # photo -> metric -> Euler values along `steps`, averaged over draws
    for photo in photos:
        mine = [r for r in rows if r["photo"] == photo]
        series[photo] = {m: [_value(mine, "euler", n, m) for n in steps] for m in metrics}
    return [
        (label, sum(bool(test(series[photo].__getitem__)) for photo in photos), len(photos))
        for label, test in tests.items()
    ]


def checks_table(checks: list[Check], counts: list[tuple[str, int, int]]) -> str:
    """Markdown: the criteria with a verdict each, then the per-photo trend counts."""
    verdict = {True: "yes", False: "**no**", None: "not run"}
    lines = ["| criterion | measured | rule | met |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.measured} | {c.rule} | {verdict[c.passed]} |" for c in checks]
    met = sum(c.passed is True for c in checks)
    lines.append(f"\n{met} of {sum(c.passed is not None for c in checks)} criteria met.")
    if counts:
        lines += ["", "| per-photo trend | photos |", "|---|---|"]
        lines += [f"| {label} | {hits} of {total} |" for label, hits, total in counts]
    return "\n".join(lines)
