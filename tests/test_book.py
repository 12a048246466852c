"""The book builds from a clean state with warnings as errors, and shows its figures."""

import json
import re

import pytest

from .helpers import ROOT, chapters, notebooks  # the `built` fixture (the book, built once) lives in conftest.py


def test_every_toc_entry_exists():
    for f in chapters():
        assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f


def test_book_builds_and_every_chapter_shows_its_figures(built):
    for f in notebooks():
        html = (built / f"{f}.html").read_text()
        cells = json.loads((ROOT / f"{f}.ipynb").read_text())["cells"]
        figures = sum(
            1 for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result")
            and {"image/png", "image/jpeg"} & set(o.get("data", {}))
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


def committed_text(f):
    """Every text output of a committed notebook, in order."""
    cells = json.loads((ROOT / f"{f}.ipynb").read_text())["cells"]
    out = []
    for c in cells:
        for o in c.get("outputs", []):
            text = o.get("text", "") or o.get("data", {}).get("text/plain", "")
            out.append("".join(text))
    return out


def test_every_chapter_is_committed_from_a_whole_quick_or_full_run():
    for f in notebooks():
        texts = committed_text(f)
        if not texts:
            continue  # a notebook without code outputs (none in the book today)
        header = next((t for t in texts if "mode: " in t), "")
        mode = re.search(r"mode: (\w+)", header)
        assert mode and mode.group(1) in ("quick", "full"), f"{f}: committed outputs are not from quick or full mode"
        assert re.search(r"wall time: [\d.]+ s in (quick|full) mode", texts[-1]), \
            f"{f}: the run did not reach its last cell"


def test_no_committed_output_shows_a_path_of_the_machine_it_ran_on():
    pattern = re.compile(r"(?<![\w.])/(root|home|work|tmp|Users|private)/|PosixPath\('/")
    for f in notebooks():
        for text in committed_text(f):
            assert not pattern.search(text), f"{f}: an output shows an absolute path: {pattern.search(text).group(0)!r}"


def colab_tool():
    import runpy

    return runpy.run_path(str(ROOT / "tools" / "colab_cell.py"))


def test_every_chapter_starts_with_the_colab_cell_of_the_configured_repository():
    tool = colab_tool()
    url = tool["repository_url"]()
    for path in tool["chapters"]():
        cells = json.loads(path.read_text())["cells"]
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert tool["same_cell"](first_code, tool["cell"](url)), f"{path.name}: run python tools/colab_cell.py"
        assert "remove-cell" in first_code["metadata"]["tags"]  # readers of the book never see it


def test_a_placeholder_repository_url_cannot_ship(tmp_path, monkeypatch):
    tool = colab_tool()
    config = (ROOT / "_config.yml").read_text()
    assert tool["repository_url"]() == "" or not any(p in config for p in tool["PLACEHOLDERS"])
    fake = tmp_path / "_config.yml"
    fake.write_text("repository:\n  url: https://github.com/your-org/alexnet-reproduced\n")
    repository_url = tool["repository_url"]
    monkeypatch.setitem(repository_url.__globals__, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="placeholder"):
        repository_url()


def test_launch_buttons_appear_only_with_a_repository_url(built):
    url = colab_tool()["repository_url"]()
    for f in notebooks():
        html = (built / f"{f}.html").read_text()
        has_colab = "colab.research.google.com" in html
        assert has_colab == bool(url), f"{f}: launch buttons {'missing' if url else 'shown without a repository'}"
        if url:
            assert url.split("github.com/")[-1] in html


def test_the_book_cites_sources_its_reader_has():
    """No chapter, library docstring or README points to a file that only the authors' machines
    hold (the notes the book was written from); sources are the papers, cited by key."""
    texts = {nb: "".join("".join(c["source"]) for c in json.loads((ROOT / f"{nb}.ipynb").read_text())["cells"])
             for nb in notebooks()}
    texts.update({str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "alexnet_lib").glob("*.py")})
    texts["README.md"] = (ROOT / "README.md").read_text()
    offenders = sorted(name for name, text in texts.items() if "REFERENCE.md" in text)
    assert not offenders, f"these cite files a reader does not have: {offenders}"


def test_no_committed_output_is_a_widget():
    """The committed outputs are static (figures, text, tables): a widget's state (a progress
    bar of a run made without TQDM_DISABLE, a slider) would render as nothing in the book."""
    for nb in notebooks():
        blob = json.loads((ROOT / f"{nb}.ipynb").read_text())
        assert "widgets" not in blob["metadata"], f"{nb}: the notebook stores widget state"
        views = [c["source"][:1] for c in blob["cells"] if c["cell_type"] == "code"
                 for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert not views, f"{nb}: widget outputs in cells starting {views[:3]} (re-run with TQDM_DISABLE=1)"
