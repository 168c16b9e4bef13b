"""Tables: plain text for output that is read from log files (benchmarks), rich for the CLI."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


def print_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None, indent: str = ""
) -> None:
    """Columns as wide as their widest cell: the first left-aligned (labels), the others right-aligned
    (figures, formatted by the caller)."""
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first, *rest = zip(row, widths, strict=True)
        return indent + "  ".join([first[0].ljust(first[1]), *(c.rjust(w) for c, w in rest)])

    if title:
        print(f"\n{title}")
    head = line(cells[0])
    print(head)
    print(indent + "-" * (len(head) - len(indent)))
    for row in cells[1:]:
        print(line(row), flush=True)


def rich_table(title: str, columns: Sequence[str], *, right: Collection[str] = (), **options: Any) -> Table:
    """A rich table with these column headers (those in `right` right-aligned); `options` go to
    rich's Table (title_justify, show_edge, ...)."""
    from rich.table import Table

    table = Table(title=title, **options)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table
