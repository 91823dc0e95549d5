"""The work-precision report: Markdown summary and the figure (fronts per method and field)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from _wp_fields import Problem

Run = dict[str, object]
TARGET_BUDGETS = (10, 20)


def designed(run: Run) -> bool:
    return str(run["grid"]).startswith("designed")


def best_under(runs: list[Run], budget: float, anchors: bool, designs: bool = False) -> Run | None:
    """Best run within ``budget``: anchors, undesigned indiflow, or designed indiflow runs.

    Designs are ranked by their pilot RMS, as a user without held-out data would pick one;
    the others by the RMS they were measured with.
    """
    pool = [
        r
        for r in runs
        if (r["library"] != "indiflow") == anchors and designed(r) == designs
        and r["evals"] <= budget
    ]  # fmt: skip
    key = "pilot_rms" if designs else "rms"
    return min(pool, key=lambda r: r[key]) if pool else None


def describe(run: Run) -> str:
    return f"{run['library']} {run['method']} ({run['grid']}, {run['param']})"


def _cost_ratio(run: Run, runs: list[Run]) -> str:
    """This design's forward cost over the NM design's of the same solver and steps."""
    for r in runs:
        if r["grid"] == "designed NM" and (r["method"], r["param"]) == (
            run["method"],
            run["param"],
        ):
            return f"{run['design_evals'] / r['design_evals']:.3f}"
    return "–"


def cost_target(runs: list[Run]) -> list[tuple[Run, Run | None]]:
    """Per NM design: the cheapest gradient design of its solver and steps at or below its error.

    Held-out RMS decides "at or below"; cheapest is by forward design evaluations.
    """
    out = []
    for nm in (r for r in runs if r["grid"] == "designed NM"):
        rivals = [
            r
            for r in runs
            if designed(r) and r["grid"] != "designed NM" and r["rms"] <= nm["rms"]
            and (r["method"], r["param"]) == (nm["method"], nm["param"])
        ]  # fmt: skip
        out.append((nm, min(rivals, key=lambda r: r["design_evals"]) if rivals else None))
    return out


def summary(
    problems: list[Problem],
    runs: list[Run],
    anchors: dict[str, dict[int, Run]],
    costs: dict[str, dict],
    budgets: tuple[int, ...],
    meta: dict[str, object],
) -> str:
    """Markdown: per field the targets (held out), every design with its cost, the test table."""
    lines = [f"# Work-precision ({meta['machine']}, commit {meta['commit']})", ""]
    verdict = [
        "| field | ≤ 10: designed / anchor (held out) | ≤ 20 | met | trimmed ≤ 10 | trimmed ≤ 20 "
        "| cost / NM at ≤ NM's error |",
        "|---|---|---|---|---|---|---|",
    ]
    for problem in problems:
        mine = [r for r in runs if r["field"] == problem.name]
        n_held, cost = problem.holdout.shape[0], costs[problem.name]
        lines += [f"## {problem.name}: {problem.description}", ""]
        lines += [
            f"Reference: DP5 rtol = atol = 1e-10; max distance to DOP853 in log t "
            f"{problem.reference_check:.1e}. Pilot: {cost['pilot']} inputs (seed 1), its "
            f"reference {cost['reference_cost']} evaluations (shared by every design, not in "
            f"the costs below). Held out: {n_held} inputs (seed 2).",
            "",
            "| budget | design (lowest pilot RMS) | evals | pilot RMS | held-out RMS "
            "| held-out max "
            "| best anchor (held out; top 5 on test) | evals | test RMS | held-out RMS | ratio "
            "| trimmed RMS: design / anchor (ratio) |",
            "|---" * 12 + "|",
        ]
        ratios, trimmed = [], []
        for budget in budgets:
            a, b = best_under(mine, budget, False, True), anchors[problem.name].get(budget)
            if a is None or b is None:
                continue
            ratio, ratio99 = a["rms"] / b["rms"], a["rms99"] / b["rms99"]
            if budget in TARGET_BUDGETS:
                ratios.append(ratio)
                trimmed.append(ratio99)
            lines.append(
                f"| ≤ {budget} | {describe(a)} | {a['evals']:.1f} | {a['pilot_rms']:.2e} | "
                f"{a['rms']:.2e} | {a['max']:.2e} | {describe(b)} | {b['evals']:.1f} | "
                f"{b['test_rms']:.2e} | {b['rms']:.2e} | {ratio:.3f} | "
                f"{a['rms99']:.2e} / {b['rms99']:.2e} ({ratio99:.3f}) |"
            )
        met = "yes" if ratios and max(ratios) <= 0.2 else "no"
        cheapest = [
            f"{n['param']} steps: {r['grid'][9:]} {r['design_evals'] / n['design_evals']:.3f}"
            if r is not None else f"{n['param']} steps: none"
            for n, r in cost_target(mine)
        ]  # fmt: skip
        verdict.append(
            f"| {problem.name} | "
            + " | ".join(f"{r:.3f}" for r in ratios)
            + f" | {met} | "
            + " | ".join(f"{r:.3f}" for r in trimmed)
            + f" | {'; '.join(cheapest) or '–'} |"
        )
        lines += [
            "",
            "| method | design | steps | pilot RMS | held-out RMS | design evaluations "
            "(backward) | / NM | seconds |",
            "|---" * 8 + "|",
        ]
        for r in sorted(
            (r for r in mine if designed(r)), key=lambda r: (int(r["param"]), r["method"])
        ):
            lines.append(
                f"| {r['method']} | {r['grid'][9:]} | {r['param']} | {r['pilot_rms']:.2e} | "
                f"{r['rms']:.2e} | {r['design_evals']:.3g} ({r['design_backward']:.3g}) | "
                f"{_cost_ratio(r, mine)} | {r['design_seconds']} |"
            )
        n_test = problem.y.shape[0]
        lines += ["", f"Undesigned indiflow against the anchors on the {n_test} test inputs:", ""]
        lines += ["| budget | best indiflow | evals | RMS | best anchor | evals | RMS | ratio |"]
        lines += ["|---" * 8 + "|"]
        for budget in budgets:
            a, b = best_under(mine, budget, False), best_under(mine, budget, True)
            if a is not None and b is not None:
                lines.append(
                    f"| ≤ {budget} | {describe(a)} | {a['evals']:.1f} | {a['rms']:.2e} | "
                    f"{describe(b)} | {b['evals']:.1f} | {b['rms']:.2e} | "
                    f"{a['rms'] / b['rms']:.3f} |"
                )
        lines.append("")
    head = "## Verdict (target: ratio ≤ 0.2 at ≤ 10 and ≤ 20; trimmed = without the worst 1 %)"
    return "\n".join([*lines, head, "", *verdict])


def pareto(runs: list[Run]) -> tuple[list[float], list[float]]:
    """The runs no cheaper run beats: the method's work-precision front."""
    best, xs, ys = float("inf"), [], []
    for r in sorted(runs, key=lambda r: (r["evals"], r["rms"])):
        if r["rms"] < best:
            best = r["rms"]
            xs.append(r["evals"])
            ys.append(r["rms"])
    return xs, ys


