"""Mutation score of `indiflow` modules with mutmut 3, one module at a time.

Each module is mutated in a temporary copy of the repository (``indiflow/``, ``tests/`` and
``pyproject.toml``), so the checkout is never modified, and each mutant is judged only by the
module's own test files (``MODULE_TESTS``). Per module it prints the number of mutants and how
many were killed, survived, timed out or had no covering test, and the score

    score = (killed + timeout) / (mutants - skipped)

(mutmut's own definition: a mutant that hangs the tests counts as detected). The diff of every
mutant that was not detected is written to ``<out>/<module>.survivors.txt`` and the counts to
``<out>/summary.json``.

Not part of CI: a module takes minutes (each mutant runs the module's tests once).

``--in-process`` keeps mutmut's generation step but judges all mutants of a module in one
interpreter (``benchmarks/_mutation_inprocess.py``: pytest collects the tests once, mutants are
switched through mutmut's ``MUTANT_UNDER_TEST``, and each runs only the tests that reach its
function, until the first failure), which removes mutmut's per-mutant process start-up.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/mutation.py indiflow/time_laws.py indiflow/grid.py
    OMP_NUM_THREADS=1 python benchmarks/mutation.py            # every module in MODULE_TESTS
    OMP_NUM_THREADS=1 python benchmarks/mutation.py --in-process indiflow/grid.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IN_PROCESS_JUDGE = Path(__file__).resolve().parent / "_mutation_inprocess.py"

# Module (file, or package directory) -> the test files that target it.
MODULE_TESTS: dict[str, tuple[str, ...]] = {
    "indiflow/time_laws.py": ("tests/test_time_laws.py",),
    "indiflow/grid.py": ("tests/test_grid.py",),
    "indiflow/losses.py": ("tests/test_losses.py",),
    "indiflow/interpolant.py": ("tests/test_interpolant.py",),
    "indiflow/grid_design.py": ("tests/test_grid_design.py", "tests/test_grid_design_mutants.py"),
    "indiflow/design_inputs.py": (
        "tests/test_grid_design.py",
        "tests/test_grid_design_mutants.py",
        "tests/test_solver_design.py",
    ),
    "indiflow/design_record.py": ("tests/test_grid_design.py", "tests/test_solver_design.py"),
    "indiflow/solvers.py": ("tests/test_solvers_exact.py",),
    "indiflow/controllers.py": ("tests/test_controllers_exact.py",),
    "indiflow/per_sample.py": (
        "tests/test_per_sample.py",
        "tests/test_per_sample_control.py",
        "tests/test_per_sample_mutants.py",
    ),
    "indiflow/per_sample_adaptive.py": (
        "tests/test_per_sample.py",
        "tests/test_per_sample_control.py",
        "tests/test_per_sample_mutants.py",
        "tests/test_per_sample_nonfinite.py",
    ),
    "indiflow/multistep.py": ("tests/test_multistep_exact.py",),
    "indiflow/oracles": (
        "tests/test_oracles_degradation.py",
        "tests/test_oracles_mixture.py",
        "tests/test_oracles_mixture_exact.py",
        "tests/test_oracles_posterior.py",
        "tests/test_oracles_posterior_errors.py",
        "tests/test_oracles_properties.py",
        "tests/test_oracles_spectral.py",
        "tests/test_oracles_trajectory.py",
    ),
}

# mutmut's exit-code classes (mutmut.stats.status_by_exit_code), folded into our columns.
_STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "killed",  # caught by a type check (none is configured here)
    None: "not checked",
}
_UNDETECTED = ("survived", "no tests", "suspicious", "not checked")
# In-process statuses as the mutmut exit codes that `_STATUS_BY_EXIT_CODE` maps back.
_EXIT_CODE_BY_STATUS = {"killed": 1, "survived": 0, "no tests": 33, "timeout": 36}
_COPIED = ("indiflow", "tests", "pyproject.toml")


def _mutmut_executable() -> str:
    """The mutmut command of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "mutmut"
    if beside.exists():
        return str(beside)
    found = shutil.which("mutmut")
    if found is None:
        raise ImportError('mutmut is not installed; run `pip install "mutmut>=3"`.')
    return found


def _prepare_copy(dest: Path, module: str, tests: tuple[str, ...]) -> None:
    """Copy the repository parts the tests need and add a mutmut configuration to the copy."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in _COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    if "[tool.mutmut]" in text:
        raise ValueError(
            "pyproject.toml already has a [tool.mutmut] table; this script writes its own "
            "per-module configuration, so remove that table or run mutmut directly."
        )
    only = f"{module}/*" if (REPO / module).is_dir() else module
    config = (
        "\n[tool.mutmut]\n"
        'source_paths = ["indiflow"]\n'
        f"only_mutate = [{json.dumps(only)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(tests))}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        # torch is not fork-safe once pytest has run in the parent process.
        'process_isolation = "forkserver"\n'
        "use_git_change_detection = false\n"
    )
    pyproject.write_text(text + config, "utf-8")


def _statuses(work: Path, module: str) -> dict[str, str]:
    """Mutant name -> status, read from mutmut's per-file ``.meta`` results."""
    target = work / "mutants" / module
    metas = sorted(target.rglob("*.py.meta")) if target.is_dir() else [Path(f"{target}.meta")]
    result: dict[str, str] = {}
    for meta in metas:
        codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        for name, code in codes.items():
            result[name] = _STATUS_BY_EXIT_CODE.get(code, "suspicious")
    return result


