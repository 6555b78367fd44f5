"""The results table, as plain text that also reads as Markdown."""

from __future__ import annotations

from benchmarks.measure import Row

HEADER = ("figure", "ours", "baseline", "ratio", "goal")


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_row(row: Row) -> tuple[str, ...]:
    ours = f"{_number(row.ours)} {row.unit}"
    baseline = "" if row.baseline is None else f"{_number(row.baseline)} {row.unit}"
    ratio = "" if row.ratio is None else f"{row.ratio:.2f}×"
    figure = f"{row.figure} ({row.note})" if row.note else row.figure
    return (figure, ours, baseline, ratio, row.goal)


def render(rows: list[Row]) -> str:
    cells = [HEADER] + [format_row(row) for row in rows]
    widths = [max(len(line[col]) for line in cells) for col in range(len(HEADER))]
    lines = ["| " + " | ".join(text.ljust(width) for text, width in zip(line, widths)) + " |" for line in cells]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)
