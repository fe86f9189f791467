"""The dataset quality card that ``curate inspect`` writes.

:func:`write_quality_card` turns a joined score table (``id`` plus
``<scorer>_<signal>`` columns) into ``card.md`` and a handful of PNG plots in one
folder. It recognises columns by name and type:

* rule set: a bool ``<x>_keep`` column with a string ``<x>_reason`` sibling;
* dedup: a bool ``<x>_duplicate`` column, optionally an ``<x>_cluster`` column;
* language: a string ``<x>_language`` column, optionally ``<x>_confidence``;
* numeric score: any integer or float column except ``id`` and ``*_cluster``.

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
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.io import write_figure, write_text
from curate.registry import SCORERS
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


def write_quality_card(scores: pa.Table, out_dir: str | Path, *, title: str,
                       text_lengths: pa.Array | pa.ChunkedArray | None = None,
                       source_info: dict | None = None) -> Path:
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
        lines += _distribution_section(numeric, out)
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
    return "dynamics" if SCORERS[scorer].startswith("scorers.dynamics") else "text"


def _scorers_section(scores: pa.Table) -> list[str]:
    """Which registered scorers have columns in the table, and which do not."""
    names = [c for c in scores.column_names if c != "id"]
    present: dict[str, int] = {}
    claimed: set[str] = set()
    # Longest name first, so a scorer whose name extends another's claims its columns.
    for scorer in sorted(SCORERS, key=len, reverse=True):
        cols = [c for c in names if c.startswith(scorer + "_") and c not in claimed]
        if cols:
            present[scorer] = len(cols)
            claimed.update(cols)
    # Absent scorers of the kinds present: text signals for text, difficulty scores
    # from training dynamics for labelled examples (all kinds when none is present).
    kinds = {_kind(s) for s in present} or {_kind(s) for s in SCORERS}
    absent = sorted(s for s in SCORERS if s not in present and _kind(s) in kinds)
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
        name = _save(out, "length_histogram.png", _length_figure, positive, empty)
        lines += ["", f"![Document length histogram]({name})"]
    return lines + [""]


def _dedup_section(scores: pa.Table) -> list[str]:
    lines = ["## Duplicates", ""]
    prefixes = [c[: -len("_duplicate")] for c in scores.column_names
                if c.endswith("_duplicate") and pa.types.is_boolean(scores.schema.field(c).type)]
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
    prefixes = [c[: -len("_language")] for c in scores.column_names
                if c.endswith("_language") and _is_string(scores.schema.field(c).type)]
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
        percent = 100 * counts[: len(top)] / n
        name = _save(out, f"language_{_slug(prefix)}.png", _bar_figure,
                     labels[: len(percent)], percent, "% of documents",
                     f"{prefix}: top languages")
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
    keep = _column(scores, f"{prefix}_keep")
    dropped = pc.equal(keep, False).fill_null(False)
    reasons = pc.filter(_column(scores, f"{prefix}_reason"), dropped).fill_null("(no reason)")
    n_dropped = len(reasons)
    if n_dropped == 0:
        return lines + ["No documents dropped.", ""]
    labels, counts = _value_counts(reasons)
    n = scores.num_rows
    rows = [[f"`{_escape(label)}`", _int(int(c)), _pct(c / n_dropped), _pct(c / n)]
            for label, c in zip(labels, counts, strict=True)]
    lines += markdown_table(["reason", "dropped", "share of dropped", "share of all"], rows)
    shown = min(TOP_REASONS_PLOTTED, len(labels))
    name = _save(out, f"drop_reasons_{_slug(prefix)}.png", _bar_figure, labels[:shown],
                 counts[:shown], "documents dropped", f"{prefix}: drop reasons")
    return lines + ["", f"![{prefix} drop reasons]({name})", ""]


def _distribution_section(numeric: dict[str, np.ndarray], out: Path) -> list[str]:
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
    plot = _save(out, "score_histograms.png", _histogram_grid, numeric)
    return lines + ["", f"![Score histograms]({plot})", ""]


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


def _length_figure(positive: np.ndarray, n_empty: int):
    fig = _new_figure(7, 3.5)
    ax = fig.add_subplot()
    lo, hi = positive.min(), positive.max()
    bins = np.geomspace(lo, hi, HIST_BINS + 1) if hi > lo else np.array([lo * 0.9, hi * 1.1])
    ax.hist(positive, bins=bins, color="#4C72B0")
    ax.set_xscale("log")
    ax.set_xlabel("characters per document (log scale)")
    ax.set_ylabel("documents")
    note = f" ({n_empty:,} with 0 characters not shown)" if n_empty else ""
    ax.set_title("Document length" + note)
    return fig


def _bar_figure(labels: list[str], values: np.ndarray, xlabel: str, title: str):
    """Horizontal bars, first label on top."""
    fig = _new_figure(7, 1.2 + 0.32 * len(labels))
    ax = fig.add_subplot()
    positions = np.arange(len(labels))
    ax.barh(positions, values, color="#4C72B0")
    ax.set_yticks(positions, [_shorten(label, 40) for label in labels])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return fig


def _histogram_grid(numeric: dict[str, np.ndarray]):
    ncols = min(GRID_COLUMNS, len(numeric))
    nrows = math.ceil(len(numeric) / ncols)
    fig = _new_figure(4.2 * ncols, 2.8 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, values) in zip(axes, numeric.items(), strict=False):
        finite = values[np.isfinite(values)]
        missing = len(values) - len(finite)
        title = _shorten(name, 38) + (f"\n({missing:,} null/NaN ignored)" if missing else "")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        if len(finite) == 0:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        bins, log_x = _hist_bins(finite)
        ax.hist(finite, bins=bins, color="#4C72B0")
        if log_x:
            ax.set_xscale("log")
            ax.set_xlabel("log scale", fontsize=8)
    for ax in axes[len(numeric):]:
        ax.set_visible(False)
    return fig


def _hist_bins(finite: np.ndarray) -> tuple[np.ndarray | int, bool]:
    """Bins for one score column and whether to draw it on a log x axis.

    Small integer ranges get one bin per integer; positive columns spanning three
    or more decades (perplexity) get log-spaced bins.
    """
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        return np.array([lo - 0.5, hi + 0.5]), False
    if np.all(finite == np.round(finite)) and hi - lo <= HIST_BINS:
        return np.arange(lo, hi + 2) - 0.5, False
    if lo > 0 and hi / lo >= 1000:
        return np.geomspace(lo, hi, HIST_BINS + 1), True
    return HIST_BINS, False


def _heatmap_figure(names: list[str], rho: np.ndarray):
    k = len(names)
    side = max(4.5, 0.55 * k + 2.5)
    fig = _new_figure(side + 1, side)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(rho), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [_shorten(n, 32) for n in names]
    ax.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    if k <= ANNOTATE_HEATMAP_MAX:
        for i in range(k):
            for j in range(k):
                if np.isfinite(rho[i, j]):
                    color = "white" if abs(rho[i, j]) > 0.6 else "black"
                    ax.text(j, i, f"{rho[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color=color)
    fig.colorbar(image, ax=ax, label="Spearman rho", shrink=0.8)
    ax.set_title("Spearman rank correlation")
    return fig


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
