"""The dataset quality card that ``curate inspect`` writes.

:func:`write_quality_card` turns a joined score table (``id`` plus
``<scorer>_<signal>`` columns) into ``card.md`` and a handful of PNG plots in one
folder. It recognises columns by name and type:

* rule set: a bool ``<x>_keep`` column with a string ``<x>_reason`` sibling;
* dedup: a bool ``<x>_duplicate`` column, optionally an ``<x>_cluster`` column;
* language: a string ``<x>_language`` column, optionally ``<x>_confidence``;
* numeric score: any integer or float column except ``id`` and ``*_cluster``.

Plots choose their axes from the data (:func:`_hist_spec`): heavy-tailed columns get a
log axis, a few outliers are folded into an end bin rather than squashing the rest into
one bar, and languages are counted on a log axis. A rule set's thresholds are dashed
lines on its signals' histograms: the scorer class names them in a ``thresholds``
attribute, ``{signal suffix: (constructor parameter, ...)}``, and their values come from
``scorer_params`` (the parameters stored with the scores) or the constructor's defaults.

The figure helpers also draw several datasets over each other on the same bins, for
the comparison card of :mod:`curate.compare_card`.

Every section that finds no columns says so. The output is deterministic: no
timestamps, sorted ties, and PNGs saved without the software tag, so two runs over
the same table give byte-identical files.

Plots use matplotlib's object-oriented ``Figure`` API, which renders PNG with Agg
without importing pyplot: it never switches the caller's backend (a notebook keeps
its inline plots) and leaves no open figures behind. matplotlib is imported only
when a plot is drawn, so importing :mod:`curate` stays fast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.registry import SCORERS
from curate.io import write_figure, write_text
from curate.reporting import markdown_table

CARD_NAME = "card.md"
#: Percentiles reported for document lengths.
LENGTH_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
#: Rows in the "top" tables (languages, largest clusters, strongest correlations).
TOP_LANGUAGES = 10
TOP_CLUSTERS = 5
TOP_PAIRS = 10
#: Drop reasons drawn per bar chart (the table lists all of them).
TOP_REASONS_PLOTTED = 20
HIST_BINS = 40
GRID_COLUMNS = 3
#: Correlation heatmaps print the coefficient in each cell up to this many columns.
ANNOTATE_HEATMAP_MAX = 12
HEATMAP_FONT = 8
#: Heatmap tick labels longer than this are shortened in the middle.
HEATMAP_LABEL_WIDTH = 36
#: A histogram of values >= 0 whose positive part spans more than this ratio (two
#: decades) gets a log x axis; so does one spanning a decade whose median lies in the
#: first CROWDED share of a linear axis.
LOG_SPAN = 100.0
CROWDED = 0.05
#: Where a linear histogram axis may be clipped (see :func:`_hist_spec`).
CLIP_PERCENTILES = (1, 99)
#: A histogram's count axis is log when a non-empty bin is under 1/this of the tallest.
LOG_COUNT_RATIO = 20
BAR_COLOR = "#4C72B0"
OTHER_COLOR = "#8C8C8C"
THRESHOLD_COLORS = ("#C44E52", "#DD8452", "#55A868", "#8172B3")
#: Datasets drawn over each other on the same bins (a comparison card): first, second.
SERIES_COLORS = (BAR_COLOR, "#E5AE38")
SERIES_ALPHA = 0.4
#: How the score histograms choose their axes (:func:`_hist_spec`), said below them.
HISTOGRAM_AXES = (
    "Each histogram's axes are chosen from its values: a log x axis with log-spaced "
    "bins when the values are non-negative and the positive ones span more than two "
    "decades, or crowd at the low end of a linear axis (zeros then get the first "
    "bar, as the panel's label says), otherwise linear, with an end clipped at the "
    "1st or 99th percentile when a few outliers would squash the rest into one bar "
    "(the end bin holds them, as the label says). Counts are on a log axis where one "
    "bin dwarfs the others.")


def write_quality_card(scores: pa.Table, out_dir: str | Path, *, title: str,
                       text_lengths: pa.Array | pa.ChunkedArray | None = None,
                       source_info: dict | None = None,
                       scorer_params: dict[str, dict] | None = None) -> Path:
    """Write ``<out_dir>/card.md`` plus PNG plots beside it; return the path of card.md.

    Args:
        scores: the joined score table, ``n`` rows: ``id`` plus score columns.
        out_dir: folder for the card and its plots (created if missing). Existing
            files of the same names are replaced atomically; others are left alone.
        title: the card's heading.
        text_lengths: per-document character counts, ``n`` values in the order of
            ``scores`` (nulls are ignored and counted). Without it the size section
            reports only the document count.
        source_info: key/value facts about the source (path, fingerprint,
            ``ids_assigned``), shown as a table in insertion order.
        scorer_params: the parameters each scorer ran with, ``{scorer name: params}``
            (the ``params`` that ``curate score`` and recipes store in a score file's
            metadata; :func:`score_file_params` reads them). Rule thresholds are drawn
            at these values, else at the scorer's defaults (and the card says so).

    Raises:
        ValueError: if ``text_lengths`` does not have one value per row of ``scores``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lengths = None
    if text_lengths is not None:
        lengths = _floats(text_lengths)
        if len(lengths) != scores.num_rows:
            raise ValueError(f"text_lengths has {len(lengths)} values but the score table "
                             f"has {scores.num_rows} rows")

    lines = [f"# {_escape(title)}", ""]
    lines += _source_section(source_info)
    if scores.num_rows == 0:
        lines += ["**No documents**: the score table is empty, so there is nothing to "
                  "summarise.", ""]
    else:
        lines += _scorers_section(scores)
        lines += _size_section(scores.num_rows, lengths, out)
        lines += _dedup_section(scores)
        lines += _language_section(scores, out)
        lines += _rule_set_section(scores, out)
        numeric = _numeric_columns(scores)
        rule_sets = _rule_sets(scores)
        marks = _threshold_marks(rule_sets, scorer_params, numeric)
        unknown = _unknown_params(rule_sets, scorer_params, marks)
        lines += _distribution_section(numeric, out, marks, unknown)
        lines += _correlation_section(numeric, out)
    card = out / CARD_NAME
    text = "\n".join(lines).rstrip("\n") + "\n"
    write_text(card, text)
    return card


