"""FineWeb's line-level quality rules (Penedo et al. 2024), as DataTrove 0.10.1 has them.

Reproduces ``FineWebQualityFilter``: lines are ``text.split("\\n")`` without whitespace-only
lines (not stripped). A document is rejected when too few lines end in terminal
punctuation (``line_punct_ratio``), too many lines are short (``short_line_ratio``), too
many characters sit in repeated lines (``char_dup_ratio``), or it has too many newlines
per word token (``list_ratio``); a document without non-blank lines is ``empty``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer, rule_columns
from curate.core.validate import boolean, fraction, non_negative_int, number, string, string_list
from scorers.text.columns import (
    count,
    drop,
    duplicates,
    elements,
    last_chars,
    lengths,
    newline_pieces,
    sizes,
    sum_per_list,
    system_allocator,
    text_array,
)
from scorers.text.tokenize import TERMINAL_PUNCTUATION, batch_tokens


@register_scorer
class FineWebQuality(Scorer):
    """FineWeb's quality rules.

    Output columns: ``fineweb_quality_keep``, ``fineweb_quality_reason`` and raw signals
    ``line_punct_ratio`` (lines ending in one of ``stop_chars``), ``short_line_ratio``
    (lines of at most ``short_line_length`` characters), ``char_dup_ratio`` (characters in
    repeated lines over characters without newlines) and ``list_ratio`` (newlines per word
    token); all null for an empty document.

    Defaults are DataTrove's: ``line_punct_thr=0.12`` (``line_punct_exclude_zero=False``),
    ``stop_chars`` = DataTrove's terminal punctuation, ``short_line_thr=0.67`` with
    ``short_line_length=30``, ``char_duplicates_ratio=0.01``, ``new_line_ratio=0.3``.
    ``stop_chars`` is a list of line endings or the text ``.;!;?``.

    ``list_ratio`` is the one signal that needs word tokens, the costly part. By default
    it is computed, as DataTrove does, only for the documents that pass the three other
    checks (null for the others); ``all_signals=True`` computes it for every document.
    Keep/drop decisions and the other signals are the same either way.
    """

    name = "fineweb_quality"
    #: Signal (column suffix) -> the constructor parameters that bound it (the quality card
    #: draws them on the signal's histogram).
    thresholds = {"line_punct_ratio": ("line_punct_thr",),
                  "short_line_ratio": ("short_line_thr",),
                  "char_dup_ratio": ("char_duplicates_ratio",),
                  "list_ratio": ("new_line_ratio",)}
    kind = "rule"
    directions = {"fineweb_quality_keep": EASIER}
    primary = "fineweb_quality_keep"

    def __init__(self, line_punct_thr: float = 0.12, line_punct_exclude_zero: bool = False,
                 stop_chars: tuple[str, ...] | None = None, short_line_thr: float = 0.67,
                 short_line_length: int = 30, char_duplicates_ratio: float = 0.01,
                 new_line_ratio: float = 0.3, all_signals: bool = False,
                 text_column: str = "text"):
        owner = self.name
        self.line_punct_thr = fraction(owner, "line_punct_thr", line_punct_thr)
        self.line_punct_exclude_zero = boolean(owner, "line_punct_exclude_zero",
                                               line_punct_exclude_zero)
        stop_chars = string_list(owner, "stop_chars", stop_chars, optional=True)
        self.stop_chars = None if stop_chars is None else tuple(stop_chars)
        self.short_line_thr = fraction(owner, "short_line_thr", short_line_thr)
        self.short_line_length = non_negative_int(owner, "short_line_length", short_line_length)
        self.char_duplicates_ratio = fraction(owner, "char_duplicates_ratio",
                                              char_duplicates_ratio)
        # newlines per word token can exceed 1, so this bound is not a fraction
        self.new_line_ratio = number(owner, "new_line_ratio", new_line_ratio, minimum=0)
        self.all_signals = boolean(owner, "all_signals", all_signals)
        self.text_column = string(owner, "text_column", text_column)
        ends = sorted(TERMINAL_PUNCTUATION) if self.stop_chars is None else self.stop_chars
        #: line endings by length: a line ends with one if its last characters are in the set
        self._endings = {n: pa.array([e for e in ends if len(e) == n], pa.string())
                         for n in set(map(len, ends))}

    def signals(self, texts: pa.Array) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(signal name -> one float per document, has_lines, listed): a signal is only
        meaningful where the document has a non-blank line (``has_lines``), the list ratio
        only where it was computed (``listed``); elsewhere the values are NaN."""
        pieces, ids = newline_pieces(texts)
        blank = pc.or_(pc.utf8_is_space(elements(pieces)),
                       pc.equal(pc.binary_length(elements(pieces)), 0)).to_numpy(
            zero_copy_only=False)
        lines = drop(pieces, blank)
        n = np.maximum(sizes(lines), 1)
        newlines = count(texts, "\n")
        values = {
            "line_punct_ratio": sum_per_list(self._ends_with_stop(elements(lines)), lines) / n,
            "short_line_ratio": sum_per_list(lengths(elements(lines)) <= self.short_line_length,
                                             lines) / n,
            "char_dup_ratio": duplicates(lines, ids[~blank])[1]
            / np.maximum(lengths(texts) - newlines, 1),
            "list_ratio": np.full(len(texts), np.nan),
        }
        has_lines = sizes(lines) > 0
        listed = has_lines.copy()
        if not self.all_signals:  # only where no earlier check rejects, as in DataTrove
            for _, rejected in self._checks(values)[:-1]:
                listed &= ~rejected
        # the whole batch's tokens when another rule set of the same run made them, or when
        # they are all needed; else only those of the listed documents
        tokens = batch_tokens.peek(texts)
        if tokens is None and listed.all():
            tokens = batch_tokens(texts)
        counts = (batch_tokens(texts.filter(pa.array(listed))).counts if tokens is None
                  else tokens.counts[listed])
        values["list_ratio"][listed] = newlines[listed] / np.maximum(counts, 1)
        return values, has_lines, listed

    def _checks(self, values: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        """DataTrove's checks in order: (reason, per document whether it rejects); a NaN
        signal rejects nothing."""
        punct = values["line_punct_ratio"]
        low_punct = punct < self.line_punct_thr
        if self.line_punct_exclude_zero:
            low_punct &= punct != 0
        return [("line_punct_ratio", low_punct),
                ("short_line_ratio", values["short_line_ratio"] > self.short_line_thr),
                ("char_dup_ratio", values["char_dup_ratio"] > self.char_duplicates_ratio),
                ("list_ratio", values["list_ratio"] > self.new_line_ratio)]

    def _ends_with_stop(self, lines: pa.Array) -> np.ndarray:
        """Whether each line ends with one of ``stop_chars``."""
        hit = np.zeros(len(lines), bool)
        for n, endings in self._endings.items():
            if n == 1:
                hit |= np.isin(last_chars(lines), [ord(e) for e in endings.to_pylist()])
                continue
            tail = pc.utf8_slice_codeunits(lines, start=-n) if n else pc.utf8_slice_codeunits(
                lines, start=0, stop=0)
            hit |= pc.is_in(tail, value_set=endings).to_numpy(zero_copy_only=False)
        return hit

    @system_allocator
    def score_batch(self, batch: pa.Table) -> pa.Table:
        values, has_lines, listed = self.signals(text_array(batch, self.text_column))
        reasons = np.where(has_lines, None, "empty").astype(object)
        kept = has_lines.copy()  # no check has rejected it yet
        for reason, rejected in self._checks(values):
            reasons[kept & rejected] = reason
            kept &= ~rejected
        signals = {name: pa.array(v, pa.float64(), mask=~(listed if name == "list_ratio"
                                                          else has_lines))
                   for name, v in values.items()}
        return rule_columns(self.name, kept, reasons, signals)
