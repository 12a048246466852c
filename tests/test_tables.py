"""alexnet_lib.tables: rows as an HTML table that fits the page, and as aligned text. The HTML is
read back with the standard library's parser, as a browser would see its cells. (That the table
fits a narrow box where a plain one does not is checked in a browser: tests/test_browser.py.)"""

from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from alexnet_lib.tables import html_table


class Cells(HTMLParser):
    """The table's caption, and its rows as lists of (tag, text, style)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows, self.caption, self.tables, self._cell = [], None, 0, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables += 1
            self.table_style = attrs.get("style", "")
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = [tag, "", attrs.get("style", "")]
        elif tag == "caption":
            self.caption = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        elif self.caption == "":
            self.caption = data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(tuple(self._cell))
            self._cell = None


def read(table) -> Cells:
    cells = Cells()
    cells.feed(table._repr_html_())
    return cells


def test_rows_become_cells_in_order_with_numbers_right_aligned():
    table = html_table([("ReLU", 0.25, 12000), ("tanh", 0.1234567, 5)], ["activation", "error", "steps"],
                       caption="Figure 1, reproduced")
    cells = read(table)
    assert cells.tables == 1 and cells.caption == "Figure 1, reproduced"
    assert [[c[1] for c in row] for row in cells.rows] == [
        ["activation", "error", "steps"], ["ReLU", "0.25", "12,000"], ["tanh", "0.1235", "5"]]
    assert [c[0] for c in cells.rows[0]] == ["th"] * 3 and [c[0] for c in cells.rows[1]] == ["td"] * 3
    aligns = [c[2].rsplit("text-align: ", 1)[1] for c in cells.rows[1]]
    assert aligns == ["left", "right", "right"]
    assert "width: 100%" in cells.table_style and all("overflow-wrap: anywhere" in c[2] for c in cells.rows[1])


def test_formats_dicts_none_and_escaping():
    rows = [{"net": "<b>AlexNet</b> & co", "top-1": 0.4, "seed": None},
            {"net": "one tower", "top-1": np.float32(0.425), "seed": torch.tensor(3)}]
    table = html_table(rows, formats={"top-1": "{:.1%}"})
    cells = read(table)
    assert [[c[1] for c in row] for row in cells.rows] == [
        ["net", "top-1", "seed"], ["<b>AlexNet</b> & co", "40.0%", "–"], ["one tower", "42.5%", "3"]]
    assert "&lt;b&gt;AlexNet&lt;/b&gt; &amp; co" in table._repr_html_()  # shown as text, never as markup
    assert cells.rows[1][2][2].endswith("right")  # None and numbers: still a numeric column
    by_index = html_table([(1, 2.5)], formats={1: "{:.2f}"})
    assert [c[1] for c in read(by_index).rows[0]] == ["1", "2.50"]
    picked = html_table(rows, ["seed", "net"])
    assert [[c[1] for c in row] for row in read(picked).rows][1] == ["–", "<b>AlexNet</b> & co"]


def test_text_form_lines_up_columns():
    table = html_table([("relu", 0.25), ("tanh", 12.5)], ["activation", "error"], caption="errors")
    assert str(table).splitlines() == [
        "errors",
        "activation  error",
        "----------  -----",
        "relu         0.25",
        "tanh         12.5",
    ]
    assert repr(table) == str(table)


def test_the_same_rows_give_the_same_html():
    rows = [("a", 1.0 / 3), ("b", 2.0 / 3)]
    assert html_table(rows, ["x", "y"])._repr_html_() == html_table(list(rows), ["x", "y"])._repr_html_()


def test_mistakes_are_named():
    with pytest.raises(ValueError, match="row 1 has 1 values, the table has 2 columns"):
        html_table([(1, 2), (3,)], ["a", "b"])
    with pytest.raises(ValueError, match=r"formats names columns that the table does not have: \['c'\]"):
        html_table([(1, 2)], ["a", "b"], formats={"c": "{}"})