# --- sections ---------------------------------------------------------------------------


def _source_section(source_info: dict | None) -> list[str]:
    if not source_info:
        return []
    rows = [[_escape(str(k)), f"`{_escape(str(v))}`"] for k, v in source_info.items()]
    return ["## Source", ""] + markdown_table(["field", "value"], rows) + [""]


def _kind(scorer: str) -> str:
    return "dynamics" if SCORERS.get(scorer).kind == "dynamics" else "text"


def _scorers_section(scores: pa.Table) -> list[str]:
    """Which registered scorers have columns in the table, and which do not."""
    names = [c for c in scores.column_names if c != "id"]
    present: dict[str, int] = {}
    claimed: set[str] = set()
    # Longest name first, so a scorer whose name extends another's claims its columns.
    for scorer in sorted(SCORERS.names(), key=len, reverse=True):
        cols = [c for c in names if c.startswith(scorer + "_") and c not in claimed]
        if cols:
            present[scorer] = len(cols)
            claimed.update(cols)
    # Absent scorers of the kinds present: text signals for text, difficulty scores
    # from training dynamics for labelled examples (all kinds when none is present).
    kinds = {_kind(s) for s in present} or {_kind(s) for s in SCORERS.names()}
    absent = sorted(s for s in SCORERS.names() if s not in present and _kind(s) in kinds)
    other = [f"`{c}`" for c in names if c not in claimed]
    lines = ["## Scorers", ""]
    lines.append("- Present (columns): "
                 + (", ".join(f"`{s}` ({present[s]})" for s in sorted(present)) or "none"))
    lines.append("- Absent: " + (", ".join(f"`{s}`" for s in absent) or "none"))
    if other:
        lines.append("- Other columns: " + ", ".join(other))
    return lines + [""]


def _size_section(n_docs: int, lengths: np.ndarray | None, out: Path) -> list[str]:
    lines = ["## Size", "", f"- Documents: {_int(n_docs)}"]
    if lengths is None:
        return lines + ["- Text lengths: not provided.", ""]
    finite = lengths[np.isfinite(lengths)]
    missing = len(lengths) - len(finite)
    lines.append(f"- Total characters: {_int(int(finite.sum()))}")
    if missing:
        lines.append(f"- Documents without a length (null): {_int(missing)}")
    if len(finite) == 0:
        return lines + [""]
    lines.append(f"- Mean length: {_num(float(finite.mean()))} characters")
    empty = int((finite == 0).sum())
    lines.append(f"- Empty documents (0 characters): {_int(empty)}")
    headers = ["min"] + [f"p{p}" for p in LENGTH_PERCENTILES] + ["max"]
    values = [finite.min(), *np.percentile(finite, LENGTH_PERCENTILES), finite.max()]
    lines += ["", "Length distribution (characters):", ""]
    lines += markdown_table(headers, [[_num(float(v)) for v in values]])
    positive = finite[finite > 0]
    if len(positive):
        name = _save(out, "length_histogram.png", _length_figure, [positive], [empty])
        lines += ["", f"![Document length histogram]({name})"]
    return lines + [""]


def _dedup_section(scores: pa.Table) -> list[str]:
    lines = ["## Duplicates", ""]
    prefixes = _dedup_sets(scores)
    if not prefixes:
        return lines + ["_No dedup scores (no bool `<scorer>_duplicate` column)._", ""]
    n = scores.num_rows
    rows, details = [], []
    for prefix in prefixes:
        dup = _column(scores, f"{prefix}_duplicate")
        n_dup = _count_true(dup)
        rate = _pct(n_dup / n)
        nulls = f" ({_int(dup.null_count)} unscored)" if dup.null_count else ""
        cluster_col = f"{prefix}_cluster"
        if cluster_col not in scores.column_names:
            rows.append([f"`{prefix}`", _int(n_dup) + nulls, rate, "n/a", "n/a"])
            continue
        ids, sizes = _cluster_sizes(_column(scores, cluster_col))
        largest = _int(int(sizes[0])) if len(sizes) else "0"
        rows.append([f"`{prefix}`", _int(n_dup) + nulls, rate, _int(len(sizes)), largest])
        if len(sizes):
            top = [[f"`{_escape(str(i))}`", _int(int(s))]
                   for i, s in zip(ids[:TOP_CLUSTERS], sizes[:TOP_CLUSTERS], strict=True)]
            details += ["", f"Largest `{prefix}` clusters:", ""]
            details += markdown_table(["cluster", "documents"], top)
    lines += markdown_table(["scorer", "duplicates", "duplicate rate", "clusters (2+ documents)",
                     "largest cluster"], rows)
    lines += details
    return lines + ["", "Duplicate rate: share of all documents marked duplicate. "
                        "Clusters: cluster ids shared by two or more documents.", ""]


def _language_section(scores: pa.Table, out: Path) -> list[str]:
    lines = ["## Language", ""]
    prefixes = _language_sets(scores)
    if not prefixes:
        return lines + ["_No language ID scores (no string `<scorer>_language` column)._", ""]
    n = scores.num_rows
    for prefix in prefixes:
        labels, counts, conf_means = _language_counts(scores, prefix)
        conf_col = f"{prefix}_confidence"
        has_conf = conf_col in scores.column_names
        top = range(min(TOP_LANGUAGES, len(labels)))
        headers = ["language", "documents", "share"] + (["mean confidence"] if has_conf else [])
        rows = []
        for i in top:
            row = [f"`{_escape(labels[i])}`", _int(int(counts[i])), _pct(counts[i] / n)]
            rows.append(row + ([_num(conf_means[i])] if has_conf else []))
        rest = int(counts[len(top):].sum())
        if rest:
            row = [f"other ({len(labels) - len(top)} languages)", _int(rest), _pct(rest / n)]
            rows.append(row + ([""] if has_conf else []))
        lines.append(f"`{prefix}`: {_int(len(labels))} distinct labels.")
        if has_conf:
            conf = _floats(_column(scores, conf_col))
            ok = conf[np.isfinite(conf)]
            mean = _num(float(ok.mean())) if len(ok) else "n/a (no values)"
            lines.append(f"Mean confidence: {mean}.")
        else:
            lines.append(f"No `{conf_col}` column.")
        lines += [""] + markdown_table(headers, rows)
        name = _save(out, f"language_{_slug(prefix)}.png", _language_figure, labels, counts,
                     n, f"{prefix}: documents per language")
        lines += ["", f"![{prefix} language mix]({name})", ""]
    return lines


