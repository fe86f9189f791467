"""C4's line cleaning and document rules (Raffel et al. 2020), as DataTrove 0.10.1 has them.

Reproduces ``C4QualityFilter``: each line (``str.splitlines``) is stripped and dropped when
it has a word over ``max_word_length`` characters (before citations are removed), does
not end in ``. ? ! " '`` or ends in ``...``, has fewer than ``min_words_per_line``
whitespace words, mentions "javascript" or a cookie/terms-of-use phrase. A kept line with
"lorem ipsum" or ``{`` rejects the whole document (``lorem_ipsum``, ``curly_bracket``);
fewer than ``min_num_sentences`` sentences in the kept lines (spaCy sentencizer rules,
see :func:`scorers.text.tokenize.count_sentences`) rejects it as ``too_few_sentences``.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer, rule_columns
from curate.core.validate import boolean, integer, non_negative_int, string
from scorers.text.columns import (
    SPACE,
    contains,
    drop,
    elements,
    last_chars,
    lengths,
    owner,
    regroup,
    sizes,
    split_whitespace,
    splitlines,
    sum_per_list,
    system_allocator,
    text_array,
)
from scorers.text.tokenize import count_sentences_batch, sentence_parts

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                  "use of cookies", "use cookies")


@register_scorer
class C4Quality(Scorer):
    """C4's quality rules; also cleans text (:meth:`transform`).

    Output columns: ``c4_quality_keep``, ``c4_quality_reason`` and raw signals
    ``sentences`` (in the kept lines), ``cleaned_length`` (characters of the cleaned text),
    ``lines_kept`` and ``lines_removed``. Unlike DataTrove, which stops at the first
    ``lorem ipsum`` or ``{`` line, every line is examined; such a line counts as removed,
    and the first one found sets the reason.

    Parameters and defaults are DataTrove's: ``split_paragraph=True`` (lines; ``False``
    splits into sentences and joins kept ones with a space), ``remove_citations=True``,
    ``filter_no_terminal_punct=True``, ``min_num_sentences=5`` (-1 disables),
    ``min_words_per_line=3``, ``max_word_length=1000`` (-1 disables) and the lorem-ipsum,
    javascript, curly-bracket and policy switches on.
    """

    name = "c4_quality"
    #: Signal (column suffix) -> the constructor parameters that bound it (the quality card
    #: draws them on the signal's histogram).
    thresholds = {"sentences": ("min_num_sentences",)}
    kind = "rule"
    directions = {"c4_quality_keep": EASIER}
    primary = "c4_quality_keep"

    def __init__(self, split_paragraph: bool = True, remove_citations: bool = True,
                 filter_no_terminal_punct: bool = True, min_num_sentences: int = 5,
                 min_words_per_line: int = 3, max_word_length: int = 1000,
                 filter_lorem_ipsum: bool = True, filter_javascript: bool = True,
                 filter_curly_bracket: bool = True, filter_policy: bool = True,
                 text_column: str = "text"):
        owner = self.name
        self.split_paragraph = boolean(owner, "split_paragraph", split_paragraph)
        self.remove_citations = boolean(owner, "remove_citations", remove_citations)
        self.filter_no_terminal_punct = boolean(owner, "filter_no_terminal_punct",
                                                filter_no_terminal_punct)
        self.min_num_sentences = integer(owner, "min_num_sentences", min_num_sentences,
                                         minimum=-1)
        self.min_words_per_line = non_negative_int(owner, "min_words_per_line",
                                                   min_words_per_line)
        self.max_word_length = integer(owner, "max_word_length", max_word_length, minimum=-1)
        self.filter_lorem_ipsum = boolean(owner, "filter_lorem_ipsum", filter_lorem_ipsum)
        self.filter_javascript = boolean(owner, "filter_javascript", filter_javascript)
        self.filter_curly_bracket = boolean(owner, "filter_curly_bracket", filter_curly_bracket)
        self.filter_policy = boolean(owner, "filter_policy", filter_policy)
        self.text_column = string(owner, "text_column", text_column)

    def clean(self, texts: pa.Array) -> tuple[list[str | None], pa.Array, np.ndarray,
                                               np.ndarray, np.ndarray]:
        """Per document: (reason or None, cleaned text, sentences, lines kept, lines
        removed), with every line of the batch examined at once."""
        parts = splitlines(texts) if self.split_paragraph else pa.array(
            [sentence_parts(t) for t in texts.to_pylist()], pa.list_(pa.string()))
        lines = pc.utf8_trim_whitespace(elements(parts))
        ok = self._long_words_ok(lines)
        words = lines  # counted before citations are removed
        if self.remove_citations:
            lines = _without_citations(lines)
        if self.filter_no_terminal_punct:
            ok &= np.isin(last_chars(lines), [ord(e) for e in END_PUNCTUATION]) \
                & ~pc.ends_with(lines, "...").to_numpy(zero_copy_only=False)
        ok[ok] = _has_words(words.filter(pa.array(ok)), self.min_words_per_line)
        # the remaining checks look at the candidate lines only, lower-cased once
        candidates = np.flatnonzero(ok)
        lower = _lower(lines.take(pa.array(candidates)))

        def found(pattern: str, regex: bool = False) -> np.ndarray:
            """Lines still kept whose lower-cased text contains ``pattern``."""
            hit = np.zeros(len(lines), bool)
            match = pc.match_substring_regex if regex else pc.match_substring
            hit[candidates] = match(lower, pattern).to_numpy(zero_copy_only=False)
            return hit & ok

        rejects = np.zeros(len(lines), np.int8)  # 1: lorem ipsum, 2: curly bracket
        if self.filter_lorem_ipsum:
            lorem = found("lorem ipsum")
            rejects[lorem] = 1
            ok &= ~lorem
        if self.filter_javascript:
            ok &= ~found("javascript")
        if self.filter_curly_bracket:
            curly = contains(lines, "{") & ok
            rejects[curly] = 2
            ok &= ~curly
        if self.filter_policy:
            ok &= ~found("|".join(POLICY_PHRASES), regex=True)
        counted = np.zeros(len(lines), np.int64)
        counted[ok] = count_sentences_batch(lines.filter(pa.array(ok))) \
            if self.split_paragraph else 1
        sentences = sum_per_list(counted, parts)
        kept = sum_per_list(ok, parts)
        cleaned = pc.utf8_trim_whitespace(pc.binary_join(
            drop(regroup(parts, lines), ~ok), "\n" if self.split_paragraph else " "))
        reasons = _first_reject(rejects, parts)
        reasons = [r or ("too_few_sentences" if n < self.min_num_sentences else None)
                   for r, n in zip(reasons, sentences.tolist())]
        return reasons, cleaned, sentences, kept, sizes(parts) - kept

    def _long_words_ok(self, lines: pa.Array) -> np.ndarray:
        """False for the lines with a word over ``max_word_length`` characters (only lines
        longer than that can have one)."""
        ok = np.ones(len(lines), bool)
        if self.max_word_length != -1:
            for i in np.flatnonzero(lengths(lines) > self.max_word_length).tolist():
                ok[i] = max(map(len, lines[i].as_py().split())) <= self.max_word_length
        return ok

    def transform(self, texts: list[str]) -> list[str]:
        """The C4-cleaned texts (kept lines only), also for documents the rules reject."""
        return self.clean(pa.array(texts, pa.string()))[1].to_pylist()

    @system_allocator
    def score_batch(self, batch: pa.Table) -> pa.Table:
        reasons, cleaned, sentences, kept, removed = self.clean(
            text_array(batch, self.text_column))
        signals = {
            "sentences": pa.array(sentences, pa.int64()),
            "cleaned_length": pa.array(lengths(cleaned), pa.int64()),
            "lines_kept": pa.array(kept, pa.int64()),
            "lines_removed": pa.array(removed, pa.int64()),
        }
        return rule_columns(self.name, [r is None for r in reasons], reasons, signals)


_WORD = SPACE.replace("[", "[^", 1)


def _has_words(lines: pa.Array, minimum: int) -> np.ndarray:
    """Whether each stripped line has at least ``minimum`` whitespace-separated words."""
    if minimum > 1000:  # beyond RE2's repetition limit
        words = np.where(lengths(lines) > 0, sizes(split_whitespace(lines)), 0)
        return words >= minimum
    if not minimum:
        return np.ones(len(lines), bool)
    pattern = f"^{_WORD}+(?:{SPACE}+{_WORD}+){{{minimum - 1}}}"
    return pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False)


def _without_citations(lines: pa.Array) -> pa.Array:
    """``CITATION.sub("", line)`` for the lines with a "[" (in Python: ``\\d`` is any
    Unicode digit)."""
    mask = pa.array(contains(lines, "["))
    cited = [CITATION.sub("", line) for line in lines.filter(mask).to_pylist()]
    return pc.replace_with_mask(lines, mask, pa.array(cited, lines.type)) if cited else lines


def _lower(lines: pa.Array) -> pa.Array:
    """``line.lower()`` of each line: by Arrow for ASCII lines (exact there), by Python for
    the others."""
    ascii_ = pc.string_is_ascii(lines)
    others = [line.lower() for line in lines.filter(pc.invert(ascii_)).to_pylist()]
    lower = pc.utf8_lower(lines)
    return pc.replace_with_mask(lower, pc.invert(ascii_), pa.array(others, lines.type)) \
        if others else lower


def _first_reject(rejects: np.ndarray, parts: pa.ListArray) -> list[str | None]:
    """Per document, the reason of its first rejecting line (DataTrove stops there)."""
    names = (None, "lorem_ipsum", "curly_bracket")
    first = np.zeros(len(parts), np.int8)
    flagged = np.flatnonzero(rejects)
    owners = owner(parts)[flagged]
    docs, at = np.unique(owners, return_index=True)
    first[docs] = rejects[flagged[at]]
    return [names[k] for k in first.tolist()]
