"""Tables that fit the page: rows of numbers and words as an HTML table for the rendered book,
and as aligned text where only text is shown.

``html_table(rows, header)`` returns a ``Table``. In a notebook it shows as HTML (its
``_repr_html_``): full width, long words broken anywhere rather than pushing the table past the
right edge of the page, numbers right-aligned in columns of their own format. ``str(table)``
is the same table as text. Everything is escaped; the output depends on nothing but the
arguments, so a chapter's committed output is the same on every run. For example::

    html_table([("relu", 0.25), ("tanh", 0.5)], ["activation", "error"], formats={"error": "{:.0%}"})
"""

from __future__ import annotations

import html
import numbers
from dataclasses import dataclass

# Inline styles (not a <style> block, which notebook front ends may strip from untrusted outputs).
TABLE_STYLE = "border-collapse: collapse; width: 100%; max-width: 100%; font-size: 0.85em; margin: 0.5em 0"
CELL_STYLE = "padding: 0.2em 0.5em; border-bottom: 1px solid #ddd; overflow-wrap: anywhere; vertical-align: top"
HEAD_STYLE = CELL_STYLE + "; border-bottom: 2px solid #888; font-weight: bold"
CAPTION_STYLE = "caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3em"


def is_number(value) -> bool:
    """A real number (int, float, numpy or torch scalar), not a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return hasattr(value, "item") and getattr(value, "ndim", 1) == 0 and isinstance(value.item(), numbers.Real)


def format_value(value, fmt: str | None = None) -> str:
    """One cell as text: ``fmt`` (a ``str.format`` pattern such as ``"{:.1%}"``) when given; a
    number with 4 significant digits (integers whole, with thousands separators); ``None`` as "–"."""
    if value is None:
        return "–"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if fmt is not None:
        return fmt.format(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{value:.4g}"
    return str(value)


@dataclass
class Table:
    """Rows of cells, formatted. Build it with :func:`html_table`."""

    header: list
    rows: list  # lists of formatted strings
    numeric: list  # per column: right-align it (every non-empty value a number)
    caption: str | None = None

    def _repr_html_(self) -> str:
        def cell(tag, text, j, style):
            align = "right" if self.numeric[j] else "left"
            return f'<{tag} style="{style}; text-align: {align}">{html.escape(text)}</{tag}>'

        parts = [f'<table class="alexnet-table" style="{TABLE_STYLE}">']
        if self.caption:
            parts.append(f'<caption style="{CAPTION_STYLE}">{html.escape(self.caption)}</caption>')
        if self.header:
            parts.append("<thead><tr>" + "".join(cell("th", h, j, HEAD_STYLE) for j, h in enumerate(self.header))
                         + "</tr></thead>")
        parts.append("<tbody>")
        for row in self.rows:
            parts.append("<tr>" + "".join(cell("td", v, j, CELL_STYLE) for j, v in enumerate(row)) + "</tr>")
        parts.append("</tbody></table>")
        return "".join(parts)

    def __str__(self) -> str:
        lines = [self.header] if self.header else []
        lines += self.rows
        widths = [max(len(line[j]) for line in lines) for j in range(len(self.numeric))]

        def text(line):
            return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(line, widths, self.numeric))

        out = [self.caption] if self.caption else []
        out += [text(line).rstrip() for line in lines[:1]]
        if self.header:
            out.append("  ".join("-" * w for w in widths))
        out += [text(line).rstrip() for line in lines[1 if self.header else 0 :]]
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)


def html_table(rows, header=None, formats: dict | None = None, caption: str | None = None) -> Table:
    """A table of ``rows`` that fits the page.

    ``rows``: a list of sequences (one value per column) or of dicts (keys are the columns;
    ``header`` then picks and orders them, else the first row's keys in order). ``formats``:
    column name (or index) -> ``str.format`` pattern, e.g. ``{"error": "{:.1%}"}``. Columns
    whose values are all numbers are right-aligned. ``caption`` is shown above the table.
    """
    rows = list(rows)
    if rows and isinstance(rows[0], dict):
        header = list(header or rows[0])
        rows = [[row.get(name) for name in header] for row in rows]
    else:
        rows = [list(row) for row in rows]
    width = len(header) if header else max((len(r) for r in rows), default=0)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"row {i} has {len(row)} values, the table has {width} columns: {row!r}")
    formats = formats or {}
    unknown = [k for k in formats if not (k in (header or []) or (isinstance(k, int) and 0 <= k < width))]
    if unknown:
        raise ValueError(f"formats names columns that the table does not have: {unknown}; columns: {header}")

    def fmt(j):
        return formats.get(header[j]) if header and header[j] in formats else formats.get(j)

    numeric = [bool(rows) and all(v is None or is_number(v) for v in (r[j] for r in rows))
               and any(v is not None for v in (r[j] for r in rows)) for j in range(width)]
    cells = [[format_value(v, fmt(j)) for j, v in enumerate(row)] for row in rows]
    return Table([str(h) for h in header] if header else [], cells, numeric, caption)