def _rule_set_section(scores: pa.Table, out: Path) -> list[str]:
    lines = ["## Rule sets", ""]
    prefixes = _rule_sets(scores)
    if not prefixes:
        return lines + ["_No rule sets (no bool `<x>_keep` column with a `<x>_reason` "
                        "sibling)._", ""]
    n = scores.num_rows
    rows, all_kept, any_null = [], np.ones(n, dtype=bool), False
    for prefix in prefixes:
        keep = _column(scores, f"{prefix}_keep")
        kept, dropped = _count_true(keep), _count_true(pc.invert(keep))
        any_null = any_null or keep.null_count > 0
        scored = kept + dropped
        rate = _pct(kept / scored) if scored else "n/a"
        rows.append([f"`{prefix}`", _int(kept), _int(dropped), _int(keep.null_count), rate])
        all_kept &= keep.fill_null(False).to_numpy(zero_copy_only=False)
    lines += markdown_table(["rule set", "kept", "dropped", "unscored", "keep rate"], rows)
    combined = int(all_kept.sum())
    lines += ["", f"**Combined**: applying all {len(prefixes)} rule sets keeps "
                  f"{_int(combined)} of {_int(n)} documents ({_pct(combined / n)})."]
    if any_null:
        lines.append("Unscored (null) documents count as dropped in the combined rate.")
    lines.append("")
    for prefix in prefixes:
        lines += _reason_block(scores, prefix, out)
    return lines


def _reason_block(scores: pa.Table, prefix: str, out: Path) -> list[str]:
    lines = [f"### Drop reasons: `{prefix}`", ""]
    labels, counts = _drop_reasons(scores, prefix)
    n_dropped = int(counts.sum())
    if n_dropped == 0:
        return lines + ["No documents dropped.", ""]
    n = scores.num_rows
    rows = [[f"`{_escape(label)}`", _int(int(c)), _pct(c / n_dropped), _pct(c / n)]
            for label, c in zip(labels, counts, strict=True)]
    lines += markdown_table(["reason", "dropped", "share of dropped", "share of all"], rows)
    shown = min(TOP_REASONS_PLOTTED, len(labels))
    name = _save(out, f"drop_reasons_{_slug(prefix)}.png", _bar_figure, labels[:shown],
                 counts[:shown], "documents dropped", f"{prefix}: drop reasons")
    return lines + ["", f"![{prefix} drop reasons]({name})", ""]


def _distribution_section(numeric: dict[str, np.ndarray], out: Path,
                          marks: dict[str, list[Threshold]], unknown: list[str]) -> list[str]:
    lines = ["## Score distributions", ""]
    if not numeric:
        return lines + ["_No numeric score columns._", ""]
    rows = []
    for name, values in numeric.items():
        finite = values[np.isfinite(values)]
        missing = len(values) - len(finite)
        if len(finite):
            stats = [finite.min(), np.median(finite), finite.mean(), finite.max()]
            rows.append([f"`{name}`", _int(len(finite)), _int(missing),
                         *(_num(float(s)) for s in stats)])
        else:
            rows.append([f"`{name}`", "0", _int(missing), "n/a", "n/a", "n/a", "n/a"])
    lines += markdown_table(["column", "values", "null/NaN/inf (ignored)", "min", "median", "mean",
                     "max"], rows)
    plot = _save(out, "score_histograms.png", _histogram_grid, numeric, marks)
    lines += ["", f"![Score histograms]({plot})", "", HISTOGRAM_AXES]
    return lines + _threshold_lines(marks, unknown) + [""]


def _threshold_lines(marks: dict[str, list[Threshold]], unknown: list[str]) -> list[str]:
    """The table of the thresholds drawn on the histograms, and which rule sets' are
    the scorers' defaults because their parameters are unknown (none: no lines)."""
    if not marks:
        return []
    rows = [[f"`{column}`", f"`{m.param}`", _num(m.value),
             "scorer default" if m.default else "scores' parameters"]
            for column, found in marks.items() for m in found]
    lines = ["", "Rule thresholds, drawn as dashed lines (a document is dropped beyond them):",
             ""]
    lines += markdown_table(["column", "parameter", "value", "from"], rows)
    if unknown:
        lines += ["", "The card was not given the parameters that "
                  + ", ".join(f"`{p}`" for p in unknown)
                  + " ran with, so their thresholds are the scorers' defaults."]
    return lines


def _correlation_section(numeric: dict[str, np.ndarray], out: Path) -> list[str]:
    lines = ["## Correlations", ""]
    varying = {k: v for k, v in numeric.items() if _distinct_finite(v) >= 2}
    constant = [k for k in numeric if k not in varying]
    if constant:
        lines += ["Skipped (constant or no finite values): "
                  + ", ".join(f"`{c}`" for c in constant), ""]
    if len(varying) < 2:
        return lines + ["_Fewer than two varying numeric columns: no correlations._", ""]
    names = list(varying)
    rho, count = _spearman_matrix([varying[k] for k in names])
    pairs = [(abs(rho[i, j]), names[i], names[j], rho[i, j], count[i, j])
             for i in range(len(names)) for j in range(i + 1, len(names))
             if np.isfinite(rho[i, j])]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    lines.append("Spearman rank correlation over documents where both columns are finite; "
                 "strongest pairs:")
    lines.append("")
    rows = [[f"`{a}`", f"`{b}`", f"{r:+.3f}", _int(int(c))]
            for _, a, b, r, c in pairs[:TOP_PAIRS]]
    lines += markdown_table(["column", "column", "Spearman rho", "documents"], rows) if rows else [
        "_No pair has three or more documents with finite values in both columns._"]
    plot = _save(out, "score_correlations.png", _heatmap_figure, names, rho)
    return lines + ["", f"![Spearman correlations]({plot})", ""]


