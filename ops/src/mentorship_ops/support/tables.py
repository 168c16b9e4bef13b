"""Plain-text tables for terminal output that is also read from log files (benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None,
                indent: str = "") -> None:
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
