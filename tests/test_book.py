"""The book builds from a clean state with warnings as errors, and shows its figures."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


EXAMPLE_URL = "https://github.com/example/alexnet-book"  # a real-looking address: github.com/<owner>/<name>


def config_with_url(folder: Path, url: str) -> Path:
    """A copy of _config.yml in ``folder`` with ``repository.url`` set to ``url``; its local
    Sphinx extensions still found (their folders are relative to the config file)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["repository"]["url"] = url
    extensions = config["sphinx"].get("local_extensions") or {}
    config["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in extensions.items()}
    path = folder / "_config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def tool_at(root: Path) -> dict:
    """tools/colab_cell.py reading its config and chapters under ``root`` instead of the project."""
    tool = colab_tool()
    tool["main"].__globals__["ROOT"] = root  # the namespace of this run of the script only
    return tool


def test_the_configured_repository_url_is_empty_or_real():
    """The committed config passes the tool's check: its comment may show a placeholder, its value may not."""
    url = colab_tool()["repository_url"]()
    assert url == "" or re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url


def test_a_placeholder_repository_url_cannot_ship(tmp_path):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    tool = tool_at(tmp_path)
    for placeholder in ("https://github.com/your-org/alexnet-reproduced", "https://github.com/<owner>/<repository>"):
        config["repository"]["url"] = placeholder
        (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
        with pytest.raises(SystemExit, match="placeholder"):
            tool["repository_url"]()
    for url in (EXAMPLE_URL, ""):
        config["repository"]["url"] = url
        (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
        assert tool["repository_url"]() == url


def test_a_repository_url_is_written_into_the_colab_cell(tmp_path, capsys):
    """With repository.url set, the tool finds a chapter's cell stale, rewrites it to clone that
    repository, leaves the other cells alone, and then finds nothing to do."""
    config_with_url(tmp_path, EXAMPLE_URL)
    (tmp_path / "book").mkdir()
    chapter = tmp_path / "book" / "01_dataset.ipynb"
    shutil.copy(ROOT / "book" / "01_dataset.ipynb", chapter)
    before = [c for c in json.loads(chapter.read_text())["cells"] if "colab-setup" not in c["metadata"].get("tags", [])]
    tool = tool_at(tmp_path)
    assert tool["main"](["--check"]) == 1 and "01_dataset.ipynb" in capsys.readouterr().out
    assert tool["main"]([]) == 0
    after = json.loads(chapter.read_text())["cells"]
    first = next(c for c in after if c["cell_type"] == "code")
    assert f"REPOSITORY = '{EXAMPLE_URL}'" in "".join(first["source"])
    assert "remove-cell" in first["metadata"]["tags"]
    assert [c for c in after if c is not first] == before
    assert tool["main"](["--check"]) == 0


@pytest.fixture(scope="module", params=["", EXAMPLE_URL], ids=["without a repository", "with a repository"])
def built_with_url(request, tmp_path_factory) -> tuple:
    """(url, HTML folder): the book built from a copy of _config.yml whose repository.url is url."""
    out = tmp_path_factory.mktemp("book_with_url")
    config = config_with_url(out, request.param)
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", str(ROOT), "--config", str(config), "--path-output", str(out), "--all",
                           "-W", "-n", "--keep-going"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return request.param, out / "_build" / "html"


def launch_links(url: str, chapter: str, config: dict) -> set:
    """The Colab and Binder addresses a chapter's launch buttons must open: the chapter's
    notebook on the repository's branch, written out by hand for GitHub and JupyterLab."""
    if not url:
        return set()
    repo = url.removeprefix("https://github.com/")
    branch, buttons = config["repository"]["branch"], config["launch_buttons"]
    notebook = "/".join(p for p in (config["repository"].get("path_to_book"), f"{chapter}.ipynb") if p)
    assert buttons["notebook_interface"] == "jupyterlab", "this test writes Binder's address for JupyterLab"
    return {f"{buttons['colab_url']}/github/{repo}/blob/{branch}/{notebook}",
            f"{buttons['binderhub_url']}/v2/gh/{repo}/{branch}?urlpath=lab/tree/{notebook}"}


def test_launch_buttons_follow_the_repository_url(built_with_url):
    """Without a repository, no launch button; with one, each chapter's buttons open that chapter
    in that repository. The repository button shows where the config asks for it, the Colab cell nowhere."""
    url, html_folder = built_with_url
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    buttons = config["launch_buttons"]
    for f in notebooks():
        html = (html_folder / f"{f}.html").read_text()
        links = set(re.findall(r'href="([^"]+)"', html))
        launch = {link for link in links if link.startswith((buttons["colab_url"], buttons["binderhub_url"]))}
        assert launch == launch_links(url, f, config), f"{f}: launch buttons {sorted(launch)}"
        repository_button = "source-repository-button" in html
        assert repository_button == (bool(url) and config["html"]["use_repository_button"]), f
        assert "REPOSITORY =" not in html, f"{f}: the Colab cell shows in the book"


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


def test_the_first_page_lists_every_claims_verdict_from_the_records(built):
    """The table on the first page is generated from book/results/claims when the book is built:
    one row per claim of the registry, its chapter a link, its verdict the record's: the record of
    the runs at the paper's scale where one exists (and the row says so), else the chapter's."""
    from alexnet_lib import claims
    from alexnet_lib.stats import VERSION

    page = (built / "book" / "intro.html").read_text()
    start = page.index('id="the-verdicts-at-a-glance"')
    table = page[start:page.index("</table>", start)]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    assert len(rows) == len(claims.REGISTRY)
    records = claims.load()
    for row, (key, spec) in zip(rows, claims.REGISTRY.items()):
        text = re.sub(r"<[^>]+>", "", row).replace("\u2019", "'")  # the page's typographic apostrophes
        assert spec.claim in text and f'href="{spec.chapter}.html"' in row, key
        at_scale = [r for r in records.values() if r.source == "paper scale" and r.measures == key]
        record = at_scale[0] if at_scale else records.get(key)
        assert ("paper-scale runs" in text) == bool(at_scale), key
        if record is not None and record.procedure == VERSION:
            assert record.verdict in text, key
