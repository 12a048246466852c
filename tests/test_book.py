"""The book builds from a clean state with warnings as errors, and shows its figures."""

import json
import re

import yaml

from .conftest import ROOT  # the `built` fixture (the book, built once) lives in conftest.py


def chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def notebooks():
    return [f for f in chapters() if (ROOT / f"{f}.ipynb").exists()]


def test_every_toc_entry_exists():
    for f in chapters():
        assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f


def test_book_builds_and_every_chapter_shows_its_figures(built):
    for f in notebooks():
        html = (built / f"{f}.html").read_text()
        cells = json.loads((ROOT / f"{f}.ipynb").read_text())["cells"]
        figures = sum(
            1 for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and {"image/png", "image/jpeg"} & set(o.get("data", {}))
        )
        assert figures > 0, f"{f} has no figure in its committed outputs"
        shown = len(re.findall(r'<img[^>]+src="[^"]*_images/', html))
        assert shown >= figures, f"{f}: {figures} figures committed, {shown} shown in the HTML"


def test_no_committed_output_is_an_error():
    for f in notebooks():
        cells = json.loads((ROOT / f"{f}.ipynb").read_text())["cells"]
        for c in cells:
            for o in c.get("outputs", []):
                assert o.get("output_type") != "error", f"{f}: a committed output is an error: {o.get('ename')}"
                assert "Traceback" not in "".join(o.get("text", "")), f"{f}: a committed stream shows a traceback"
