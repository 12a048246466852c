"""Every internal link and anchor of the built book leads somewhere, offline.

Read from the built HTML files with the standard library's parser: every ``href`` and ``src``
of every page that points inside the book must name a file that exists, and its ``#anchor``,
if any, an ``id`` (or ``<a name>``) on the page it points to. Links off the book (http, mailto,
...) are left out: checking them needs the network. The checker is tested on a small tree made
to break it.
"""

import posixpath
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

LINKING_ATTRIBUTES = {"href", "src"}
# Fragments a browser resolves without an element of that id.
IMPLICIT_ANCHORS = {"", "top"}


class PageLinks(HTMLParser):
    """The ids a page defines and the (tag, attribute, value) of every link it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in LINKING_ATTRIBUTES:
                self.links.append((tag, name, value))


def parse(path: Path) -> PageLinks:
    parser = PageLinks()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def is_internal(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc  # no http:, mailto:, data:, javascript:, //host


def broken_links(html_root: Path) -> dict:
    """{page: [what is wrong with each broken link]} over every HTML page under ``html_root``
    (MathJax's and the theme's own files under _static are left out, but links into them count)."""
    html_root = Path(html_root)
    pages = {p.relative_to(html_root).as_posix(): p for p in sorted(html_root.rglob("*.html"))
             if not p.relative_to(html_root).parts[0].startswith(("_static", "_sources"))}
    parsed, ids_of = {}, {}
    for name, path in pages.items():
        parsed[name] = parse(path)
        ids_of[name] = parsed[name].ids
    found = {}
    for name, page in parsed.items():
        problems = []
        for tag, attribute, url in page.links:
            if not is_internal(url):
                continue
            parts = urlsplit(url)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), unquote(parts.path))) \
                if parts.path else name
            where = f"<{tag} {attribute}={url!r}>"
            if target.startswith("../") or target == "..":
                problems.append(f"{where} points outside the book")
                continue
            file = html_root / target
            if file.is_dir():
                target, file = posixpath.join(target, "index.html"), file / "index.html"
            if not file.is_file():
                problems.append(f"{where}: no file {target}")
            elif parts.fragment not in IMPLICIT_ANCHORS and target.endswith(".html"):
                ids = ids_of[target] if target in ids_of else parse(file).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where}: {target} has no anchor #{parts.fragment}")
        if problems:
            found[name] = problems
    return found


def test_every_internal_link_and_anchor_of_the_book_resolves(built):
    pages = [p for p in built.rglob("*.html") if "_static" not in p.parts]
    assert len(pages) >= 14, f"only {len(pages)} pages built"  # every chapter, intro, glossary, bibliography
    broken = broken_links(built)
    report = "\n".join(f"{page}:\n" + "\n".join(f"    {p}" for p in problems) for page, problems in broken.items())
    assert not broken, "broken internal links:\n" + report


def test_the_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "style.css").write_text("")
    (tmp_path / "index.html").write_text('<h1 id="top-title">x</h1><a href="book/a.html#s1">ok</a>'
                                         '<a href="book/a.html#nowhere">bad anchor</a><a href="#top-title">ok</a>'
                                         '<a href="https://example.org/missing">external</a><a href="mailto:x@y">m</a>')
    (tmp_path / "book" / "a.html").write_text(
        '<link rel="stylesheet" href="../_static/style.css?v=1"><section id="s1"></section>'
        '<img src="../_images/gone.png"><a href="b.html">missing page</a><a href="../index.html#">ok</a>'
        '<a href="#s%31">ok, percent-encoded</a><a href="../../outside.html">outside</a><a name="old"></a>'
        '<a href="#old">ok</a><a href="#">ok</a><script src="../_static/missing.js"></script>')
    broken = broken_links(tmp_path)
    assert broken["index.html"] == ["<a href='book/a.html#nowhere'>: book/a.html has no anchor #nowhere"]
    assert broken["book/a.html"] == [
        "<img src='../_images/gone.png'>: no file _images/gone.png",
        "<a href='b.html'>: no file book/b.html",
        "<a href='../../outside.html'> points outside the book",
        "<script src='../_static/missing.js'>: no file _static/missing.js",
    ]


@pytest.mark.parametrize("url, internal", [("book/a.html", True), ("#x", True), ("https://a.b/c", False),
                                           ("//cdn.example/x.js", False), ("mailto:a@b", False),
                                           ("data:image/png;base64,AA", False), ("javascript:void(0)", False)])
def test_what_counts_as_internal(url, internal):
    assert is_internal(url) == internal
