"""What every experiment report shares: Markdown tables, intervals, plotted bands.

A *summary row* is a mapping with ``mean``, ``ci95_lo`` and ``ci95_hi`` (the interval
is None with one seed), as :func:`curate.train.summarize` results and the experiments'
summary tables give.
"""

from __future__ import annotations

import numpy as np


def markdown_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a Markdown table (cells already formatted)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def interval_text(row: dict) -> str:
    """``[lo, hi]`` of a summary row, or ``n/a`` with one seed."""
    if row["ci95_lo"] is None:
        return "n/a"
    return f"[{row['ci95_lo']:.4f}, {row['ci95_hi']:.4f}]"


def bounds(rows: list[dict], scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, low, high)`` arrays of summary rows; a missing interval is the mean."""
    mean = np.array([r["mean"] for r in rows], dtype=float)
    low = np.array([r["mean"] if r["ci95_lo"] is None else r["ci95_lo"] for r in rows], float)
    high = np.array([r["mean"] if r["ci95_hi"] is None else r["ci95_hi"] for r in rows], float)
    return scale * mean, scale * low, scale * high


def band(ax, x, rows: list[dict], label: str, scale: float = 1.0, **style):
    """Plot the mean of summary ``rows`` against ``x`` with a shaded 95% interval."""
    mean, low, high = bounds(rows, scale)
    (line,) = ax.plot(x, mean, label=label, **style)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, lw=0)
    return line


def baseline_band(ax, row: dict, label: str) -> None:
    """A baseline's summary row (full data, dense network) as a dashed line in a grey band."""
    (mean,), (low,), (high,) = bounds([row])
    ax.axhspan(low, high, color="0.5", alpha=0.25, lw=0)
    ax.axhline(mean, color="0.3", ls="--", lw=1, label=label)
