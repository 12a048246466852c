"""The publishing workflow (.github/workflows/book.yml) builds what `make book` builds, from the
committed outputs, with the tested versions, and deploys the built folder. Read, not run: it
runs on the repository's host, and the test suite does not depend on it."""

import yaml

from .helpers import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def steps() -> list:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_the_workflow_builds_the_book_as_make_book_does_and_deploys_it():
    runs = "\n".join(step.get("run", "") for step in steps())
    assert "-c constraints.txt" in runs and "['optional-dependencies']['book']" in runs
    assert "jupyter-book build . --all -W -n --keep-going" in runs
    make_book = (ROOT / "Makefile").read_text()
    assert "jupyter-book build . --all -W -n --keep-going" in make_book, "the Makefile's build changed: follow it"
    uploads = [s for s in steps() if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in steps())


def test_the_published_book_is_built_without_executing_a_chapter():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]  # maths that renders offline
