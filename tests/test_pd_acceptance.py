"""The acceptance criteria of benchmarks/perception_distortion.py on hand-made rows."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _pd_acceptance import acceptance_checks, checks_table, trend_counts

# Euler means that meet every criterion (N -> psnr, ssim, swd, gap, w1, stlpips, rms_to_ref).
GOOD = {
    1: (25.0, 0.70, 0.10, -1.0, 0.10, 0.40, 0.050),
    2: (24.8, 0.69, 0.09, -0.8, 0.098, 0.35, 0.030),
    5: (24.5, 0.68, 0.08, -0.6, 0.095, 0.30, 0.015),
    10: (24.2, 0.67, 0.07, -0.4, 0.09, 0.28, 0.008),
    20: (24.0, 0.66, 0.06, -0.3, 0.088, 0.27, 0.004),
}


FLAT = {n: (25.0 - 0.05 * i, *GOOD[n][1:]) for i, n in enumerate(GOOD)}


def _row(seed, photo, method, n, values):
    psnr, ssim, swd, gap, w1, lpips, rms = values
    return {
        "seed": seed, "photo": photo, "method": method, "N": n, "evaluations": n, "psnr": psnr,
        "ssim": ssim, "laplacian_swd": swd, "spectrum_gap": gap, "gradient_w1": w1,
        "stlpips": lpips, "rms_to_ref": rms,
    }  # fmt: skip


def _rows(euler=GOOD, seeds=(0, 1), photo="mean", shift=0.0, **extra):
    rows = []
    for seed in seeds:
        rows.append(_row(seed, photo, "input", 0, (24.7, 0.6, 0.2, -1.5, 0.2, 0.5, float("nan"))))
        for n, values in euler.items():
            rows.append(_row(seed, photo, "euler", n, (values[0] + shift * seed, *values[1:])))
        control = extra.get("control", (24.0, 0.62, 0.08, -0.5, 0.09, 0.3, float("nan")))
        rows.append(_row(seed, photo, "control", 20, control))
        ms3 = extra.get("expms3", 0.0045)
        rows.append(_row(seed, photo, "expms3", 10, (24.1, 0.67, 0.06, -0.3, 0.09, 0.3, ms3)))
    return rows


def _verdicts(rows):
    return {check.name: check.passed for check in acceptance_checks(rows)}


def test_rows_meeting_every_criterion_pass_them_all():
    verdicts = _verdicts(_rows())
    assert len(verdicts) == 13 and all(verdicts.values()), verdicts


def _with(n, index, value):
    euler = {k: list(v) for k, v in GOOD.items()}
    euler[n][index] = value
    return {k: tuple(v) for k, v in euler.items()}


@pytest.mark.parametrize(
    ("rows", "failing"),
    [
        (_rows(_with(1, 0, 24.85)), {"PSNR(1) - PSNR(input)"}),  # +0.15 dB only
        (_rows(_with(5, 0, 24.9)), {"PSNR along N = [1, 2, 5, 10, 20]"}),
        (_rows(FLAT), {"PSNR(1) - PSNR(20)"}),  # falls 0.2 dB only
        (_rows(_with(20, 0, 22.4)), {"PSNR(1) - PSNR(20)"}),  # falls 2.6 dB
        (_rows(_with(10, 2, 0.095)), {"Laplacian SWD along N = [1, 2, 5, 10, 20]"}),
        (
            _rows(_with(20, 2, 0.085)),
            {
                "SWD(20) / SWD(1)",
                "Laplacian SWD along N = [1, 2, 5, 10, 20]",
                "SWD(N=20) / SWD(control)",
            },
        ),
        (_rows(_with(20, 4, 0.093)), {"grad W1(20) / grad W1(1)"}),
        (_rows(_with(1, 3, -0.85)), {"spectrum gap(1)"}),
        (_rows(_with(20, 3, 0.55)), {"|gap(20)| / |gap(1)|"}),
        (_rows(control=(24.0, 0.62, 0.065, 0, 0, 0, 0)), {"SWD(N=20) / SWD(control)"}),
        (_rows(control=(24.0, 0.64, 0.07, 0, 0, 0, 0)), {"SSIM(N=20) - SSIM(control)"}),
        (_rows(expms3=0.0051), {"RMS to ref: ExpMultistep3(10) / Euler(20)"}),
        (_rows(shift=0.11), {"PSNR spread over 2 draws"}),
    ],
)
def test_each_criterion_fails_alone_when_its_rule_is_broken(rows, failing):
    verdicts = _verdicts(rows)
    assert {name for name, passed in verdicts.items() if not passed} == failing


def test_swd_spread_is_relative_to_the_mean():
    rows = _rows(seeds=(0,)) + [
        {**r, "seed": 1, "laplacian_swd": float(r["laplacian_swd"]) * 1.04}
        for r in _rows(seeds=(0,))
    ]
    verdicts = _verdicts(rows)
    assert verdicts["SWD spread over 2 draws"] is False
    assert verdicts["PSNR spread over 2 draws"] is True


def test_missing_parts_are_reported_as_not_run():
    one_draw = acceptance_checks(_rows(seeds=(0,)))
    assert [c.passed for c in one_draw if "draw" in c.measured] == [None]
    short = acceptance_checks([r for r in _rows() if r["N"] != 20])
    assert [(c.rule, c.passed) for c in short] == [("need N = 1 and N = 20", None)]
    table = checks_table(one_draw, [])
    assert "| stability across noise draws | one draw | needs --seeds >= 2 | not run |" in table
    assert "11 of 11 criteria met." in table


def test_trend_counts_count_photos():
    bad = {n: (25.0 - 0.5 * (n == 5), *v[1:]) for n, v in GOOD.items()}  # PSNR rises at N = 10
    rows = _rows(photo="a") + _rows(photo="b") + _rows(euler=bad, photo="c") + _rows()
    counts = {label: (hits, total) for label, hits, total in trend_counts(rows)}
    assert counts["PSNR never rises along N"] == (2, 3)
    assert counts["PSNR falls 0.3 to 2.5 dB from N = 1 to 20"] == (2, 3)  # c falls 0 dB
    assert counts["ST-LPIPS(20) < ST-LPIPS(1)"] == (3, 3)
    assert counts["SWD(20) <= 0.8 x SWD(1)"] == (3, 3)
    table = checks_table([], trend_counts(rows))
    assert "| PSNR never rises along N | 2 of 3 |" in table
