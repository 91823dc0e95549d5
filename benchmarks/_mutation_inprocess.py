"""In-process judging of mutmut 3 mutants: one interpreter per module, no per-mutant start-up.

Run by ``benchmarks/mutation.py --in-process`` as::

    python benchmarks/_mutation_inprocess.py MODULE RESULT_JSON TEST_FILE... [--timeout-factor F]

with the working directory set to a temporary copy prepared by ``mutation._prepare_copy`` (its
``pyproject.toml`` carries the ``[tool.mutmut]`` table). The steps, all in this one process:

1. mutmut's own generation step (``mutmut run`` up to "Generating mutants": copy the sources
   to ``mutants/``, rewrite the mutated module into trampolines, write its ``.meta``), then
   ``mutants/`` first on ``sys.path``, so ``indiflow`` is imported from the mutant tree;
2. pytest collects the test files once (working directory ``mutants/``, as mutmut runs them);
3. every collected test must pass with no mutant active (``MUTANT_UNDER_TEST = ""``);
4. one pass in mutmut's ``"stats"`` mode records which mutated functions each test reaches,
   and one pass in its ``"fail"`` mode checks that the trampolines are live (some test fails);
5. per mutant, ``MUTANT_UNDER_TEST`` names it and the tests that reach its function run through
   pytest's own runner (``runtestprotocol``, so fixtures such as ``tmp_path`` and parametrize
   work; every fixture is torn down after each test, so no value computed under one mutant is
   reused under another) until the first failure: "killed"; all pass: "survived"; no test
   reaches the function: "no tests"; past ``max(timeout_min, timeout_factor x clean time of
   those tests)`` seconds of wall clock (``SIGALRM``): "timeout". The last test that killed a
   mutant of the same function runs first, then the tests from fastest to slowest;
6. the clean run is repeated at the end, to show that no mutant left state behind.

The statuses so far are rewritten to ``RESULT.partial.json`` at every progress line.

The result is written as JSON: ``{"statuses": {mutant: status}, "killers": {mutant: test id},
...}``; ``mutation.py`` stores the statuses as mutmut exit codes in the ``.meta`` file, so
``mutmut show`` and the normal reporting work unchanged.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol


class _MutantTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so that ``pytest.raises(Exception)`` cannot eat it."""


def generate_mutants() -> None:
    """mutmut 3's generation step, as ``mutmut run`` does it before testing (cwd = the copy)."""
    from mutmut.__main__ import (
        copy_also_copy_files,
        copy_src_dir,
        create_mutants,
        set_mutant_under_test,
        setup_source_paths,
        store_lines_covered_by_tests,
    )

    set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    with redirect_stdout(io.StringIO()):  # mutmut prints every file it copies or mutates
        copy_src_dir()
        copy_also_copy_files()
        setup_source_paths()  # puts mutants/ first on sys.path
        store_lines_covered_by_tests()
        create_mutants(1)
    set_mutant_under_test("")


def mutant_names(module: str) -> list[str]:
    """Names of the mutants of ``module`` (a file or a package directory), in file order."""
    target = Path("mutants") / module
    metas = sorted(target.rglob("*.py.meta")) if target.is_dir() else [Path(f"{target}.meta")]
    names: list[str] = []
    for meta in metas:
        names += json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
    return names


