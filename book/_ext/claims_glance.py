"""A Sphinx extension of the book: the directive ``claims-at-a-glance``, which writes every claim's
verdict as a table, generated from the claim records (``book/results/claims/*.json``) when the book
is built, so the first page never types a verdict. The rows come from ``alexnet_lib.report``,
the same code as chapter 9's report card; the page is rebuilt whenever a record changes."""

from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


class ClaimsAtAGlance(SphinxDirective):
    def run(self):
        from alexnet_lib import claims, report

        folder = Path(self.env.srcdir) / "book" / "results" / "claims"
        for path in sorted(folder.glob("*.json")):
            self.env.note_dependency(str(path))
        text = report.glance_markdown(claims.load(folder))
        # links in the table are relative to the page that holds the directive (book/intro.md)
        container = nodes.container()
        self.state.nested_parse(StringList(text.splitlines(), source="claims-at-a-glance"), self.content_offset,
                                container)
        return container.children


def setup(app):
    app.add_directive("claims-at-a-glance", ClaimsAtAGlance)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