# --- column analysis --------------------------------------------------------------------


def _rule_sets(scores: pa.Table) -> list[str]:
    schema = scores.schema
    out = []
    for name in scores.column_names:
        if not name.endswith("_keep") or not pa.types.is_boolean(schema.field(name).type):
            continue
        prefix = name[: -len("_keep")]
        reason = f"{prefix}_reason"
        if reason in scores.column_names and _is_string(schema.field(reason).type):
            out.append(prefix)
    return out


def _dedup_sets(scores: pa.Table) -> list[str]:
    """Prefixes ``<x>`` of the bool ``<x>_duplicate`` columns, in column order."""
    return [c[: -len("_duplicate")] for c in scores.column_names
            if c.endswith("_duplicate") and pa.types.is_boolean(scores.schema.field(c).type)]


def _language_sets(scores: pa.Table) -> list[str]:
    """Prefixes ``<x>`` of the string ``<x>_language`` columns, in column order."""
    return [c[: -len("_language")] for c in scores.column_names
            if c.endswith("_language") and _is_string(scores.schema.field(c).type)]


def _drop_reasons(scores: pa.Table, prefix: str) -> tuple[list[str], np.ndarray]:
    """Why rule set ``prefix`` dropped documents: the reasons (null as "(no reason)") and
    how many documents each dropped, most first; unscored (null keep) rows are not drops."""
    dropped = pc.equal(_column(scores, f"{prefix}_keep"), False).fill_null(False)
    reasons = pc.filter(_column(scores, f"{prefix}_reason"), dropped).fill_null("(no reason)")
    return _value_counts(reasons)


def _numeric_columns(scores: pa.Table) -> dict[str, np.ndarray]:
    """Integer and float columns except ids, cluster ids and hashes, as float64 (nulls NaN)."""
    out = {}
    for field in scores.schema:
        if field.name == "id" or field.name.endswith(("_cluster", "_hash")):
            continue
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            out[field.name] = _floats(scores.column(field.name))
    return out


def _cluster_sizes(clusters: pa.Array) -> tuple[list, np.ndarray]:
    """Clusters with two or more documents: (ids, sizes), largest first, ties by id."""
    vc = pc.value_counts(clusters.drop_null())
    ids = vc.field("values").to_pylist()
    sizes = vc.field("counts").to_numpy()
    order = sorted(range(len(ids)), key=lambda i: (-sizes[i], str(ids[i])))
    ids = [ids[i] for i in order if sizes[i] >= 2]
    return ids, np.array([sizes[i] for i in order if sizes[i] >= 2], dtype=np.int64)


def _language_counts(scores: pa.Table, prefix: str) -> tuple[list[str], np.ndarray, list]:
    """Labels (null as "(none)"), their counts and mean confidence, most frequent first."""
    lang = _column(scores, f"{prefix}_language").fill_null("(none)")
    encoded = pc.dictionary_encode(lang)
    labels = encoded.dictionary.to_pylist()
    idx = encoded.indices.to_numpy(zero_copy_only=False)
    counts = np.bincount(idx, minlength=len(labels))
    conf_col = f"{prefix}_confidence"
    means = [math.nan] * len(labels)
    if conf_col in scores.column_names:
        conf = _floats(_column(scores, conf_col))
        ok = np.isfinite(conf)
        sums = np.bincount(idx[ok], weights=conf[ok], minlength=len(labels))
        seen = np.bincount(idx[ok], minlength=len(labels))
        means = [s / c if c else math.nan for s, c in zip(sums, seen, strict=True)]
    order = sorted(range(len(labels)), key=lambda i: (-counts[i], labels[i]))
    return ([labels[i] for i in order], counts[order].astype(np.int64),
            [means[i] for i in order])


def _value_counts(values: pa.Array) -> tuple[list[str], np.ndarray]:
    """Distinct values and counts, most frequent first, ties alphabetical."""
    vc = pc.value_counts(values)
    labels = vc.field("values").to_pylist()
    counts = vc.field("counts").to_numpy()
    order = sorted(range(len(labels)), key=lambda i: (-counts[i], labels[i]))
    return [labels[i] for i in order], counts[order].astype(np.int64)


def _spearman_matrix(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise Spearman rho over rows finite in both columns, and those row counts.

    Each column of ``n`` values is sorted once; the ranks for a pair's rows are read
    off that order in O(n) (:func:`_subset_ranks`), so k columns cost k sorts rather
    than k^2 even when missing values differ between columns. Ties get average
    ranks, as in ``scipy.stats.spearmanr``. A pair with fewer than three rows, or
    constant on its rows, gets NaN.
    """
    k = len(columns)
    masks = [np.isfinite(c) for c in columns]
    orders = []
    for values, mask in zip(columns, masks, strict=True):
        order = np.argsort(values, kind="stable")
        orders.append(order[mask[order]])
    rho = np.eye(k)
    count = np.zeros((k, k), dtype=np.int64)
    for i in range(k):
        count[i, i] = masks[i].sum()
        for j in range(i + 1, k):
            both = masks[i] & masks[j]
            n = int(both.sum())
            count[i, j] = count[j, i] = n
            if n < 3:
                rho[i, j] = rho[j, i] = math.nan
                continue
            ri = _subset_ranks(columns[i], orders[i], both)
            rj = _subset_ranks(columns[j], orders[j], both)
            rho[i, j] = rho[j, i] = _pearson(ri, rj)
    return rho, count


def _subset_ranks(values: np.ndarray, order: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of ``values[rows]``, in row order.

    ``order`` holds the finite rows of ``values`` in ascending value order; the
    selected rows keep that order, so no new sort is needed.
    """
    picked = order[rows[order]]
    ordered = values[picked]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(ordered)])
    ranks = np.empty(len(values))
    ranks[picked] = np.repeat(starts + (sizes + 1) / 2, sizes)
    return ranks[rows]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denom if denom > 0 else math.nan


