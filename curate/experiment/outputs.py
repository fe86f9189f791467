"""One writer for every experiment's outputs: tables, figures and the Markdown report.

Each experiment's result knows what it shows (``tables()``, ``figures()``,
``markdown()``); :func:`write_result` writes those through :func:`write_outputs`,
each file atomically (:func:`curate.io.write_table`, ``write_figure``, ``write_text``),
so a killed run never leaves half a file, and a re-run replaces them whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

REPORT = "report.md"


@dataclass(kw_only=True)
class ExperimentResult:
    """What every registered experiment's result holds besides its own tables: the wall
    time in ``seconds``, the training runs ``trained`` and ``reused`` (read from the
    cache), the score tables ``scores_computed`` and ``scores_reused``, and ``report``,
    the path of ``report.md`` once written."""

    seconds: float = 0.0
    trained: int = 0
    reused: int = 0
    scores_computed: int = 0
    scores_reused: int = 0
    report: Path | None = None


def write_outputs(out_dir, tables: dict[str, pa.Table], figures: dict, report: str) -> Path:
    """Write ``tables`` (file name -> table; the extension picks the format), ``figures``
    (file name -> matplotlib figure, PNG) and ``report`` (``report.md``) into ``out_dir``;
    return the report's path."""
    from curate.io import write_figure, write_table, write_text

    out = Path(out_dir)
    for name, table in tables.items():
        write_table(table, out / name)
    for name, figure in figures.items():
        write_figure(out / name, figure)
    write_text(out / REPORT, report)
    return out / REPORT


def write_result(result, out_dir) -> Path:
    """Write an experiment result's tables, figures and report into ``out_dir``; set and
    return ``result.report`` (the report's path)."""
    result.report = write_outputs(out_dir, result.tables(), result.figures(), result.markdown())
    return result.report
