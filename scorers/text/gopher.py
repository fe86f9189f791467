"""Gopher quality and repetition rules (Rae et al. 2021, Table A1), as DataTrove 0.10.1 has them.

Both scorers reproduce ``GopherQualityFilter`` and ``GopherRepetitionFilter``: same checks,
order, strict comparisons, defaults and reason names; a threshold of ``None`` or ``0``
turns a quality check or a line/paragraph repetition check off, as in DataTrove. Words
come from :mod:`scorers.text.tokenize` (spaCy's English tokenization, without spaCy).

Every raw signal is computed for every document, also when an earlier check already
rejected it, so thresholds can be changed later with SQL over the score table.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import compress, count
from operator import methodcaller, mul

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer, rule_columns
from curate.core.validate import fraction, integer, non_negative_int, number, string, string_list
from scorers.text.tokenize import text_words, token_flags

#: DataTrove's default stop words (matched case-sensitively, counted once each).
STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


_is_symbol = methodcaller("__getitem__", 0)
_has_alpha = methodcaller("__getitem__", 1)
_starts_with_bullet = methodcaller("startswith", ("•", "-"))
_ends_with_ellipsis = methodcaller("endswith", ("...", "…"))


@register_scorer
class GopherQuality(Scorer):
    """Gopher's document quality rules.

    Output columns (one row per document): ``gopher_quality_keep`` (bool),
    ``gopher_quality_reason`` (DataTrove's reason, null when kept) and the raw signals
    ``word_count`` (tokens that are not all punctuation), ``token_count`` (all tokens),
    ``mean_word_length``, ``hash_ratio``, ``ellipsis_ratio`` (per token),
    ``bullet_lines_ratio``, ``end_ellipsis_ratio`` (per line), ``alpha_words_ratio`` and
    ``stop_words`` (distinct stop words present). Ratios over zero tokens are null, and a
    document without tokens that passes the length checks is rejected as ``"empty"``.

    Defaults are DataTrove's: 50 to 100 000 words, mean word length 3 to 10,
    ``#`` and ellipsis ratios at most 0.1, at most 90% bullet lines and 30% lines ending
    in an ellipsis, at least 80% of tokens with a letter, and at least 2 distinct stop words.
    ``max_non_alpha_words_ratio`` keeps DataTrove's (misleading) name: it is the minimum
    share of tokens containing a letter. A threshold of None or 0 turns its check off.
    ``stop_words`` is a list or the text ``the;of;and`` (None: DataTrove's list).
    """

    name = "gopher_quality"
    #: Signal (column suffix) -> the constructor parameters that bound it (the quality card
    #: draws them on the signal's histogram).
    thresholds = {"word_count": ("min_doc_words", "max_doc_words"),
                  "mean_word_length": ("min_avg_word_length", "max_avg_word_length"),
                  "hash_ratio": ("max_symbol_word_ratio",),
                  "ellipsis_ratio": ("max_symbol_word_ratio",),
                  "bullet_lines_ratio": ("max_bullet_lines_ratio",),
                  "end_ellipsis_ratio": ("max_ellipsis_lines_ratio",),
                  "alpha_words_ratio": ("max_non_alpha_words_ratio",),
                  "stop_words": ("min_stop_words",)}
    kind = "rule"
    directions = {"gopher_quality_keep": EASIER}
    primary = "gopher_quality_keep"

    def __init__(self, min_doc_words: int | None = 50, max_doc_words: int | None = 100000,
                 min_avg_word_length: int | None = 3, max_avg_word_length: int | None = 10,
                 max_symbol_word_ratio: float | None = 0.1,
                 max_bullet_lines_ratio: float | None = 0.9,
                 max_ellipsis_lines_ratio: float | None = 0.3,
                 max_non_alpha_words_ratio: float | None = 0.8,
                 min_stop_words: int | None = 2, stop_words: list[str] | None = None,
                 text_column: str = "text"):
        owner = self.name
        self.min_doc_words = non_negative_int(owner, "min_doc_words", min_doc_words,
                                              optional=True)
        self.max_doc_words = non_negative_int(owner, "max_doc_words", max_doc_words,
                                              optional=True)
        self.min_avg_word_length = number(owner, "min_avg_word_length", min_avg_word_length,
                                          minimum=0, optional=True)
        self.max_avg_word_length = number(owner, "max_avg_word_length", max_avg_word_length,
                                          minimum=0, optional=True)
        # "#" characters and ellipses per token can exceed 1, so this bound is not a fraction.
        self.max_symbol_word_ratio = number(owner, "max_symbol_word_ratio",
                                            max_symbol_word_ratio, minimum=0, optional=True)
        self.max_bullet_lines_ratio = fraction(owner, "max_bullet_lines_ratio",
                                               max_bullet_lines_ratio, optional=True)
        self.max_ellipsis_lines_ratio = fraction(owner, "max_ellipsis_lines_ratio",
                                                 max_ellipsis_lines_ratio, optional=True)
        self.max_non_alpha_words_ratio = fraction(owner, "max_non_alpha_words_ratio",
                                                  max_non_alpha_words_ratio, optional=True)
        self.min_stop_words = non_negative_int(owner, "min_stop_words", min_stop_words,
                                               optional=True)
        self.stop_words = string_list(owner, "stop_words", stop_words, optional=True)
        self.text_column = string(owner, "text_column", text_column)
        self._stop_set = frozenset(STOP_WORDS if self.stop_words is None else self.stop_words)

    def signals(self, text: str) -> tuple:
        """(word_count, token_count, mean_word_length, hash_ratio, ellipsis_ratio,
        bullet_lines_ratio, end_ellipsis_ratio, alpha_words_ratio, stop_words)."""
        counts = Counter(text_words(text))
        n_tokens = counts.total()
        uniq = list(counts)
        freq = list(counts.values())
        flags = list(map(token_flags, uniq))
        symbol = list(map(_is_symbol, flags))
        lengths = list(map(len, uniq))
        n_words = n_tokens - sum(compress(freq, symbol))
        word_chars = sum(map(mul, lengths, freq)) - sum(map(mul, compress(lengths, symbol),
                                                         compress(freq, symbol)))
        stop = len(self._stop_set & counts.keys())
        lines = text.splitlines()
        n_lines = len(lines)
        bullets = sum(map(_starts_with_bullet, map(str.lstrip, lines))) / n_lines if n_lines \
            else None
        end_ellipsis = sum(map(_ends_with_ellipsis, map(str.rstrip, lines))) / n_lines \
            if n_lines else None
        if not n_tokens:
            return n_words, 0, None, None, None, bullets, end_ellipsis, None, stop
        mean_len = word_chars / n_words if n_words else None
        hashes = text.count("#") / n_tokens
        ellipsis = (text.count("...") + text.count("…")) / n_tokens
        alpha = sum(compress(freq, map(_has_alpha, flags))) / n_tokens
        return n_words, n_tokens, mean_len, hashes, ellipsis, bullets, end_ellipsis, alpha, stop

    def reason(self, sig: tuple) -> str | None:
        """DataTrove's first failing check for one document's signals, or None."""
        n_words, n_tokens, mean_len, hashes, ellipsis, bullets, end_ellipsis, alpha, stop = sig
        if self.min_doc_words and n_words < self.min_doc_words:
            return "gopher_short_doc"
        if self.max_doc_words and n_words > self.max_doc_words:
            return "gopher_long_doc"
        if not n_tokens:  # DataTrove 0.10.1 divides by zero here; later versions say "empty"
            return "empty"
        if mean_len is not None:
            if self.min_avg_word_length and mean_len < self.min_avg_word_length:
                return "gopher_below_avg_threshold"
            if self.max_avg_word_length and mean_len > self.max_avg_word_length:
                return "gopher_above_avg_threshold"
        if hashes is not None and self.max_symbol_word_ratio:
            if hashes > self.max_symbol_word_ratio:
                return "gopher_too_many_hashes"
            if ellipsis > self.max_symbol_word_ratio:
                return "gopher_too_many_ellipsis"
        if bullets is not None:
            if self.max_bullet_lines_ratio and bullets > self.max_bullet_lines_ratio:
                return "gopher_too_many_bullets"
            if self.max_ellipsis_lines_ratio and end_ellipsis > self.max_ellipsis_lines_ratio:
                return "gopher_too_many_end_ellipsis"
        if alpha is not None and self.max_non_alpha_words_ratio \
                and alpha < self.max_non_alpha_words_ratio:
            return "gopher_below_alpha_threshold"
        if self.min_stop_words and stop < self.min_stop_words:
            return "gopher_enough_stop_words"
        return None

    def score_batch(self, batch: pa.Table) -> pa.Table:
        rows = [self.signals(t) for t in self.texts(batch)]
        reasons = [self.reason(r) for r in rows]
        names = ("word_count", "token_count", "mean_word_length", "hash_ratio", "ellipsis_ratio",
                 "bullet_lines_ratio", "end_ellipsis_ratio", "alpha_words_ratio", "stop_words")
        types = (pa.int64(), pa.int64()) + (pa.float64(),) * 6 + (pa.int64(),)
        columns = zip(*rows) if rows else [()] * len(names)
        signals = {n: pa.array(list(col), t) for n, t, col in zip(names, types, columns)}
        return rule_columns(self.name, [r is None for r in reasons], reasons, signals)


def duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated elements, characters in repeated elements): every occurrence after the first."""
    unique = set(items)
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


class NGrams:
    """Equal-n-gram classes of one token list, computed with numpy.

    ``labels(n)[i]`` is the first position whose n tokens equal the n tokens at ``i`` (so a
    position is a repeat when its label is smaller than itself). Labels of length n are
    built from two shorter ones, so all lengths cost a few sorts of integer codes.
    N-grams are compared as token sequences; DataTrove's repeated-n-gram scan compares
    their concatenation without separators, which can also equate different splits of
    the same characters (e.g. "ab c" and "a bc"), a case this does not reproduce.
    """

    def __init__(self, words: list[str]):
        self.size = len(words)
        first: dict[str, int] = {}
        ids = np.fromiter(map(first.setdefault, words, count()), np.int64, self.size)
        self._labels = {1: ids}
        #: n-grams of this length or longer never repeat (known once a shorter length showed it)
        self.repeat_free_from = self.size + 1
        self._top: dict[int, int] = {}
        self.offsets = np.zeros(self.size + 1, np.int64)
        np.cumsum(np.fromiter(map(len, words), np.int64, self.size), out=self.offsets[1:])

    def labels(self, n: int) -> np.ndarray:
        if n not in self._labels:
            head = self.labels((n + 1) // 2)
            tail = self.labels(n // 2)[(n + 1) // 2:]
            codes = head[:len(tail)] * self.size + tail
            _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
            self._labels[n] = first[inverse]
        return self._labels[n]

    @property
    def chars(self) -> int:
        """Characters of all tokens (whitespace between them excluded)."""
        return int(self.offsets[-1])

    def top(self, n: int) -> int:
        """First position of the most frequent n-gram; ties go to the n-gram seen first,
        like ``Counter.most_common(1)``. Needs at least n tokens."""
        if n not in self._top:
            self._top[n] = int(np.argmax(np.bincount(self.labels(n))))
        return self._top[n]

    def top_chars(self, n: int) -> int:
        """DataTrove's top n-gram characters: the most frequent n-gram's space-joined length
        times its count, overlapping occurrences included (so it can exceed :attr:`chars`);
        0 when there are fewer than n tokens."""
        if self.size < n:
            return 0
        best = self.top(n)
        count = int(np.count_nonzero(self.labels(n) == best))
        chars = int(self.offsets[best + n] - self.offsets[best])
        return (chars + n - 1) * count

    def top_coverage(self, n: int) -> int:
        """Token characters covered by occurrences of the most frequent n-gram, each token
        counted once however many overlapping occurrences cover it (at most :attr:`chars`);
        0 when there are fewer than n tokens."""
        if self.size < n:
            return 0
        starts = np.flatnonzero(self.labels(n) == self.top(n))
        edges = np.zeros(self.size + 1, np.int64)
        edges[starts] += 1  # starts are distinct, and so are starts + n
        edges[starts + n] -= 1
        covered = np.cumsum(edges[:-1]) > 0
        return int(np.diff(self.offsets)[covered].sum())

    def repeated_chars(self, n: int) -> int:
        """Characters in repeated n-grams, scanning left to right and jumping over a repeat.

        This is DataTrove's scan: at position i, an n-gram already recorded adds its length
        and moves to i + n (the n-grams jumped over are not recorded); a new one is recorded
        and moves to i + 1. Only repeats can add characters, so only they are visited: a
        repeat is a hit when an earlier occurrence was visited, i.e. a previous repeat of it
        was visited or its first occurrence was not jumped over.
        """
        if self.size < n or n >= self.repeat_free_from:
            return 0
        labels = self.labels(n)
        repeats = np.flatnonzero(labels != np.arange(len(labels)))
        if not len(repeats):
            # no n-gram repeats, so no longer one does either
            self.repeat_free_from = min(self.repeat_free_from, n)
            return 0
        lengths = self.offsets[repeats + n] - self.offsets[repeats]
        total, resume = 0, 0
        visited: set[int] = set()  # n-grams (by first position) with a visited repeat
        jumped: set[int] = set()  # positions the scan jumped over
        for pos, key, length in zip(repeats.tolist(), labels[repeats].tolist(),
                                    lengths.tolist()):
            if pos < resume:
                continue
            if key in visited or key not in jumped:
                total += length
                resume = pos + n
                jumped.update(range(pos + 1, resume))
            visited.add(key)
        return total


_PARAGRAPH_SPLIT = re.compile(r"\n{2,}")


def paragraphs(text: str) -> list[str]:
    """``re.split(r"\\n{2,}", text.strip())`` (a plain split when no run exceeds two)."""
    text = text.strip()
    return _PARAGRAPH_SPLIT.split(text) if "\n\n\n" in text else text.split("\n\n")


def lines(text: str) -> list[str]:
    """``re.split(r"\\n+", text)``: non-empty lines, plus an empty first or last one when the
    text starts or ends with a newline."""
    if not text:
        return [""]
    parts = list(filter(None, text.split("\n")))
    if text.startswith("\n"):
        parts.insert(0, "")
    if text.endswith("\n"):
        parts.append("")
    return parts


def ngram_thresholds(owner: str, name: str, value) -> tuple[tuple[int, float], ...]:
    """``(n, threshold)`` pairs from a list of pairs, a mapping ``{n: threshold}`` or the text
    ``"2:0.2;3:0.18"``; None or an empty text gives none. Each n is an integer >= 1 and
    appears once; each threshold is a number >= 0."""
    expected = "(n, threshold) pairs such as 2:0.2;3:0.18"
    if value is None:
        return ()
    if isinstance(value, str):
        items = [part.split(":") for part in string_list(owner, name, value)]
    elif isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = [item.split(":") if isinstance(item, str) else item for item in value]
    else:
        raise CurateError(f"{owner}: {name} must be {expected}, got {value!r}")
    pairs = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise CurateError(f"{owner}: {name} must be {expected}, got {value!r}")
        n = integer(owner, f"{name} n", item[0], minimum=1)
        if any(n == seen for seen, _ in pairs):
            raise CurateError(f"{owner}: {name} must give each n once, got n={n} twice")
        pairs.append((n, number(owner, f"{name} threshold", item[1], minimum=0)))
    return tuple(pairs)


@register_scorer
class GopherRepetition(Scorer):
    """Gopher's repetition rules over paragraphs, lines and word n-grams.

    Output columns: ``gopher_repetition_keep``, ``gopher_repetition_reason`` and raw signals
    ``dup_para_frac``, ``dup_para_char_frac``, ``dup_line_frac``, ``dup_line_char_frac``,
    ``top_{n}_gram_frac`` for each ``(n, threshold)`` in ``top_n_grams``,
    ``dup_{n}_gram_frac`` for each in ``dup_n_grams``, then ``top_{n}_gram_datatrove`` for
    each in ``top_n_grams``. The paragraph, line and repeated n-gram character fractions are
    divided by the length of the unstripped text. An empty text is rejected as ``"empty"``
    with null signals.

    The top n-gram is the most frequent sequence of n consecutive word tokens (ties go to
    the one seen first), as in DataTrove; two signals describe it:

    * ``top_{n}_gram_frac``, in [0, 1]: the share of the document's word characters (the
      characters of its tokens, whitespace excluded) that lie in an occurrence of the top
      n-gram; a token covered by several overlapping occurrences counts once. 0 when the
      document has fewer than n tokens.
    * ``top_{n}_gram_datatrove``: DataTrove's score, the value the threshold is compared
      with (``top_{n}_gram`` when it is greater): the length of the n-gram joined with single
      spaces times its number of occurrences, overlapping ones included, over ``len(text)``.
      It counts the joining spaces and counts a token once per overlapping occurrence, so
      it exceeds 1 on a run of a repeated word ("go go go go go ..." covers each word up to
      n times). 0 when the document has fewer than n tokens (DataTrove skips the check).

    The keep/drop decision is DataTrove's; select on ``top_{n}_gram_datatrove`` to move a
    top n-gram threshold with DataTrove's meaning, on ``top_{n}_gram_frac`` to read how much
    of a document its most frequent n-gram covers.

    Paragraphs are ``re.split(r"\\n{2,}", text.strip())`` and lines ``re.split(r"\\n+", text)``.
    Defaults: Gopher Table A1 (0.3 / 0.2 for lines and paragraphs, top 2-4-gram 0.20 / 0.18 /
    0.16, repeated 5-10-gram 0.15 down to 0.10). A line or paragraph threshold of None or 0
    turns its check off. ``top_n_grams`` and ``dup_n_grams`` are ``(n, threshold)`` pairs:
    a list of pairs, a mapping ``{n: threshold}`` or the text ``2:0.2;3:0.18;4:0.16``;
    None or an empty text turns all of them off.
    """

    name = "gopher_repetition"
    #: Signal (column suffix) -> the constructor parameters that bound it (the quality card
    #: draws them on the signal's histogram); for a suffix with ``{n}`` the parameter
    #: holds (n, threshold) pairs.
    thresholds = {"dup_para_frac": ("dup_para_frac",),
                  "dup_para_char_frac": ("dup_para_char_frac",),
                  "dup_line_frac": ("dup_line_frac",),
                  "dup_line_char_frac": ("dup_line_char_frac",),
                  "top_{n}_gram_datatrove": ("top_n_grams",),
                  "dup_{n}_gram_frac": ("dup_n_grams",)}
    kind = "rule"
    directions = {"gopher_repetition_keep": EASIER}
    primary = "gopher_repetition_keep"

    def __init__(self, dup_line_frac: float | None = 0.3, dup_para_frac: float | None = 0.3,
                 dup_line_char_frac: float | None = 0.2, dup_para_char_frac: float | None = 0.2,
                 top_n_grams=((2, 0.2), (3, 0.18), (4, 0.16)),
                 dup_n_grams=((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
                 text_column: str = "text"):
        owner = self.name
        self.dup_line_frac = fraction(owner, "dup_line_frac", dup_line_frac, optional=True)
        self.dup_para_frac = fraction(owner, "dup_para_frac", dup_para_frac, optional=True)
        self.dup_line_char_frac = fraction(owner, "dup_line_char_frac", dup_line_char_frac,
                                           optional=True)
        self.dup_para_char_frac = fraction(owner, "dup_para_char_frac", dup_para_char_frac,
                                           optional=True)
        self.top_n_grams = ngram_thresholds(owner, "top_n_grams", top_n_grams)
        self.dup_n_grams = ngram_thresholds(owner, "dup_n_grams", dup_n_grams)
        self.text_column = string(owner, "text_column", text_column)

    def signal_names(self) -> list[str]:
        return (["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
                + [f"top_{n}_gram_frac" for n, _ in self.top_n_grams]
                + [f"dup_{n}_gram_frac" for n, _ in self.dup_n_grams]
                + [f"top_{n}_gram_datatrove" for n, _ in self.top_n_grams])

    def signals(self, text: str) -> tuple | None:
        """The raw signals in :meth:`signal_names` order, or None for an empty text."""
        if not text:
            return None
        size = len(text)
        paras = paragraphs(text)
        para_dups, para_chars = duplicates(paras)
        rows = lines(text)
        line_dups, line_chars = duplicates(rows)
        grams = NGrams(text_words(text))
        word_chars = max(grams.chars, 1)  # 0 only without tokens, where coverage is 0 too
        return (para_dups / len(paras), para_chars / size,
                line_dups / len(rows), line_chars / size,
                *(grams.top_coverage(n) / word_chars for n, _ in self.top_n_grams),
                *(grams.repeated_chars(n) / size for n, _ in self.dup_n_grams),
                *(grams.top_chars(n) / size for n, _ in self.top_n_grams))

    def reason(self, sig: tuple | None) -> str | None:
        """DataTrove's first failing check for one document's signals, or None."""
        if sig is None:
            return "empty"
        para_frac, para_chars, line_frac, line_chars = sig[:4]
        if self.dup_para_frac and para_frac > self.dup_para_frac:
            return "dup_para_frac"
        if self.dup_para_char_frac and para_chars > self.dup_para_char_frac:
            return "dup_para_char_frac"
        if self.dup_line_frac and line_frac > self.dup_line_frac:
            return "dup_line_frac"
        if self.dup_line_char_frac and line_chars > self.dup_line_char_frac:
            return "dup_line_char_frac"
        n_top, n_dup = len(self.top_n_grams), len(self.dup_n_grams)
        datatrove_top = sig[4 + n_top + n_dup:]  # DataTrove's scores, not the bounded fractions
        for (n, frac), value in zip(self.top_n_grams, datatrove_top):
            if value > frac:
                return f"top_{n}_gram"
        for (n, frac), value in zip(self.dup_n_grams, sig[4 + n_top:4 + n_top + n_dup]):
            if value > frac:
                return f"duplicated_{n}_n_grams"
        return None

    def score_batch(self, batch: pa.Table) -> pa.Table:
        rows = [self.signals(t) for t in self.texts(batch)]
        reasons = [self.reason(r) for r in rows]
        names = self.signal_names()
        columns = list(zip(*[r if r is not None else (None,) * len(names) for r in rows])) \
            if rows else [()] * len(names)
        signals = {n: pa.array(list(col), pa.float64()) for n, col in zip(names, columns)}
        return rule_columns(self.name, [r is None for r in reasons], reasons, signals)