def _distinct_finite(values: np.ndarray) -> int:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 0
    return 1 if finite.min() == finite.max() else 2


# --- plots ------------------------------------------------------------------------------


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _length_figure(positive: list[np.ndarray], n_empty: list[int], names=()):
    """Histogram of the positive lengths, one array per dataset (one unless ``names``
    names several: they are drawn over each other, see :func:`_hist_layers`); the
    empty documents, ``n_empty[i]`` per dataset, are counted in the title."""
    fig = _new_figure(7, 3.5)
    ax = fig.add_subplot()
    spec, layers = _hist_layers(positive, names)
    _draw_hist(ax, spec, layers)
    if layers:
        _series_legend(ax, names, alpha=SERIES_ALPHA)
    ax.set_xlabel(_axis_label("characters per document", spec))
    ax.set_ylabel(_count_label(spec, layers))
    empty = [f"{name}: {n:,}" if names else f"{n:,}"
             for name, n in zip(names or [""], n_empty, strict=True) if n]
    note = f" ({', '.join(empty)} with 0 characters not shown)" if empty else ""
    ax.set_title("Document length" + note)
    return fig


def _bar_figure(labels: list[str], values, xlabel: str, title: str, names=()):
    """Horizontal bars, first label on top, each with its value written beside it.

    ``values``: one number per label; with ``names`` (one per dataset), one array per
    dataset (None: nothing to draw for it), drawn as adjacent bars in the datasets'
    :data:`SERIES_COLORS` with a legend naming them.
    """
    series = list(values) if names else [values]
    drawn = [np.asarray(v, dtype=float) for v in series if v is not None]
    per_label = 0.24 * len(series) if names else 0.32  # inches
    fig = _new_figure(7, 1.2 + per_label * len(labels) + (0.4 if names else 0))
    ax = fig.add_subplot()
    positions = np.arange(len(labels))
    height = 0.8 / len(series)
    for i, bars in enumerate(series):
        if bars is None:
            continue
        place = positions + height * (i - (len(series) - 1) / 2) if names else positions
        color = SERIES_COLORS[i % len(SERIES_COLORS)] if names else BAR_COLOR
        ax.barh(place, bars, height=height, color=color)
        for pos, value in zip(place, bars, strict=True):
            ax.text(value, pos, f" {_num(float(value))}", va="center", fontsize=8)
    ax.set_yticks(positions, [_shorten(label, 40) for label in labels])
    ax.invert_yaxis()
    top = max(float(np.max(v)) for v in drawn) if drawn else 0.0
    ax.set_xlim(0, max(top, 1) * 1.15)  # room for the values
    if names:
        _series_legend(ax, names, alpha=1.0)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig


def _language_figure(labels: list[str], counts: np.ndarray, n_docs: int, title: str):
    """Documents per language on a log axis, most frequent first; past
    :data:`TOP_LANGUAGES` labels the rest share one grey "other" bar, drawn last."""
    shown = min(TOP_LANGUAGES, len(labels))
    names = [_shorten(label, 30) for label in labels[:shown]]
    values = [int(c) for c in counts[:shown]]
    colors = [BAR_COLOR] * shown
    if len(labels) > shown:
        names.append(f"other ({len(labels) - shown} languages)")
        values.append(int(counts[shown:].sum()))
        colors.append(OTHER_COLOR)
    fig = _new_figure(7, 1.2 + 0.32 * len(names))
    ax = fig.add_subplot()
    positions = np.arange(len(names))
    ax.barh(positions, values, color=colors)
    ax.set_xscale("log")
    # Bars start at the left edge (below one document); the right margin holds the labels.
    ax.set_xlim(0.7, max(values) * 12)
    for pos, value in zip(positions, values, strict=True):
        ax.text(value * 1.1, pos, f"{value:,} ({_pct(value / n_docs)})", va="center",
                fontsize=8)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlabel("documents (log scale)")
    ax.set_title(title)
    return fig


def _histogram_grid(numeric: dict, marks: dict[str, list[Threshold]] | None = None,
                    names=()):
    """One histogram per column, its axes chosen by :func:`_hist_spec`; each rule
    threshold in ``marks[column]`` is a dashed vertical line with a legend entry.

    ``numeric`` maps a column to its values (float arrays, NaN for null); with
    ``names`` (one per dataset), to one array per dataset, drawn over each other on the
    same bins (:func:`_hist_layers`) with one legend naming the datasets.
    """
    marks = marks or {}
    ncols = min(GRID_COLUMNS, len(numeric))
    nrows = math.ceil(len(numeric) / ncols)
    fig = _new_figure(4.2 * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, values) in zip(axes, numeric.items(), strict=False):
        series = list(values) if names else [values]
        finite = [v[np.isfinite(v)] for v in series]
        missing = sum(map(len, series)) - sum(map(len, finite))
        title = _shorten(name, 38) + (f"\n({missing:,} null/NaN ignored)" if missing else "")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        if not any(len(f) for f in finite):
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        column_marks = marks.get(name, [])
        spec, layers = _hist_layers(finite, names, [m.value for m in column_marks])
        _draw_hist(ax, spec, layers)
        _draw_thresholds(ax, column_marks, spec)
        label = _axis_label("", spec)
        if label:
            ax.set_xlabel(label, fontsize=7)
        if spec.count_scale == "log" or layers:
            ax.set_ylabel(_count_label(spec, layers), fontsize=7)
    for ax in axes[len(numeric):]:
        ax.set_visible(False)
    if names:
        _series_legend(fig, names, alpha=SERIES_ALPHA)
    return fig