def plot(fields: list[str], runs: list[Run], path: Path, max_evals: int) -> None:
    """One log-log panel per field: each method's front (designed ones: held-out error)."""
    plt.switch_backend("agg")
    fig, axes = plt.subplots(1, len(fields), figsize=(7 * len(fields), 6), squeeze=False)
    styles = {"indiflow": "-", "torchdiffeq": ":", "k-diffusion": "--"}

    def key(r: Run) -> tuple[str, str, str]:
        return r["library"], r["method"], str(r["grid"]) if designed(r) else ""

    groups = sorted({key(r) for r in runs})
    colors = dict(zip(groups, plt.cm.tab20(np.linspace(0, 1, len(groups))), strict=True))
    for ax, name in zip(axes[0], fields, strict=True):
        mine = [r for r in runs if r["field"] == name]
        for group_key in groups:
            group = [r for r in mine if key(r) == group_key]
            if not group:
                continue
            xs, ys = pareto(group)
            library, method, kind = group_key
            label = f"{library} {method}" + (f" ({kind}, held out)" if kind else "")
            ax.loglog(xs, ys, styles[library], color=colors[group_key], label=label,
                      marker="o" if kind else ".", lw=2.2 if kind else 1.2)  # fmt: skip
        for budget in TARGET_BUDGETS:
            ax.axvline(budget, color="grey", lw=0.5)
        ax.set(title=name, xlabel="mean evaluations per sample", ylabel="RMS error")
        ax.set_xlim(1.5, max_evals * 1.2)
        ax.legend(fontsize=5, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
