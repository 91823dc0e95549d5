"""Run the Python examples of a Markdown page and check the figures its prose quotes from them.

Shared by ``tests/test_readme.py`` (README.md) and ``tests/test_docs.py`` (docs/*.md).

The convention for pages: a paragraph that starts with ``Output:`` directly after a
```` ```python ```` block quotes what that block prints, and is checked against it:

* every number in it, outside code spans, must equal a number the block printed, rounded to
  the precision it is written with (``59.9`` matches ``59.9140625``, ``2.7e-4`` matches
  ``0.000271``, ``177`` matches only 176.5 to 177.5), and the numbers must come in the order
  they were printed;
* every code span in it (```True```) must appear verbatim in what the block printed.

Numbers that are not printed are not quoted next to an example: a comment in a block never
states a value (``# 10.0``), and a paragraph right after a block that speaks of what it prints
or outputs must be its ``Output:`` paragraph. Digits glued to letters (``rk4``, ``float64``,
``x_1``) are names, not figures.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass

_BLOCK = re.compile(r"```python\n(.*?)```", flags=re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`]+)`")
# A decimal or scientific number not glued to a word (so "rk4" and "float64" are skipped); a
# sentence's full stop after it is allowed, a decimal point followed by a digit is not.
_NUMBER = re.compile(r"(?<![\w.^])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w|\.\d)")
_VALUE_COMMENT = re.compile(r"#\s*[-+]?\d[\d.eE+-]*\s*$")
_MENTIONS_OUTPUT = re.compile(r"\b(prints?|printed|outputs?)\b", flags=re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    """One ```` ```python ```` block of a page and the paragraph right after it.

    Attributes:
        page: the page's name, for messages.
        index: the block's position among the page's Python blocks (0-based).
        code: the block's source.
        after: the first paragraph after the block (``""`` when a heading, another code block
            or the end of the page comes first).
    """

    page: str
    index: int
    code: str
    after: str

    @property
    def name(self) -> str:
        return f"{self.page} example {self.index}"

    @property
    def output(self) -> str | None:
        """The ``Output:`` paragraph quoting this example's printed figures, if any."""
        return self.after if self.after.startswith("Output") else None


def examples(page: str, text: str) -> list[Example]:
    """Every Python block of the Markdown ``text`` with the paragraph that follows it."""
    found = []
    for index, match in enumerate(_BLOCK.finditer(text)):
        rest = text[match.end() :].lstrip("\n")
        paragraph = re.split(r"\n\s*\n", rest, maxsplit=1)[0]
        if paragraph.startswith(("#", "```")):
            paragraph = ""
        found.append(Example(page, index, match.group(1), " ".join(paragraph.split())))
    return found


def run(example: Example) -> str:
    """Execute the example as a script of its own and return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = compile(example.code, example.name, "exec")
        exec(code, {"__name__": "__example__"})
    return printed.getvalue()


def _matches(quoted: str, printed: float) -> bool:
    """``printed`` rounded to the precision ``quoted`` is written with equals ``quoted``."""
    mantissa, _, exponent = quoted.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    spec = f".{decimals}e" if exponent else f".{decimals}f"
    return float(format(printed, spec)) == float(quoted)


def quote_problems(example: Example, printed: str) -> list[str]:
    """Figures of the example's ``Output:`` paragraph that its printed text does not bear out."""
    if example.output is None:
        return []
    problems = []
    for span in _CODE_SPAN.findall(example.output):
        if span not in printed:
            problems.append(f"{example.name}: Output quotes `{span}`, which it does not print")
    values = [float(v) for v in _NUMBER.findall(printed)]
    position = 0
    for quoted in _NUMBER.findall(_CODE_SPAN.sub(" ", example.output)):
        hit = next((i for i in range(position, len(values)) if _matches(quoted, values[i])), None)
        if hit is None:
            problems.append(
                f"{example.name}: Output quotes {quoted}, but no number printed after the "
                f"previous quoted one rounds to it; printed numbers from there on: "
                f"{values[position : position + 12]}"
            )
        else:
            position = hit + 1
    return problems


def style_problems(example: Example) -> list[str]:
    """Values stated where nothing checks them: comments like ``# 10.0``, and a paragraph
    after the block that speaks of its output without being its ``Output:`` paragraph."""
    problems = [
        f"{example.name}: the comment in {line.strip()!r} states a value; print it and quote it "
        "in an 'Output:' paragraph after the block, where the tests check it"
        for line in example.code.splitlines()
        if _VALUE_COMMENT.search(line)
    ]
    if example.output is None and _MENTIONS_OUTPUT.search(example.after):
        problems.append(
            f"{example.name}: the paragraph after the block speaks of its output; start it with "
            f"'Output:' so that its figures are checked: {example.after[:80]!r}"
        )
    return problems