def _hist_layers(finite: list[np.ndarray], names=(), marks=()) -> tuple[HistSpec, list | None]:
    """The bins for ``finite`` (finite values, one array per dataset) and what to draw.

    One dataset (no ``names``): its :func:`_hist_spec` and None (draw its counts).
    Several: the bins :func:`_hist_spec` chooses for all values together, and per
    dataset the share of its values in each bin (zeros for a dataset without values),
    so that datasets of different sizes compare.
    """
    if not names:
        return _hist_spec(finite[0], marks), None
    spec = _hist_spec(np.concatenate(finite), marks)
    return spec, [spec.count(v) / len(v) if len(v) else np.zeros(len(spec.counts))
                  for v in finite]


def _count_label(spec: HistSpec, layers) -> str:
    return ("share of documents" if layers else "documents") + (
        " (log scale)" if spec.count_scale == "log" else "")


def _series_legend(target, names, alpha: float) -> None:
    """A legend naming the datasets by colour (areas of opacity ``alpha``, outlined), on
    an Axes or above a whole Figure."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    colors = [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(names))]
    handles = [Patch(facecolor=to_rgba(color, alpha), edgecolor=color, label=_shorten(name, 40))
               for color, name in zip(colors, names, strict=True)]
    if hasattr(target, "add_subplot"):  # a Figure
        target.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    else:
        target.legend(handles=handles, fontsize=8, loc="best", framealpha=0.85)


@dataclass(frozen=True)
class HistSpec:
    """How one column's histogram is drawn, as :func:`_hist_spec` chose it."""

    scale: str  #: x axis: "linear", "log", or "symlog" (log with a linear stretch for 0)
    edges: np.ndarray  #: bin edges, ascending
    counts: np.ndarray  #: values per bin; values clipped off the axis are in the end bins
    count_scale: str  #: y axis: "linear", or "log" when one bin would dwarf the rest
    notes: tuple[str, ...]  #: what the axis folds into an end bin, or where the zeros are
    linthresh: float = 0.0  #: symlog only: the linear stretch [0, linthresh] holds the zeros
    linscale: float = 1.0  #: symlog only: its width, in decades

    def count(self, values: np.ndarray) -> np.ndarray:
        """Finite ``values`` counted on these bins, values beyond an end in its end bin
        (as :attr:`counts` holds the values the bins were chosen from)."""
        return np.histogram(np.clip(values, self.edges[0], self.edges[-1]), self.edges)[0]


def _hist_spec(finite: np.ndarray, marks=()) -> HistSpec:
    """Choose the axes and bins of one column's histogram from its finite values.

    * one distinct value: one bar;
    * values >= 0 whose positive part spans more than :data:`LOG_SPAN` (max/min), or
      more than a decade with half of it in the first :data:`CROWDED` of a linear
      axis: log x axis with log-spaced bins (integers: one bin per integer where bins
      would be narrower). Zeros, if any, get the first bar, on a short linear stretch
      of a "symlog" axis;
    * otherwise linear, integers with integer-aligned bins. An end is clipped at the
      1st / 99th percentile when the last 1% of values beyond it would take up more of
      the axis than the other 99% (a few outliers squashing the rest into one bar); the
      clipped values are counted in the end bin and in the notes. ``marks`` (threshold
      values) inside the data's range stay on the axis, with a margin beyond them so
      that the end bin does not mix both sides of a threshold.

    The count axis is log when the tallest bin holds half the values or more and a
    non-empty bin is under 1/:data:`LOG_COUNT_RATIO` of it (so small bins stay visible).
    """
    lo, hi = float(finite.min()), float(finite.max())
    integer = bool(np.all(finite == np.round(finite)))
    if lo == hi:
        half = 0.5 if integer or lo == 0 else abs(lo) * 0.05
        return _binned("linear", np.array([lo - half, hi + half]), finite, ())
    positive = finite[finite > 0]
    if lo >= 0 and len(positive) >= 2 and positive.min() < positive.max():
        p_lo, p_hi = float(positive.min()), float(positive.max())
        crowded = float(np.median(positive)) - p_lo < CROWDED * (p_hi - p_lo)
        if p_hi > LOG_SPAN * p_lo or (crowded and p_hi > 10 * p_lo):
            return _log_spec(finite, p_lo, p_hi, integer)
    q_lo, q_hi = (float(q) for q in np.percentile(finite, CLIP_PERCENTILES))
    left, right = lo, hi
    if lo < q_hi and hi - q_hi > q_hi - lo:
        right = q_hi
    if q_lo < right and q_lo - lo > right - q_lo:
        left = q_lo
    for mark in sorted(float(m) for m in marks if lo <= m <= hi):
        right = max(right, min(hi, mark + 0.1 * (mark - left)))
        left = min(left, max(lo, mark - 0.1 * (right - mark)))
    if integer:
        left, right = math.floor(left), math.ceil(right)
        width = max(1, math.ceil((right - left + 1) / HIST_BINS))
        edges = left - 0.5 + width * np.arange(math.ceil((right - left + 1) / width) + 1)
        first, last = left, math.floor(edges[-1])
    else:
        edges = np.linspace(left, right, HIST_BINS + 1)
        first, last = left, right
    below, above = int((finite < edges[0]).sum()), int((finite > edges[-1]).sum())
    notes = ((f"first bin includes {below:,} below {_num(first)}",) if below else ()) + (
        (f"last bin includes {above:,} above {_num(last)}",) if above else ())
    return _binned("linear", edges, np.clip(finite, edges[0], edges[-1]), notes)


