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

import pyarrow as pa

from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer, rule_columns
from curate.core.validate import boolean, integer, non_negative_int, string
from scorers.text.tokenize import count_sentences, sentence_parts

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

    def clean(self, text: str) -> tuple[str | None, str, int, int, int]:
        """(reason or None, cleaned text, sentences, lines kept, lines removed)."""
        parts = text.splitlines() if self.split_paragraph else sentence_parts(text)
        kept: list[str] = []
        sentences = 0
        reason = None
        for line in parts:
            line = line.strip()
            words = line.split()
            if self.max_word_length != -1 and words \
                    and max(map(len, words)) > self.max_word_length:
                continue
            if self.remove_citations and "[" in line:
                line = CITATION.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION)
                                                  or line.endswith("...")):
                continue
            if len(words) < self.min_words_per_line:
                continue
            lower = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in lower:
                reason = reason or "lorem_ipsum"
                continue
            if self.filter_javascript and "javascript" in lower:
                continue
            if self.filter_curly_bracket and "{" in line:
                reason = reason or "curly_bracket"
                continue
            if self.filter_policy and any(p in lower for p in POLICY_PHRASES):
                continue
            sentences += count_sentences(line) if self.split_paragraph else 1
            kept.append(line)
        if reason is None and sentences < self.min_num_sentences:
            reason = "too_few_sentences"
        cleaned = ("\n" if self.split_paragraph else " ").join(kept).strip()
        return reason, cleaned, sentences, len(kept), len(parts) - len(kept)

    def transform(self, texts: list[str]) -> list[str]:
        """The C4-cleaned texts (kept lines only), also for documents the rules reject."""
        return [self.clean(t)[1] for t in texts]

    def score_batch(self, batch: pa.Table) -> pa.Table:
        rows = [self.clean(t) for t in self.texts(batch)]
        reasons = [r[0] for r in rows]
        signals = {
            "sentences": pa.array([r[2] for r in rows], pa.int64()),
            "cleaned_length": pa.array([len(r[1]) for r in rows], pa.int64()),
            "lines_kept": pa.array([r[3] for r in rows], pa.int64()),
            "lines_removed": pa.array([r[4] for r in rows], pa.int64()),
        }
        return rule_columns(self.name, [r is None for r in reasons], reasons, signals)
