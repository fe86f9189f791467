"""The comparison card that ``curate inspect A --against B`` writes.

:func:`write_comparison_card` puts the score tables of two datasets scored with the
same scorers side by side in one ``card.md``, with PNG plots in the same folder, so
that what sets them apart (a pool before and after curation, two sources) is read as
a measured difference. Every table has a column for A, one for B and their
**difference**, always B - A (rates in percentage points, "pp"):

* size: documents, total characters and UTF-8 bytes, mean length, empty documents,
  length percentiles, and both length histograms on the same bins;
* duplicates: each dedup scorer's duplicate rate (exact duplicates for ``exact_dup``,
  near duplicates for ``minhash``);
* language: each language ID scorer's top languages (the top of either side) and
  their shares;
* rule sets: the keep rate of each rule set and of all together, and per drop reason
  the share of all documents it dropped;
* score distributions: the median and mean of every numeric column, and one grid of
  histograms with both datasets on the same bins, each as a share of its own
  documents, rule thresholds dashed as on the quality card.

Columns are recognised as in :mod:`curate.card`, whose helpers (bins, language and
reason counts, rule-set detection, thresholds, figures) this module reuses. Nothing is
joined across the two tables: their ids are separate spaces. A column or scorer found
on one side only is shown as "not scored" on the other. As with the quality card the
output is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.card import (
    CARD_NAME,
    HISTOGRAM_AXES,
    LENGTH_PERCENTILES,
    TOP_LANGUAGES,
    TOP_REASONS_PLOTTED,
    _bar_figure,
    _column,
    _count_true,
    _dedup_sets,
    _drop_reasons,
    _escape,
    _floats,
    _histogram_grid,
    _int,
    _language_counts,
    _language_sets,
    _length_figure,
    _num,
    _numeric_columns,
    _pct,
    _rule_sets,
    _save,
    _slug,
    _threshold_lines,
    _threshold_marks,
    _unknown_params,
)
from curate.core.errors import CurateError
from curate.io import write_text
from curate.reporting import markdown_table

NOT_SCORED = "not scored"


@dataclass(frozen=True)
class _Side:
    """One dataset of the comparison."""

    label: str
    scores: pa.Table
    chars: np.ndarray | None  #: characters per document, NaN for a null text
    nbytes: np.ndarray | None  #: UTF-8 bytes per document, NaN for a null text

    @property
    def n(self) -> int:
        return self.scores.num_rows


def write_comparison_card(scores_a: pa.Table, scores_b: pa.Table, out_dir: str | Path, *,
                          labels: tuple[str, str], texts=None,
                          source_info: tuple[dict, dict] | None = None,
                          scorer_params: dict[str, dict] | None = None,
                          title: str | None = None) -> Path:
    """Write ``<out_dir>/card.md`` comparing two datasets, plus PNG plots beside it;
    return the path of card.md.

    Args:
        scores_a, scores_b: the joined score tables of A and B, ``n_a`` and ``n_b``
            rows: ``id`` plus score columns, from the same scorers. Ids are never
            matched across them; a column found on one side only is reported as not
            scored on the other.
        out_dir: folder for the card and its plots (created if missing). Existing
            files of the same names are replaced atomically; others are left alone.
        labels: ``(A's name, B's name)`` as the card's tables and legends show them:
            two distinct, non-empty strings.
        texts: ``(A's texts, B's texts)``, each ``n_a`` / ``n_b`` strings (Arrow
            arrays, chunked or not) in the order of its table; nulls are counted as
            documents without a length. Without it the size section reports only the
            document counts.
        source_info: ``(A's facts, B's facts)``, key/value facts about each source
            (path, fingerprint, ...), shown side by side in A's order, then B's.
        scorer_params: the parameters the scorers ran with, ``{scorer name: params}``
            (the same scorers on both sides). Rule thresholds are drawn at these
            values, else at the scorers' defaults (and the card says so).
        title: the card's heading (default ``Comparison card: <A> vs <B>``).

    Raises:
        CurateError: if a side has no documents: there is nothing to compare.
        ValueError: if ``labels`` are not two distinct non-empty names, or a side's
            texts do not have one value per row of its table.
    """
    if len(labels) != 2 or not all(labels) or labels[0] == labels[1]:
        raise ValueError(f"labels must be two distinct non-empty names, not {labels!r}")
    sides = [_side(label, scores, text) for label, scores, text
             in zip(labels, (scores_a, scores_b), texts or (None, None), strict=True)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    heading = title or f"Comparison card: {labels[0]} vs {labels[1]}"
    lines = [f"# {_escape(heading)}", "",
             f"**A** = `{_escape(labels[0])}`, **B** = `{_escape(labels[1])}`, scored with "
             "the same scorers. Each number describes one dataset (their ids are never "
             "matched); **difference** is B - A, for rates in percentage points (pp).", ""]
    lines += _source_section(source_info, labels)
    lines += _columns_section(sides)
    lines += _size_section(sides, out)
    lines += _dedup_section(sides)
    lines += _language_section(sides, out)
    lines += _rule_set_section(sides, out)
    lines += _distribution_section(sides, out, scorer_params)
    card = out / CARD_NAME
    write_text(card, "\n".join(lines).rstrip("\n") + "\n")
    return card


def side_labels(spec_a: str, spec_b: str, given: str | None = None) -> tuple[str, str]:
    """The names of the two sides: ``given`` as ``"A_NAME,B_NAME"``, else the file
    names of the two dataset specs (the whole specs if those are the same, and
    " (A)" / " (B)" appended if the specs are the same too).

    Raises:
        CurateError: if ``given`` is not two distinct non-empty names.
    """
    if given is not None:
        names = [part.strip() for part in given.split(",")]
        if len(names) != 2 or not all(names) or names[0] == names[1]:
            raise CurateError(f"--labels {given!r}: expected two different names separated "
                              "by a comma, e.g. --labels raw,curated")
        return names[0], names[1]
    names = [Path(spec.rstrip("/")).name or spec for spec in (spec_a, spec_b)]
    if names[0] != names[1]:
        return names[0], names[1]
    if spec_a != spec_b:
        return spec_a, spec_b
    return f"{spec_a} (A)", f"{spec_b} (B)"


def _side(label: str, scores: pa.Table, text) -> _Side:
    if scores.num_rows == 0:
        raise CurateError(f"{label}: no documents, so there is nothing to compare")
    if text is None:
        return _Side(label, scores, None, None)
    if len(text) != scores.num_rows:
        raise ValueError(f"{label}: {len(text)} texts but the score table has "
                         f"{scores.num_rows} rows")
    return _Side(label, scores, _floats(pc.utf8_length(text)), _floats(pc.binary_length(text)))


# --- sections ---------------------------------------------------------------------------


def _source_section(source_info: tuple[dict, dict] | None, labels) -> list[str]:
    if not source_info:
        return []
    keys = dict.fromkeys([*source_info[0], *source_info[1]])
    rows = [[_escape(str(k)), *(f"`{_escape(str(info[k]))}`" if k in info else ""
                                for info in source_info)] for k in keys]
    return ["## Sources", ""] + markdown_table(["field", *_headers(labels)], rows) + [""]


def _columns_section(sides: list[_Side]) -> list[str]:
    a, b = ([c for c in s.scores.column_names if c != "id"] for s in sides)
    both = [c for c in a if c in b]
    lines = ["## Columns", "", f"- Score columns on both sides: {_int(len(both))}."]
    for side, other, cols in ((sides[0], sides[1], a), (sides[1], sides[0], b)):
        only = [f"`{c}`" for c in cols if c not in both]
        if only:
            lines.append(f"- Only in `{_escape(side.label)}` ({NOT_SCORED} in "
                         f"`{_escape(other.label)}`): " + ", ".join(only))
    return lines + [""]


def _size_section(sides: list[_Side], out: Path) -> list[str]:
    a, b = sides
    labels = [s.label for s in sides]
    lines = ["## Size", ""]
    rows = [["documents", _int(a.n), _int(b.n), _change(a.n, b.n)]]
    if a.chars is None or b.chars is None:
        lines += markdown_table(["measure", *_headers(labels), "difference"], rows)
        return lines + ["", "Text lengths: not provided.", ""]
    chars = [s.chars[np.isfinite(s.chars)] for s in sides]
    nbytes = [s.nbytes[np.isfinite(s.nbytes)] for s in sides]
    rows.append(_measure_row("total characters", [int(c.sum()) for c in chars], _change))
    rows.append(_measure_row("total bytes (UTF-8)", [int(c.sum()) for c in nbytes], _change))
    means = [float(c.mean()) if len(c) else float("nan") for c in chars]
    rows.append(_measure_row("mean length (characters)", means, _delta))
    empty = [int((c == 0).sum()) for c in chars]
    rows.append(_measure_row("empty documents (0 characters)", empty, _delta))
    missing = [s.n - len(c) for s, c in zip(sides, chars, strict=True)]
    if any(missing):
        rows.append(_measure_row("documents without a length (null)", missing, _delta))
    lines += markdown_table(["measure", *_headers(labels), "difference"], rows)
    if not all(len(c) for c in chars):
        return lines + [""]
    stats = [[c.min(), *np.percentile(c, LENGTH_PERCENTILES), c.max()] for c in chars]
    rows = [[f"`{_escape(s.label)}`", *(_num(float(v)) for v in values)]
            for s, values in zip(sides, stats, strict=True)]
    rows.append(["difference", *(_delta(float(x), float(y))
                                 for x, y in zip(*stats, strict=True))])
    headers = ["dataset", "min"] + [f"p{p}" for p in LENGTH_PERCENTILES] + ["max"]
    lines += ["", "Length distribution (characters):", ""] + markdown_table(headers, rows)
    positive = [c[c > 0] for c in chars]
    if all(len(p) for p in positive):
        name = _save(out, "length_histogram.png", _length_figure, positive, empty, labels)
        lines += ["", f"![Document length histograms]({name})", "",
                  "Both datasets on the same bins, each as a share of its documents."]
    return lines + [""]


def _dedup_section(sides: list[_Side]) -> list[str]:
    lines = ["## Duplicates", ""]
    prefixes = _union(*(_dedup_sets(s.scores) for s in sides))
    if not prefixes:
        return lines + ["_No dedup scores on either side (no bool `<scorer>_duplicate` "
                        "column)._", ""]
    rows = []
    for prefix in prefixes:
        counts = [_duplicates(s.scores, prefix) for s in sides]
        cells = [cell for c, s in zip(counts, sides, strict=True)
                 for cell in (_count_cell(c), _pct(c[0] / s.n) if c else NOT_SCORED)]
        shares = [c[0] / s.n if c else None for c, s in zip(counts, sides, strict=True)]
        rows.append([f"`{prefix}`", *cells, _points(*shares)])
    headers = ["scorer"] + [f"{h}: {what}" for h in _headers([s.label for s in sides])
                            for what in ("duplicates", "duplicate rate")] + ["difference"]
    lines += markdown_table(headers, rows)
    return lines + ["", "Duplicate rate: share of a dataset's documents marked duplicate of "
                        "another document of the same dataset (exact duplicates for "
                        "`exact_dup`, near duplicates for `minhash`).", ""]


def _language_section(sides: list[_Side], out: Path) -> list[str]:
    lines = ["## Language", ""]
    prefixes = _union(*(_language_sets(s.scores) for s in sides))
    if not prefixes:
        return lines + ["_No language ID scores on either side (no string "
                        "`<scorer>_language` column)._", ""]
    for prefix in prefixes:
        counts = [_languages(s.scores, prefix) for s in sides]
        top = _union(*(list(c)[:TOP_LANGUAGES] for c in counts if c is not None))
        top.sort(key=lambda lang: [-(c or {}).get(lang, 0) for c in counts] + [lang])
        rows = [_share_row(f"`{_escape(lang)}`", [_get(c, lang) for c in counts], sides)
                for lang in top]
        rest = [None if c is None else sum(v for k, v in c.items() if k not in top)
                for c in counts]
        if any(rest):
            rows.append(_share_row("other", rest, sides))
        distinct = ", ".join(f"`{_escape(s.label)}` {_int(len(c))}" if c else
                             f"`{_escape(s.label)}` {NOT_SCORED}"
                             for s, c in zip(sides, counts, strict=True))
        lines += [f"`{prefix}`: distinct labels: {distinct}.", ""]
        lines += markdown_table(_share_headers("language", sides), rows)
        shares = _share_series([None if c is None else [c.get(lang, 0) for lang in top]
                                + ([r] if any(rest) else [])
                                for c, r in zip(counts, rest, strict=True)], sides)
        names = top + (["other"] if any(rest) else [])
        plot = _save(out, f"language_{_slug(prefix)}.png", _bar_figure, names, shares,
                     "share of documents (%)", f"{prefix}: languages", _names(sides, counts))
        lines += ["", f"![{prefix} language mix]({plot})", ""]
    return lines


def _rule_set_section(sides: list[_Side], out: Path) -> list[str]:
    lines = ["## Rule sets", ""]
    per_side = [_rule_sets(s.scores) for s in sides]
    prefixes = _union(*per_side)
    if not prefixes:
        return lines + ["_No rule sets on either side (no bool `<x>_keep` column with a "
                        "`<x>_reason` sibling)._", ""]
    rows = []
    for prefix in prefixes:
        kept = [_kept(s.scores, prefix) if prefix in p else None
                for s, p in zip(sides, per_side, strict=True)]
        cells = [cell for k in kept for cell in (
            f"{_int(k[0])} of {_int(k[1])}" if k else NOT_SCORED,
            (_pct(k[0] / k[1]) if k[1] else "n/a") if k else NOT_SCORED)]
        rates = [k[0] / k[1] if k and k[1] else None for k in kept]
        rows.append([f"`{prefix}`", *cells, _points(*rates)])
    common = [p for p in prefixes if all(p in ps for ps in per_side)]
    if len(common) > 1:
        kept = [_all_kept(s.scores, common) for s in sides]
        cells = [cell for k, s in zip(kept, sides, strict=True)
                 for cell in (f"{_int(k)} of {_int(s.n)}", _pct(k / s.n))]
        rows.append([f"**combined** ({len(common)} rule sets)", *cells,
                     _points(*(k / s.n for k, s in zip(kept, sides, strict=True)))])
    headers = ["rule set"] + [f"{h}: {what}" for h in _headers([s.label for s in sides])
                              for what in ("kept", "keep rate")] + ["difference"]
    lines += markdown_table(headers, rows)
    lines += ["", "Keep rate: kept of the documents the rule set scored."
              + (" Combined: kept by every rule set that both sides have, of all documents "
                 "(unscored ones count as dropped)." if len(common) > 1 else ""), ""]
    for prefix in prefixes:
        lines += _reason_block(sides, prefix, per_side, out)
    return lines


def _reason_block(sides: list[_Side], prefix: str, per_side: list[list[str]],
                  out: Path) -> list[str]:
    lines = [f"### Drop reasons: `{prefix}`", ""]
    counts = [dict(zip(*_drop_reasons(s.scores, prefix), strict=True)) if prefix in p else None
              for s, p in zip(sides, per_side, strict=True)]
    reasons = _union(*(list(c) for c in counts if c is not None))
    if not reasons:
        return lines + ["No documents dropped on either side.", ""]
    reasons.sort(key=lambda r: [-(c or {}).get(r, 0) for c in counts] + [r])
    rows = [_share_row(f"`{_escape(r)}`", [_get(c, r) for c in counts], sides)
            for r in reasons]
    lines += markdown_table(_share_headers("reason", sides, "dropped", "share of all"), rows)
    shown = reasons[:TOP_REASONS_PLOTTED]
    shares = _share_series([[c.get(r, 0) for r in shown] if c is not None else None
                            for c in counts], sides)
    plot = _save(out, f"drop_reasons_{_slug(prefix)}.png", _bar_figure, shown, shares,
                 "share of all documents dropped (%)", f"{prefix}: drop reasons",
                 _names(sides, counts))
    return lines + ["", "Share of all: the reason's drops over all of the dataset's "
                        "documents.", "", f"![{prefix} drop reasons]({plot})", ""]


def _distribution_section(sides: list[_Side], out: Path,
                          scorer_params: dict[str, dict] | None) -> list[str]:
    lines = ["## Score distributions", ""]
    per_side = [_numeric_columns(s.scores) for s in sides]
    columns = _union(*(list(n) for n in per_side))
    if not columns:
        return lines + ["_No numeric score columns on either side._", ""]
    rows = []
    for name in columns:
        stats = [_median_mean(n.get(name)) for n in per_side]
        cells = [cell for s in stats for cell in
                 ((_num(s[0]), _num(s[1])) if s else (NOT_SCORED, NOT_SCORED))]
        diff = _delta(stats[0][1], stats[1][1]) if all(stats) else "n/a"
        rows.append([f"`{name}`", *cells, diff])
    headers = ["column"] + [f"{h}: {what}" for h in _headers([s.label for s in sides])
                            for what in ("median", "mean")] + ["difference (mean)"]
    lines += markdown_table(headers, rows)
    rule_sets = _union(*(_rule_sets(s.scores) for s in sides))
    marks = _threshold_marks(rule_sets, scorer_params, columns)
    unknown = _unknown_params(rule_sets, scorer_params, marks)
    numeric = {name: [n.get(name, np.empty(0)) for n in per_side] for name in columns}
    plot = _save(out, "score_histograms.png", _histogram_grid, numeric, marks,
                 [s.label for s in sides])
    lines += ["", f"![Score histograms]({plot})", "",
              "Both datasets on the same bins, each as a share of its documents with a "
              "finite value (null and NaN values are ignored and counted in the panel's "
              "title). " + HISTOGRAM_AXES]
    return lines + _threshold_lines(marks, unknown) + [""]


# --- per-side counts --------------------------------------------------------------------


def _duplicates(scores: pa.Table, prefix: str) -> tuple[int, int] | None:
    """(documents marked duplicate, unscored documents), or None without the column."""
    if prefix not in _dedup_sets(scores):
        return None
    dup = _column(scores, f"{prefix}_duplicate")
    return _count_true(dup), dup.null_count


def _languages(scores: pa.Table, prefix: str) -> dict[str, int] | None:
    """Documents per language label, most frequent first, or None without the column."""
    if prefix not in _language_sets(scores):
        return None
    labels, counts, _ = _language_counts(scores, prefix)
    return {label: int(c) for label, c in zip(labels, counts, strict=True)}


def _kept(scores: pa.Table, prefix: str) -> tuple[int, int]:
    """(documents kept, documents scored) by rule set ``prefix``."""
    keep = _column(scores, f"{prefix}_keep")
    return _count_true(keep), len(keep) - keep.null_count


def _all_kept(scores: pa.Table, prefixes: list[str]) -> int:
    """Documents that every rule set in ``prefixes`` keeps (null: dropped)."""
    kept = np.ones(scores.num_rows, dtype=bool)
    for prefix in prefixes:
        kept &= _column(scores, f"{prefix}_keep").fill_null(False).to_numpy(
            zero_copy_only=False)
    return int(kept.sum())


def _median_mean(values: np.ndarray | None) -> tuple[float, float] | None:
    """Median and mean of the finite values (NaN when there are none), or None."""
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    return float(np.median(finite)), float(finite.mean())


# --- table cells ------------------------------------------------------------------------


def _headers(labels) -> list[str]:
    return [f"`{_escape(label)}`" for label in labels]


def _share_headers(first: str, sides: list[_Side], count: str = "documents",
                   share: str = "share") -> list[str]:
    return [first] + [f"{h}: {what}" for h in _headers([s.label for s in sides])
                      for what in (count, share)] + ["difference"]


def _share_row(label: str, counts: list[int | None], sides: list[_Side]) -> list[str]:
    """A label, then per side its count and share of the side's documents (or "not
    scored" for a side without the scorer, ``None``), then the difference in points."""
    shares = [None if c is None else c / s.n for c, s in zip(counts, sides, strict=True)]
    cells = [cell for c, sh in zip(counts, shares, strict=True)
             for cell in ((NOT_SCORED, NOT_SCORED) if c is None else (_int(c), _pct(sh)))]
    return [label, *cells, _points(*shares)]