def _log_spec(finite: np.ndarray, p_lo: float, p_hi: float, integer: bool) -> HistSpec:
    """Log-spaced bins from the smallest to the largest positive value. Zeros get a
    first bar on the linear stretch of a symlog axis, with an empty bin (a gap) between
    it and the log-spaced ones."""
    if integer:
        edges = np.unique(np.round(np.geomspace(p_lo, p_hi + 1, HIST_BINS + 1))) - 0.5
    else:
        edges = np.geomspace(p_lo, p_hi, HIST_BINS + 1)
    zeros = int((finite == 0).sum())
    if not zeros:
        return _binned("log", edges, finite, ())
    decades = math.log10(edges[-1] / edges[0])
    spec = _binned("symlog", np.r_[0.0, 0.4 * edges[0], edges], finite,
                   (f"first bar: {zeros:,} at 0",))
    return HistSpec(**{**spec.__dict__, "linthresh": float(edges[0]),
                       "linscale": max(0.5, 3 * decades / HIST_BINS)})


def _binned(scale: str, edges: np.ndarray, values: np.ndarray,
            notes: tuple[str, ...]) -> HistSpec:
    counts = np.histogram(values, edges)[0]
    top = int(counts.max())
    smallest = int(counts[counts > 0].min())
    skewed = 2 * top >= counts.sum() and smallest * LOG_COUNT_RATIO < top
    return HistSpec(scale, edges, counts, "log" if skewed else "linear", notes)


def _draw_hist(ax, spec: HistSpec, layers: list[np.ndarray] | None = None) -> None:
    """Bars of ``spec.counts``, or each of ``layers`` (a weight per bin, one per dataset)
    as a translucent area with an outline in its :data:`SERIES_COLORS` colour."""
    log = spec.count_scale == "log"
    if layers is None:
        ax.hist(spec.edges[:-1], bins=spec.edges, weights=spec.counts, color=BAR_COLOR, log=log)
    for i, weights in enumerate(layers or []):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        for style in ({"histtype": "stepfilled", "alpha": SERIES_ALPHA},
                      {"histtype": "step", "linewidth": 1.2}):
            ax.hist(spec.edges[:-1], bins=spec.edges, weights=weights, color=color, log=log,
                    **style)
    if spec.scale == "log":
        ax.set_xscale("log")
    elif spec.scale == "symlog":
        ax.set_xscale("symlog", linthresh=spec.linthresh, linscale=spec.linscale)
        first = math.ceil(math.log10(spec.linthresh) - 1e-9)
        last = math.floor(math.log10(spec.edges[-1]) + 1e-9)
        ax.set_xticks([0.0] + [10.0 ** k for k in range(first, last + 1)])
    ax.set_xlim(spec.edges[0], spec.edges[-1])


def _axis_label(text: str, spec: HistSpec) -> str:
    parts = ([text] if text else []) + (["log scale"] if spec.scale != "linear" else [])
    label = ", ".join(parts)
    if spec.notes:
        label += (" " if label else "") + "(" + "; ".join(spec.notes) + ")"
    return label


def _draw_thresholds(ax, marks: list[Threshold], spec: HistSpec) -> None:
    """Dashed vertical lines at the thresholds, with a legend; the axis keeps the
    histogram's range, and the legend says which thresholds fall outside it."""
    if not marks:
        return
    left, right = spec.edges[0], spec.edges[-1]
    for i, mark in enumerate(marks):
        label = f"{mark.param} = {_num(mark.value)}" + (" (default)" if mark.default else "")
        if not left <= mark.value <= right:
            label += " (off axis, " + ("left)" if mark.value < left else "right)")
        ax.axvline(mark.value, color=THRESHOLD_COLORS[i % len(THRESHOLD_COLORS)],
                   linestyle="--", linewidth=1.3, label=label)
    ax.set_xlim(left, right)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)


