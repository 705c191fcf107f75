"""Plain aligned console tables (no dependency, copy-pastable into a README)."""

from __future__ import annotations

from typing import Iterable, Sequence


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line([str(h) for h in header]), sep, *(line(r) for r in rows)])


def print_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    print(format_table(header, rows))
