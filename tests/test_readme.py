"""Every Python block in README.md runs as written and prints the figures its prose quotes.

The checks themselves live in ``markdown_examples`` (shared with ``test_docs.py``); the last
tests here show that they can fail.
"""

import re
from pathlib import Path

import pytest
from markdown_examples import Example, examples, quote_problems, run, style_problems

from indiflow.training import shipped_weights

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = examples("README.md", README.read_text())


def test_readme_has_examples():
    assert len(EXAMPLES) >= 1
    assert any(e.output is not None for e in EXAMPLES)  # some figures are quoted and checked


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_readme_example_prints_what_the_readme_quotes(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    printed = run(example)
    assert printed.strip(), "every example prints what it shows"
    problems = quote_problems(example, printed)
    assert not problems, "\n".join(problems)


def test_readme_states_no_unchecked_values_next_to_examples():
    problems = [p for e in EXAMPLES for p in style_problems(e)]
    assert not problems, "\n".join(problems)


def test_quick_start_commands_are_the_ones_ci_runs():
    quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", quick_start, flags=re.DOTALL)
    assert len(commands) == 2
    demo = "python benchmarks/perception_distortion.py --checkpoint sr4_photos_cpu --out runs/demo"
    assert demo in commands[0] and '".[images]"' in commands[0]
    assert commands[1].endswith('pip install -e ".[dev,images]" && python -m pytest')
    assert "sr4_photos_cpu" in shipped_weights()  # the demo's weights ship with the package
    ci = (README.parent / ".ci" / "run").read_text()
    assert re.search(r"pip install (-q )?torch==2\.13\.0", ci)
    assert re.search(r'pip install (-q )?-e "\.\[dev,images\]"', ci)
    assert "\npython -m pytest" in ci


# --- the checks can fail ----------------------------------------------------------------------


def _example(code: str, after: str) -> Example:
    return examples("page.md", f"```python\n{code}```\n\n{after}\n\nNext paragraph.\n")[0]


PRINTED = "per-sample 59.9140625 global 86.0\ndopri5: Stats(nfe=177) t = 0.0002711885\nTrue\n"


@pytest.mark.parametrize(
    "output",
    [
        "Output: per-sample 59.9 vs global 86.0; dopri5 177 calls at t ≈ 2.7e-4; `True`.",
        "Output: 60 vs 86; 177; 2.71e-4.",
        "Output: `nfe=177`, `True`",
    ],
)
def test_quotes_that_the_output_bears_out_pass(output):
    assert quote_problems(_example("print(1)\n", output), PRINTED) == []


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("Output: dopri5 178 calls.", r"Output quotes 178, but no number printed"),
        ("Output: per-sample 59.92.", r"Output quotes 59.92,"),  # more digits than are true
        ("Output: t ≈ 2.8e-4.", r"Output quotes 2.8e-4,"),
        ("Output: 177 calls, per-sample 59.9.", r"Output quotes 59.9,"),  # out of order
        ("Output: `False`", r"Output quotes `False`, which it does not print"),
    ],
)
def test_quotes_that_the_output_contradicts_are_reported(output, problem):
    problems = quote_problems(_example("print(1)\n", output), PRINTED)
    assert len(problems) == 1 and re.search(problem, problems[0]), problems


def test_example_parsing_finds_the_paragraph_after_each_block():
    page = "```python\na = 1\n```\nOutput: 1 and\n2.\n\nNot this.\n```python\nb\n```\n## Head\n"
    first, second = examples("p.md", page)
    assert (first.code, first.output, first.name) == (
        "a = 1\n",
        "Output: 1 and 2.",
        "p.md example 0",
    )
    assert (second.after, second.output) == ("", None)
    assert quote_problems(second, "anything") == []
    assert run(_example("print('hi', 2 + 3)\n", "")) == "hi 5\n"


def test_names_with_digits_are_not_figures():
    example = _example("print(7)\n", "Output: rk4, dopri5, float64, x_1 and (t sigma)^4 give 7.")
    assert quote_problems(example, "7") == []


def test_values_in_comments_and_unmarked_output_paragraphs_are_reported():
    assert style_problems(_example("x = 2\nprint(x)  # 2.0\n", "Output: 2")) != []
    assert style_problems(_example("print(2)  # the answer\n", "Output: 2")) == []
    unmarked = style_problems(_example("print(2)\n", "(It prints 2 on one core.)"))
    assert len(unmarked) == 1 and "start it with 'Output:'" in unmarked[0]
    assert style_problems(_example("print(2)\n", "More prose about something else.")) == []
