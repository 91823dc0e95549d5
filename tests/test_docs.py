"""Every Python block of every page in docs/ runs as written, like the README's, and prints the
figures its ``Output:`` paragraph quotes (the convention is in ``markdown_examples``)."""

from pathlib import Path

import pytest
from markdown_examples import examples, quote_problems, run, style_problems

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = [
    example
    for page in sorted(DOCS.glob("*.md"))
    for example in examples(f"docs/{page.name}", page.read_text())
]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_docs_block_runs(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    printed = run(example)
    assert printed.strip(), "every example prints what it shows"
    problems = quote_problems(example, printed)
    assert not problems, "\n".join(problems)


def test_docs_state_no_unchecked_values_next_to_examples():
    problems = [p for e in EXAMPLES for p in style_problems(e)]
    assert not problems, "\n".join(problems)
