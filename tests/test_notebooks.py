"""The chapters read as teaching code: short cells, lines that fit the page, and a clean lint.

Measured on the notebooks themselves, without building the book:

* every code cell has at most ``MAX_CELL_LINES`` lines (folded cells too: a reader who unfolds
  one reads it as well);
* every line of code a reader sees without unfolding anything (the code cells not folded or
  removed, and the code blocks of the prose) has at most ``MAX_SHOWN_LINE`` characters. This is
  the fast stand-in for tests/test_browser.py, which measures each shown code block against
  its box in a browser;
* ruff, with the project's configuration (pyproject.toml), finds nothing in the chapters.

Cells are numbered from 1 counting markdown cells, as ruff numbers them in its messages.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, chapters, notebooks, shows_its_code

MAX_CELL_LINES = 25
MAX_SHOWN_LINE = 80
# A fence that opens a block: ``` or ~~~ and what follows, a language (bash, python) for a code
# block of the prose, a MyST directive ({math}, {code-block} python) for the others.
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(.*)$")
CODE_DIRECTIVES = ("{code-block}", "{code}", "{code-cell}", "{sourcecode}")


def cells_of(chapter: str) -> list:
    return json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"]


def fenced_code(markdown: str) -> list:
    """The lines inside the fenced code blocks of a piece of markdown (not those of other
    directives, such as maths)."""
    out, fence, is_code = [], None, False
    for line in markdown.splitlines():
        opened = FENCE.match(line)
        if fence is None and opened:
            fence, info = opened.groups()
            is_code = not info.startswith("{") or info.startswith(CODE_DIRECTIVES)
        elif fence is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            fence = None
        elif fence is not None and is_code:
            out.append(line)
    return out


def long_cells(cells: list) -> list:
    """'cell N: L lines, starting ...' for every code cell longer than MAX_CELL_LINES."""
    out = []
    for number, cell in enumerate(cells, 1):
        lines = "".join(cell["source"]).splitlines()
        if cell["cell_type"] == "code" and len(lines) > MAX_CELL_LINES:
            out.append(f"cell {number}: {len(lines)} lines, starting {lines[0][:60]!r}")
    return out


def shown_lines(cells: list) -> list:
    """(cell number, line number in the cell or its code block, line) of every line of code a
    reader sees without unfolding anything."""
    out = []
    for number, cell in enumerate(cells, 1):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and shows_its_code(cell):
            out += [(number, i, line) for i, line in enumerate(source.splitlines(), 1)]
        elif cell["cell_type"] == "markdown":
            out += [(number, i, line) for i, line in enumerate(fenced_code(source), 1)]
    return out


def long_lines(cells: list) -> list:
    return [f"cell {n}, line {i}: {len(line)} characters: {line!r}"
            for n, i, line in shown_lines(cells) if len(line) > MAX_SHOWN_LINE]


def report(per_chapter: dict) -> str:
    """Every finding under its chapter, one per line."""
    lines = []
    for chapter, found in per_chapter.items():
        if found:
            lines += [f"{chapter}: {len(found)}"] + [f"    {item}" for item in found]
    return "\n".join(lines)


def ruff_command(*paths) -> list:
    """ruff check with the project's configuration, one finding a line ('file:cell N:line:col: code message')."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    return [ruff, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), "--output-format=concise",
            *map(str, paths)]


# ----------------------------------------------------------------------------------- the book
def test_every_code_cell_is_short():
    found = report({nb: long_cells(cells_of(nb)) for nb in notebooks()})
    assert not found, f"code cells longer than {MAX_CELL_LINES} lines (fold plumbing or move it into " \
        f"alexnet_lib):\n{found}"


def warnings_shown(cells: list) -> list:
    """The Python warnings a chapter's saved outputs show (a stream to stderr naming a ...Warning)."""
    return [f"cell {i}: {line.strip()[:120]}" for i, cell in enumerate(cells, 1)
            for out in cell.get("outputs", []) if out.get("name") == "stderr"
            for line in "".join(out.get("text", "")).splitlines() if re.search(r"\w+Warning\b", line)]


