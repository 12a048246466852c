"""The first code cell of every chapter: on Colab, it installs the book's library from its
repository and lets the chapters download their data; anywhere else it does nothing. It is
removed from the rendered book (tag ``remove-cell``).

The repository's address is set in one place, ``repository.url`` in ``_config.yml``; this
script writes it into every chapter:

    python tools/colab_cell.py           # rewrite the cell in every chapter
    python tools/colab_cell.py --check   # exit 1 if a chapter's cell is not what it would write
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TAG = "colab-setup"
PLACEHOLDERS = ("your-org", "example.com", "<", "TODO")

TEMPLATE = '''# Only on Colab (this cell is hidden in the rendered book, and does nothing elsewhere): get the
# book, install its library, and let the chapters download the data they need.
import os
import subprocess
import sys

if "google.colab" in sys.modules and not os.path.isdir("/content/alexnet-reproduced"):
    REPOSITORY = {url!r}  # repository.url in _config.yml, written by tools/colab_cell.py
    if not REPOSITORY:
        raise RuntimeError("this copy of the book does not name its repository (repository.url in _config.yml), "
                           "so Colab cannot fetch its library; open the chapter from the published book")
    subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, "/content/alexnet-reproduced"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/alexnet-reproduced"], check=True)
if "google.colab" in sys.modules:
    sys.path.insert(0, "/content/alexnet-reproduced")
    os.chdir("/content/alexnet-reproduced/book")
    os.environ.setdefault("ALEXNET_DOWNLOAD", "1")'''


def repository_url() -> str:
    """``repository.url`` of _config.yml ('' when unset); a placeholder is an error."""
    url = (yaml.safe_load((ROOT / "_config.yml").read_text()).get("repository") or {}).get("url") or ""
    if any(p in url for p in PLACEHOLDERS):
        raise SystemExit(f"_config.yml's repository.url is a placeholder ({url!r}): "
                         "set the real address or leave it empty")
    return url.strip()


def cell(url: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": "colab-setup",
            "metadata": {"tags": ["remove-cell", TAG]}, "outputs": [],
            "source": TEMPLATE.format(url=url).splitlines(keepends=True)}


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def same_cell(a: dict, b: dict) -> bool:
    """The same Colab cell: same source and tags (a run sets its execution count; that is not a change)."""
    return ("".join(a.get("source", [])) == "".join(b.get("source", []))
            and a.get("metadata", {}).get("tags") == b.get("metadata", {}).get("tags"))


def with_cell(notebook: dict, url: str) -> dict:
    """The notebook with its Colab cell (re)written as the first code cell."""
    first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    if same_cell(first, cell(url)):
        return notebook
    cells = [c for c in notebook["cells"] if TAG not in c.get("metadata", {}).get("tags", [])]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    return {**notebook, "cells": cells[:first_code] + [cell(url)] + cells[first_code:]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 where a chapter differs")
    args = p.parse_args(argv)
    url, stale = repository_url(), []
    for path in chapters():
        notebook = json.loads(path.read_text())
        wanted = with_cell(notebook, url)
        if wanted != notebook:
            stale.append(path.name)
            if not args.check:
                path.write_text(json.dumps(wanted, indent=1, ensure_ascii=False) + "\n")
    if args.check and stale:
        print(f"the Colab cell is missing or stale in {', '.join(stale)}: run python tools/colab_cell.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