class Judge:
    """pytest plugin that replaces the test loop by the mutant loop described in the module."""

    def __init__(
        self, names: Sequence[str], timeout_factor: float, timeout_min: float, partial: Path
    ) -> None:
        self.names = list(names)
        self.partial = partial  # statuses so far, rewritten at every progress line
        self.timeout_factor = timeout_factor
        self.timeout_min = timeout_min
        self.result: dict[str, Any] = {}
        self._expired = False

    # -- pytest hook -------------------------------------------------------------------------
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        try:
            self.result = self._judge_all(session)
        except Exception as exc:  # reported to the caller, which raises it
            self.result = {"error": f"{type(exc).__name__}: {exc}"}
        return True

    # -- helpers -----------------------------------------------------------------------------
    @contextmanager
    def _uncaptured(self, session: pytest.Session) -> Iterator[None]:
        capman = session.config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled():
            yield

    def _log(self, session: pytest.Session, text: str) -> None:
        with self._uncaptured(session):
            print(text, flush=True)

    def _fails(self, item: pytest.Item) -> bool:
        reports = runtestprotocol(item, nextitem=None, log=False)
        if self._expired:
            raise _MutantTimeout
        return any(report.failed for report in reports)

    def _clean_durations(self, items: list[pytest.Item]) -> dict[str, float]:
        """Run every test with no mutant active; each must pass."""
        from mutmut.mutation.trampoline import set_mutant_under_test

        set_mutant_under_test("")
        durations = {}
        for item in items:
            start = time.perf_counter()
            if self._fails(item):
                raise RuntimeError(f"{item.nodeid} fails with no mutant active")
            durations[item.nodeid] = time.perf_counter() - start
        return durations

    def _reached_functions(self, items: list[pytest.Item]) -> dict[str, set[str]]:
        """Mutated functions (mutmut's mangled names) each test reaches, from mutmut's stats."""
        from mutmut.mutation.trampoline import set_mutant_under_test
        from mutmut.state import state

        reached = {}
        set_mutant_under_test("stats")
        try:
            for item in items:
                state()._stats.clear()
                if self._fails(item):
                    raise RuntimeError(f"{item.nodeid} fails in mutmut's stats mode")
                reached[item.nodeid] = set(state()._stats)
        finally:
            set_mutant_under_test("")
        return reached

    def _trampolines_live(self, items: list[pytest.Item]) -> bool:
        from mutmut.mutation.trampoline import set_mutant_under_test

        set_mutant_under_test("fail")
        try:
            return any(self._fails(item) for item in items)
        finally:
            set_mutant_under_test("")

    def _on_alarm(self, signum: int, frame: object) -> None:
        self._expired = True
        raise _MutantTimeout

    def _judge_one(self, name: str, items: list[pytest.Item], limit: float) -> tuple[str, str]:
        """Status of one mutant and the id of the test that killed it ("" if none)."""
        from mutmut.mutation.trampoline import set_mutant_under_test

        self._expired = False
        set_mutant_under_test(name)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            for item in items:
                if self._fails(item):
                    return "killed", item.nodeid
            return "survived", ""
        except _MutantTimeout:
            return "timeout", ""
        except Exception:
            # SIGALRM inside the interpreter's own machinery (the compiler, a gc callback) can
            # surface as another exception, e.g. SystemError; it is still the timeout.
            if self._expired:
                return "timeout", ""
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            set_mutant_under_test("")

    def _judge_all(self, session: pytest.Session) -> dict[str, Any]:
        from mutmut.utils.format_utils import mangled_name_from_mutant_name

        import indiflow

        mutants_dir = Path.cwd().resolve()
        if not Path(indiflow.__file__).resolve().is_relative_to(mutants_dir):
            raise RuntimeError(f"indiflow was imported from {indiflow.__file__}, not the mutants")
        items = list(session.items)
        if not items or session.testsfailed:
            raise RuntimeError(f"collection failed ({len(items)} tests collected)")
        start = time.perf_counter()
        durations = self._clean_durations(items)
        clean_seconds = time.perf_counter() - start
        self._log(session, f"    {len(items)} tests pass with no mutant ({clean_seconds:.1f} s)")
        reached = self._reached_functions(items)
        if not self._trampolines_live(items):
            raise RuntimeError("no test fails in mutmut's 'fail' mode: the trampolines are dead")
        signal.signal(signal.SIGALRM, self._on_alarm)
        statuses: dict[str, str] = {}
        killers: dict[str, str] = {}
        last_killer: dict[str, str] = {}
        for index, name in enumerate(self.names, 1):
            function = mangled_name_from_mutant_name(name)
            covering = [item for item in items if function in reached[item.nodeid]]
            covering.sort(
                key=lambda it: (it.nodeid != last_killer.get(function), durations[it.nodeid])
            )
            if not covering:
                statuses[name] = "no tests"
            else:
                limit = max(
                    self.timeout_min,
                    self.timeout_factor * sum(durations[it.nodeid] for it in covering),
                )
                statuses[name], killer = self._judge_one(name, covering, limit)
                if killer:
                    killers[name] = last_killer[function] = killer
            if index % 25 == 0 or index == len(self.names):
                counts = {s: list(statuses.values()).count(s) for s in set(statuses.values())}
                elapsed = time.perf_counter() - start
                self._log(session, f"    {index}/{len(self.names)} {counts} {elapsed:.0f} s")
                so_far = {"statuses": statuses, "killers": killers}
                self.partial.write_text(json.dumps(so_far, indent=1) + "\n", "utf-8")
        final_clean = True
        try:
            self._clean_durations(items)
        except RuntimeError:
            final_clean = False
        return {
            "statuses": statuses,
            "killers": killers,
            "tests": len(items),
            "clean_seconds": round(clean_seconds, 2),
            "clean_after_mutants": final_clean,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="module file or package directory, e.g. indiflow/grid.py")
    parser.add_argument("result", type=Path, help="where to write the JSON result")
    parser.add_argument("tests", nargs="+", help="test files, relative to the repository root")
    parser.add_argument("--timeout-factor", type=float, default=10.0)
    parser.add_argument("--timeout-min", type=float, default=30.0)
    args = parser.parse_args(argv)
    result_path = args.result.resolve()
    generate_mutants()
    partial = result_path.with_suffix(".partial.json")
    judge = Judge(mutant_names(args.module), args.timeout_factor, args.timeout_min, partial)
    os.chdir("mutants")
    pytest_args = ["--rootdir=.", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args.tests]
    code = pytest.main(pytest_args, plugins=[judge])
    if not judge.result:
        judge.result = {"error": f"pytest stopped before the mutant loop (exit code {code})"}
    result_path.write_text(json.dumps(judge.result, indent=1) + "\n", "utf-8")
    sys.exit(1 if "error" in judge.result else 0)


if __name__ == "__main__":
    main()