def test_no_saved_output_shows_a_python_warning():
    # a warning is noise to the reader, and names a path of the machine that ran the chapter
    assert warnings_shown([{"outputs": [{"name": "stderr", "text": ["x/auto.py:21: TqdmExperimentalWarning: y"]},
                                        {"name": "stdout", "text": ["a UserWarning in prose is fine"]}]}]) \
        == ["cell 1: x/auto.py:21: TqdmExperimentalWarning: y"]
    found = report({nb: warnings_shown(cells_of(nb)) for nb in notebooks()})
    assert not found, f"saved outputs that show a Python warning (silence it at its source, run again):\n{found}"


def test_the_library_silences_tqdms_notebook_notice_for_the_whole_process():
    # tqdm.auto silences it only around its own import, which a second thread can undo; in a fresh
    # process, as in a kernel (pytest resets the filters of each test)
    code = ("import warnings, alexnet_lib.util\n"
            "from tqdm import TqdmExperimentalWarning\n"
            "warnings.warn('Using tqdm.autonotebook.tqdm in notebook mode', TqdmExperimentalWarning)\n"
            "warnings.warn('another warning still shows', UserWarning)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "another warning still shows" in proc.stderr and "TqdmExperimentalWarning" not in proc.stderr


def test_every_shown_line_of_code_fits_the_page():
    found = {nb: long_lines(cells_of(nb)) for nb in notebooks()}
    for page in chapters():
        if (ROOT / f"{page}.md").exists():
            code = fenced_code((ROOT / f"{page}.md").read_text())
            found[page] = [f"line {i} of a code block: {len(line)} characters: {line!r}"
                           for i, line in enumerate(code, 1) if len(line) > MAX_SHOWN_LINE]
    found = report(found)
    assert not found, f"shown lines of code longer than {MAX_SHOWN_LINE} characters:\n{found}"


def test_ruff_finds_nothing_in_the_chapters():
    paths = [ROOT / f"{nb}.ipynb" for nb in notebooks()]
    proc = subprocess.run(ruff_command(*paths), capture_output=True, text=True, cwd=ROOT)
    assert "No Python files found" not in proc.stderr, f"ruff did not read the chapters: {proc.stderr[-2000:]}"
    assert proc.returncode == 0, f"ruff on the chapters (cell N counts markdown cells):\n{proc.stdout}{proc.stderr}"


# ------------------------------------------------------- the checks, on notebooks made to fail them
def code(source: str, tags=()) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source.splitlines(keepends=True),
            "outputs": [], "execution_count": None}


def markdown(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source.splitlines(keepends=True)}


WIDE = "x = " + "1 + " * 19 + "1"  # 81 characters
BAD_CELLS = [
    markdown("# A chapter\n\n```bash\nmake book\n" + "#" * 81 + "\n```\n\n```{math}\n" + "a" * 90 + "\n```"),
    code("import os\n" + "y = 1\n" * 25),  # 26 lines
    code("\n".join(["z = 2"] * 25)),  # 25 lines: fits
    code("import json\n" + WIDE + "\n" + "u = 1  # " + "." * 71, tags=["nbval-check-output"]),  # 81 and 80 characters
    code(WIDE, tags=["hide-input"]),  # folded: the reader does not see it
    code(WIDE, tags=["remove-cell"]),
]


def test_the_notebook_checks_find_what_they_look_for():
    assert long_cells(BAD_CELLS) == ["cell 2: 26 lines, starting 'import os'"]
    assert long_lines(BAD_CELLS) == [f"cell 1, line 2: 81 characters: {'#' * 81!r}",
                                     f"cell 4, line 2: 81 characters: {WIDE!r}"]
    assert fenced_code("~~~~\na\n~~~\nb\n~~~~\nc\n```python\nd\n```") == ["a", "~~~", "b", "d"]
    assert fenced_code("```{math}\nm\n```\n```\nplain\n```\n```{code-block} python\nshown\n```") == ["plain", "shown"]


def test_the_lint_of_a_notebook_names_its_cells(tmp_path):
    notebook = {"cells": BAD_CELLS[:4], "metadata": {"language_info": {"name": "python"}}, "nbformat": 4,
                "nbformat_minor": 5}
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(notebook))
    proc = subprocess.run(ruff_command(path), capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"bad\.ipynb:cell 2:1:8: F401", proc.stdout), proc.stdout  # import os, unused
    assert re.search(r"bad\.ipynb:cell 4:1:8: F401", proc.stdout), proc.stdout  # import json, unused