def _share_series(counts: list[list[int] | None], sides: list[_Side]) -> list:
    """Per side, counts as percentages of its documents, to two decimals as the tables
    print them (None stays None)."""
    return [None if c is None else np.round(100 * np.asarray(c, dtype=float) / s.n, 2)
            for c, s in zip(counts, sides, strict=True)]


def _names(sides: list[_Side], counts: list) -> list[str]:
    """Legend names: a side without the scorer says so."""
    return [s.label + ("" if c is not None else f" ({NOT_SCORED})")
            for s, c in zip(sides, counts, strict=True)]


def _get(counts: dict[str, int] | None, key: str) -> int | None:
    """``counts[key]`` (0 when absent), or None for a side without the scorer."""
    return None if counts is None else counts.get(key, 0)


def _count_cell(counts: tuple[int, int] | None) -> str:
    if counts is None:
        return NOT_SCORED
    return _int(counts[0]) + (f" ({_int(counts[1])} unscored)" if counts[1] else "")


def _measure_row(name: str, values: list, diff) -> list[str]:
    return [name, *(_num(float(v)) for v in values), diff(*values)]


def _delta(a: float, b: float) -> str:
    """B - A with its sign ("n/a" when either is not finite)."""
    d = float(b) - float(a)
    if not np.isfinite(d):
        return "n/a"
    return "+" + _num(d) if d > 0 else _num(d)


def _change(a: float, b: float) -> str:
    """B - A with its sign, and relative to A where A is not 0."""
    return _delta(a, b) + (f" ({(b - a) / a:+,.2%})" if a else "")


def _points(a: float | None, b: float | None) -> str:
    """The difference of two shares in percentage points ("n/a" when one is missing)."""
    if a is None or b is None:
        return "n/a"
    return f"{100 * (b - a):+.2f} pp"


def _union(*lists: list[str]) -> list[str]:
    """The items of every list, each once, in the order first seen."""
    return list(dict.fromkeys(item for items in lists for item in items))