def _heatmap_figure(names: list[str], rho: np.ndarray):
    """Spearman heatmap; the figure grows with the number of columns and the longest
    label, and constrained layout keeps every tick label inside it."""
    k = len(names)
    labels, blocks, common = _heatmap_labels(names)
    cell = 0.45 if k <= ANNOTATE_HEATMAP_MAX else 0.3
    label_in = max(len(label) for label in labels) * HEATMAP_FONT * 0.62 / 72
    group_in = max([len(b[0]) for b in blocks if b[0]] or [0]) * HEATMAP_FONT * 0.45 / 72
    fig = _new_figure(max(5.0, k * cell + label_in + 2.0),
                      max(4.5, k * cell + 0.9 * label_in + group_in + 1.0))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(rho), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(k), labels, rotation=60, ha="right", rotation_mode="anchor",
                  fontsize=HEATMAP_FONT)
    ax.set_yticks(range(k), labels, fontsize=HEATMAP_FONT)
    if k <= ANNOTATE_HEATMAP_MAX:
        for i in range(k):
            for j in range(k):
                if np.isfinite(rho[i, j]):
                    color = "white" if abs(rho[i, j]) > 0.6 else "black"
                    ax.text(j, i, f"{rho[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color=color)
    if len(blocks) > 1:
        for _, first, _ in blocks[1:]:
            ax.axhline(first - 0.5, color="white", linewidth=2)
            ax.axvline(first - 0.5, color="white", linewidth=2)
        top = ax.secondary_xaxis("top")
        named = [b for b in blocks if b[0]]
        top.set_xticks([(first + last) / 2 for _, first, last in named],
                       [name for name, _, _ in named], rotation=45, ha="left",
                       rotation_mode="anchor", fontsize=HEATMAP_FONT)
        top.tick_params(length=0)
    fig.colorbar(image, ax=ax, label="Spearman rho", shrink=0.8)
    ax.set_title("Spearman rank correlation" + (f" (columns of `{common}`)" if common else ""))
    return fig


def _heatmap_labels(names: list[str]) -> tuple[list[str], list[tuple[str, int, int]], str]:
    """Tick labels, scorer blocks and the one scorer all columns share (else "").

    A column's scorer is the longest registered scorer name it starts with. Its label
    drops that prefix when no other column would get the same label (the blocks,
    named above the heatmap, say which scorer it is); columns of one scorer are
    labelled by their signals alone and the scorer goes in the title. Blocks are runs
    of adjacent columns of the same scorer: (scorer or "", first index, last index).
    """
    owners = [_owner(name) for name in names]
    short = [name[len(o) + 1:] if o else name for name, o in zip(names, owners, strict=True)]
    taken = set(names)
    labels = [s if (short.count(s) == 1 and (s == n or s not in taken)) else n
              for s, n in zip(short, names, strict=True)]
    labels = [_shorten_middle(label, HEATMAP_LABEL_WIDTH) for label in labels]
    blocks: list[tuple[str, int, int]] = []
    for i, owner in enumerate(owners):
        if blocks and blocks[-1][0] == owner and owner:
            blocks[-1] = (owner, blocks[-1][1], i)
        else:
            blocks.append((owner, i, i))
    common = owners[0] if len(blocks) == 1 and owners[0] else ""
    return labels, blocks, common


def _owner(column: str) -> str:
    """The longest registered scorer name that ``column`` starts with (plus "_"), or ""."""
    try:
        scorers = SCORERS.names()
    except Exception:  # noqa: BLE001 - a broken plugin only costs the grouping
        return ""
    matches = [s for s in scorers if column.startswith(s + "_")]
    return max(matches, key=len) if matches else ""


# --- rule thresholds --------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """One rule threshold drawn on a signal's histogram."""

    param: str  #: constructor parameter, e.g. "min_doc_words" or "top_n_grams[2]"
    value: float
    default: bool  #: the scorer's default, not a parameter the scores were computed with


def _threshold_marks(prefixes: list[str], scorer_params: dict[str, dict] | None,
                     columns) -> dict[str, list[Threshold]]:
    """The thresholds of each rule set's signals, keyed by column.

    A rule-set scorer class says which constructor parameters bound which signal in
    its ``thresholds`` attribute: ``{signal suffix: (parameter, ...)}``; a suffix with
    ``{n}`` takes a parameter holding ``(n, threshold)`` pairs (one column per n).
    Values come from ``scorer_params[prefix]`` (the parameters the scores were computed
    with), else from the constructor's defaults. A value that is not a positive number
    (None, 0, -1: how the rule sets turn a check off) draws nothing.
    """
    columns = set(columns)
    marks: dict[str, list[Threshold]] = {}
    for prefix in prefixes:
        cls = _scorer_class(prefix)
        bounds = getattr(cls, "thresholds", None)
        if not isinstance(bounds, dict):
            continue
        given = (scorer_params or {}).get(prefix) or {}
        defaults = _defaults(cls)
        for suffix, params in bounds.items():
            for param in params:
                if param in given:
                    value, default = given[param], False
                elif param in defaults:
                    value, default = defaults[param], True
                else:
                    continue
                if "{n}" in suffix:
                    found = [(suffix.replace("{n}", str(n)), f"{param}[{n}]", v)
                             for n, v in _pairs(value)]
                else:
                    found = [(suffix, param, value)]
                for signal, label, v in found:
                    column = f"{prefix}_{signal}"
                    if column in columns and _is_threshold(v):
                        marks.setdefault(column, []).append(Threshold(label, float(v), default))
    return marks


def _unknown_params(prefixes: list[str], scorer_params: dict[str, dict] | None,
                    marks: dict[str, list[Threshold]]) -> list[str]:
    """The rule sets among ``prefixes`` with thresholds in ``marks`` but no parameters in
    ``scorer_params`` (so their thresholds are the scorers' defaults)."""
    return [p for p in prefixes if p not in (scorer_params or {})
            and any(c.startswith(p + "_") for c in marks)]


def _scorer_class(name: str):
    """The class registered as scorer ``name``, or None."""
    try:
        return SCORERS.get(name) if name in SCORERS else None
    except Exception:  # noqa: BLE001 - a scorer that cannot load only loses its lines
        return None


def _defaults(cls) -> dict:
    import inspect

    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def _pairs(value) -> list[tuple[int, object]]:
    """``(n, threshold)`` pairs of a parameter like ``top_n_grams``; malformed items skipped."""
    out = []
    for item in value if isinstance(value, (list, tuple)) else ():
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], int) \
                and not isinstance(item[0], bool):
            out.append((item[0], item[1]))
    return out


def _is_threshold(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def score_file_params(paths) -> dict[str, dict]:
    """The parameters each scorer ran with, read from score files' Parquet metadata.

    ``paths``: score files, sharded score folders and/or folders of them (as for
    :func:`curate.scores.load_scores`). Returns ``{scorer name: params}`` for
    :func:`write_quality_card`'s ``scorer_params``; a file without parameters is skipped.
    """
    from curate.scores import read_metadata, score_tables

    out = {}
    for name, path in score_tables(paths):
        meta = read_metadata(path)
        if isinstance(meta.get("params"), dict):
            out[str(meta.get("scorer") or name)] = meta["params"]
    return out


def _save(out: Path, name: str, draw: Callable, *args) -> str:
    """Write ``draw(*args)`` as ``out/name`` (PNG without software tag); return ``name``."""
    fig = draw(*args)
    write_figure(out / name, fig)
    return name


# --- small helpers ----------------------------------------------------------------------


def _column(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def _floats(values) -> np.ndarray:
    """Any numeric Arrow array (or sequence) as float64 numpy, nulls as NaN."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(values)
    return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)


def _count_true(values: pa.Array) -> int:
    return int(pc.sum(values.cast(pa.int64())).as_py() or 0)


def _is_string(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def _escape(text: str) -> str:
    """Make text safe inside a Markdown table cell or heading."""
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _shorten_middle(text: str, width: int) -> str:
    """Keep both ends (a signal's name ends in what distinguishes it)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def _int(n: int) -> str:
    return f"{n:,}"


def _pct(share: float) -> str:
    return f"{100 * share:.2f}%"


def _num(x: float) -> str:
    """Integers in full with thousands separators; others to four significant digits."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == round(x) and abs(x) < 1e15:
        return f"{int(round(x)):,}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    return f"{x:.4g}"