def _judge_in_process(work: Path, module: str, tests: tuple[str, ...], env: dict[str, str]) -> None:
    """Generate and judge the mutants in one interpreter; store the results in mutmut's .meta."""
    result_path = work / "inprocess.json"
    done = subprocess.run(
        [sys.executable, str(IN_PROCESS_JUDGE), module, str(result_path), "--", *tests],
        cwd=work,
        env=env,
        check=False,
    )
    result = json.loads(result_path.read_text("utf-8")) if result_path.exists() else {}
    if done.returncode != 0 or "statuses" not in result:
        raise RuntimeError(
            f"in-process judging failed on {module} (exit {done.returncode}): "
            f"{result.get('error', 'no result written')}"
        )
    if not result["clean_after_mutants"]:
        print(f"warning: a test of {module} fails with no mutant after the mutant loop", flush=True)
    target = work / "mutants" / module
    metas = sorted(target.rglob("*.py.meta")) if target.is_dir() else [Path(f"{target}.meta")]
    for meta in metas:
        data = json.loads(meta.read_text("utf-8"))
        codes = data["exit_code_by_key"]
        for name in codes:
            codes[name] = _EXIT_CODE_BY_STATUS[result["statuses"][name]]
        meta.write_text(json.dumps(data), "utf-8")


def _show(mutmut: str, work: Path, name: str, env: dict[str, str]) -> str:
    shown = subprocess.run(
        [mutmut, "show", name], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    return shown.stdout.strip() or shown.stderr.strip()


def run_module(
    module: str,
    out: Path,
    max_children: int,
    in_process: bool = False,
    deselect: tuple[str, ...] = (),
) -> dict[str, object]:
    """Mutate one module in a temporary copy; return its counts and write its survivors.

    ``deselect``: test ids (or id prefixes) left out of the judging, for tests too slow to run
    once per mutant; they are passed to pytest as ``--deselect`` and listed in the summary.
    """
    tests = MODULE_TESTS[module] + tuple(f"--deselect={test}" for test in deselect)
    mutmut = _mutmut_executable()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="indiflow-mutation-") as tmp:
        work = Path(tmp)
        _prepare_copy(work, module, tests)
        if in_process:
            _judge_in_process(work, module, tests, env)
        else:
            done = subprocess.run(
                [mutmut, "run", "--max-children", str(max_children)],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"mutmut failed on {module} (exit {done.returncode}):\n{done.stderr[-3000:]}"
                )
        statuses = _statuses(work, module)
        undetected = sorted(n for n, s in statuses.items() if s in _UNDETECTED)
        diffs = [_show(mutmut, work, name, env) for name in undetected]
    seconds = time.perf_counter() - start
    counts = {
        key: sum(s == key for s in statuses.values())
        for key in ("killed", "survived", "timeout", "no tests", "skipped", "suspicious")
    }
    scored = len(statuses) - counts["skipped"]
    score = (counts["killed"] + counts["timeout"]) / scored if scored else float("nan")
    stem = module.removeprefix("indiflow/").removesuffix(".py").replace("/", ".")
    survivors = out / f"{stem}.survivors.txt"
    survivors.write_text("\n\n".join(diffs) + "\n" if diffs else "", "utf-8")
    return {
        "module": module,
        "mode": "in-process" if in_process else "mutmut",
        "tests": list(tests),
        "mutants": len(statuses),
        **counts,
        "score": score,
        "seconds": round(seconds, 1),
        "survivors_file": str(
            survivors.relative_to(REPO) if survivors.is_relative_to(REPO) else survivors
        ),
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "modules",
        nargs="*",
        default=list(MODULE_TESTS),
        help=f"modules to mutate (default: all). Known: {', '.join(MODULE_TESTS)}",
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "mutation")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutant workers")
    parser.add_argument(
        "--deselect",
        action="append",
        default=[],
        metavar="TEST_ID",
        help="leave a test (id or id prefix) out of the judging; repeatable",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="judge the mutants in one interpreter (benchmarks/_mutation_inprocess.py)",
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULE_TESTS]
    if unknown:
        parser.error(f"no test mapping for {unknown}; known modules: {', '.join(MODULE_TESTS)}")
    if args.max_children < 1:
        parser.error(f"--max-children must be >= 1, got {args.max_children}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    header = (
        f"{'module':<28} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} "
        f"{'no tests':>8} {'score':>7} {'time':>7}"
    )
    print(header, flush=True)
    rows = []
    for module in args.modules:
        row = run_module(module, args.out, args.max_children, args.in_process, tuple(args.deselect))
        rows.append(row)
        print(
            f"{module:<28} {row['mutants']:>7} {row['killed']:>6} {row['survived']:>8} "
            f"{row['timeout']:>7} {row['no tests']:>8} {row['score']:>7.1%} "
            f"{row['seconds']:>6.0f}s   -> {row['survivors_file']}",
            flush=True,
        )
    summary = args.out / "summary.json"
    previous = json.loads(summary.read_text("utf-8")) if summary.exists() else {}
    previous.update({row["module"]: row for row in rows})
    summary.write_text(json.dumps(previous, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
