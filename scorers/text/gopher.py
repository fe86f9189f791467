"""Gopher quality and repetition rules (Rae et al. 2021, Table A1), as DataTrove 0.10.1 has them.

Both scorers reproduce ``GopherQualityFilter`` and ``GopherRepetitionFilter``: same checks,
order, strict comparisons, defaults and reason names; a threshold of ``None`` or ``0``
turns a quality check or a line/paragraph repetition check off, as in DataTrove. Words
come from :mod:`scorers.text.tokenize` (spaCy's English tokenization, without spaCy).

Every raw signal is computed for every document, also when an earlier check already
rejected it, so thresholds can be changed later with SQL over the score table.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer, rule_columns
from curate.core.validate import (
    boolean,
    fraction,
    integer,
    non_negative_int,
    number,
    string,
    string_list,
)
from scorers.text.columns import (
    count,
    duplicates,
    elements,
    lengths,
    nonempty_lines,
    paragraphs,
    sizes,
    splitlines,
    sum_between,
    sum_per_list,
    system_allocator,
    text_array,
)
from scorers.text.tokenize import batch_tokens, token_flags

#: DataTrove's default stop words (matched case-sensitively, counted once each).
STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> list[float | None]:
    """numerator / denominator per document, None where the denominator is 0."""
    return [n / d if d else None for n, d in zip(numerator.tolist(), denominator.tolist())]


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

    def signals(self, texts: pa.Array) -> list[tuple]:
        """Per document: (word_count, token_count, mean_word_length, hash_ratio,
        ellipsis_ratio, bullet_lines_ratio, end_ellipsis_ratio, alpha_words_ratio,
        stop_words)."""
        tokens = batch_tokens(texts)
        symbol, alpha = (flag[tokens.ids] for flag in token_flags(tokens.vocab))
        n_tokens, offsets = tokens.counts, tokens.offsets
        n_words = n_tokens - sum_between(symbol, offsets)
        word_chars = sum_between(np.where(symbol, 0, tokens.lengths[tokens.ids]), offsets)
        alpha = sum_between(alpha, offsets)
        stop = self._distinct_stop_words(tokens)
        lines = splitlines(texts)
        n_lines = sizes(lines)
        bullets = sum_per_list(_any(pc.utf8_ltrim_whitespace(elements(lines)), "starts_with",
                                    ("•", "-")), lines)
        end_ellipsis = sum_per_list(_any(pc.utf8_rtrim_whitespace(elements(lines)),
                                         "ends_with", ("...", "…")), lines)
        hashes = count(texts, "#")
        ellipsis = count(texts, "...") + count(texts, "…")
        return list(zip(n_words.tolist(), n_tokens.tolist(), _ratio(word_chars, n_words),
                        _ratio(hashes, n_tokens), _ratio(ellipsis, n_tokens),
                        _ratio(bullets, n_lines), _ratio(end_ellipsis, n_lines),
                        _ratio(alpha, n_tokens), stop.tolist()))

    def _distinct_stop_words(self, tokens) -> np.ndarray:
        """Distinct stop words among each text's tokens."""
        is_stop = pc.is_in(tokens.vocab, value_set=pa.array(sorted(self._stop_set), pa.string()))
        where = np.flatnonzero(is_stop.to_numpy(zero_copy_only=False)[tokens.ids])
        text = np.searchsorted(tokens.offsets, where, side="right") - 1
        vocab_size = max(len(tokens.vocab), 1)
        pairs = np.unique(text * vocab_size + tokens.ids[where])
        return np.bincount(pairs // vocab_size, minlength=len(tokens.counts))

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

    @system_allocator
    def score_batch(self, batch: pa.Table) -> pa.Table:
        rows = self.signals(text_array(batch, self.text_column))
        reasons = [self.reason(r) for r in rows]
        names = ("word_count", "token_count", "mean_word_length", "hash_ratio", "ellipsis_ratio",
                 "bullet_lines_ratio", "end_ellipsis_ratio", "alpha_words_ratio", "stop_words")
        types = (pa.int64(), pa.int64()) + (pa.float64(),) * 6 + (pa.int64(),)
        columns = zip(*rows) if rows else [()] * len(names)
        signals = {n: pa.array(list(col), t) for n, t, col in zip(names, types, columns)}
        return rule_columns(self.name, [r is None for r in reasons], reasons, signals)


def _any(strings: pa.Array, test: str, patterns: tuple[str, ...]) -> np.ndarray:
    """Whether each string passes ``pc.<test>`` (``starts_with``, ``ends_with``) for one of
    ``patterns``."""
    hit = np.zeros(len(strings), bool)
    for pattern in patterns:
        hit |= getattr(pc, test)(strings, pattern).to_numpy(zero_copy_only=False)
    return hit


class NGrams:
    """Equal n-gram classes in every text of a batch at once, with numpy.

    Tokens are given as ids with their lengths and each text's token ``offsets``; positions
    are batch positions and no n-gram spans two texts. For each n the n-grams that occur
    at least twice in their text are found from those of length n - 1 (an n-gram at i
    repeats only if the (n-1)-grams at i and i + 1 do), so each length sorts fewer
    positions than the one before; the first length is 2 unless 1 is asked for. N-grams
    are compared as token sequences; DataTrove's repeated-n-gram scan compares their
    concatenation without separators, which can also equate different splits of the same
    characters (e.g. "ab c" and "a bc"), a case this does not reproduce. Every method
    returns one value per text.
    """

    def __init__(self, ids: np.ndarray, lengths: np.ndarray, offsets: np.ndarray):
        self.offsets = offsets
        self.size = int(offsets[-1])
        self.ids = ids
        self.text = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        #: whether each token is the last of its text
        self.last = np.zeros(self.size, bool)
        self.last[offsets[1:][offsets[1:] > offsets[:-1]] - 1] = True
        #: ``chars[j] - chars[i]``: characters of tokens i..j-1 (whitespace excluded)
        self.chars = np.zeros(self.size + 1, np.int64)
        np.cumsum(lengths, out=self.chars[1:])
        self._vocab = int(ids.max()) + 1 if len(ids) else 1
        self._level: tuple | None = None
        self._tops: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._kept: np.ndarray | None = None  # per text, None for all of them

    def keep_texts(self, kept: np.ndarray) -> None:
        """Look only at the texts where ``kept`` (one flag per text) is true from now on:
        n-grams are then built for them alone, and what a method returns for the other
        texts means nothing. Each call narrows the texts further."""
        if self._kept is not None:
            kept = kept & self._kept
        self._kept = kept
        if self._level is not None:
            length, positions, labels = self._level
            inside = kept[self.text[positions]]
            self._level = (length, positions[inside], labels[inside])

    @classmethod
    def of_words(cls, *texts: list[str]) -> NGrams:
        """The n-grams of texts given as token lists."""
        index: dict[str, int] = {}
        flat = [token for words in texts for token in words]
        ids = np.array([index.setdefault(token, len(index)) for token in flat], np.int64)
        offsets = np.concatenate([[0], np.cumsum([len(words) for words in texts])]).astype(int)
        return cls(ids, np.array([len(token) for token in flat], np.int64), offsets)

    def repeated(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, labels): the positions, in order, whose n-gram occurs more than once
        in its text, and for each the first position of that n-gram."""
        if self._level is None or n < self._level[0]:
            self._level = self._first_level(n)
        length, positions, labels = self._level
        while length < n and len(positions):
            # the n-gram at i is the (n-1)-gram at i plus token i + n - 1; it can only
            # repeat if the (n-1)-gram at i + 1 does too, which lies in i's text unless
            # that (n-1)-gram is a single token
            length += 1
            label_at = np.full(self.size + 1, -1)
            label_at[positions] = labels
            candidates = positions[label_at[positions + 1] >= 0]
            if length == 2:
                candidates = candidates[~self.last[candidates]]
            positions, labels = self._extend(candidates, label_at[candidates], length)
        self._level = (n, positions, labels)
        return positions, labels

    def _extend(self, candidates: np.ndarray, first: np.ndarray, length: int):
        """Repeated n-grams (n = ``length``) among ``candidates``, whose (n-1)-grams first
        occur at ``first``: where the first occurrence continues with the same token, that
        is the n-gram's first occurrence too (an earlier one would start an earlier
        (n-1)-gram); only the others are grouped by sorting."""
        following = self.ids[candidates + length - 1]
        same = self.ids[first + length - 1] == following
        labels = np.where(same, first, -1)
        repeated = same & (np.bincount(first[same], minlength=self.size)[first] > 1)
        others = np.flatnonzero(~same)
        grouped, group_labels = _repeated_classes(
            others, first[others] * self._vocab + following[others])
        labels[grouped] = candidates[group_labels]
        repeated[grouped] = True
        return candidates[repeated], labels[repeated]

    def _first_level(self, n: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Bigram classes straight from the token ids (tokens seen once in the batch cannot
        start or end a repeated bigram), or single tokens when n is 1 or the codes could
        overflow."""
        if n > 1:
            twice = np.bincount(self.ids, minlength=self._vocab) > 1
            vocab = max(int(np.count_nonzero(twice)), 1)
            if (len(self.offsets) - 1) * vocab ** 2 < 2 ** 62:
                # each token's id among the tokens seen twice (-1 for the others), so the
                # codes stay small enough to sort as one key
                dense = np.where(twice, np.cumsum(twice) - 1, -1)[self.ids]
                pairs = (dense[:-1] >= 0) & (dense[1:] >= 0) & ~self.last[:-1]
                if self._kept is not None:
                    pairs &= self._kept[self.text[:-1]]
                codes = self.text[:-1] * vocab  # (text, id, next id) of every bigram, in place
                codes += dense[:-1]
                codes *= vocab
                codes += dense[1:]
                return (2, *_repeated_classes(np.flatnonzero(pairs), codes[pairs]))
        positions = np.arange(self.size)
        if self._kept is not None:
            positions = positions[self._kept[self.text]]
        return (1, *_repeated_classes(positions,
                                      self.text[positions] * self._vocab + self.ids[positions]))

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(first position, occurrences) of each text's most frequent n-gram, ties going to
        the n-gram seen first like ``Counter.most_common(1)``; (-1, 0) for a text with fewer
        than n tokens."""
        if n not in self._tops:
            self._tops[n] = self._top(n)
        return self._tops[n]

    def _top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        counts = np.diff(self.offsets)
        best = np.where(counts >= n, self.offsets[:-1], -1)
        occurrences = (counts >= n).astype(np.int64)
        # repeated n-grams by first position, in order, so each text's are contiguous
        sizes_ = np.bincount(self.repeated(n)[1], minlength=self.size)
        firsts = np.flatnonzero(sizes_)
        if len(firsts):
            texts, counted = self.text[firsts], sizes_[firsts]
            starts = np.flatnonzero(np.concatenate([[True], texts[1:] != texts[:-1]]))
            most = np.repeat(np.maximum.reduceat(counted, starts),
                             np.diff(np.append(starts, len(firsts))))
            at_most = firsts[counted == most]
            winners = at_most[np.concatenate([[True], self.text[at_most][1:]
                                              != self.text[at_most][:-1]])]
            best[self.text[winners]] = winners
            occurrences[self.text[winners]] = sizes_[winners]
        return best, occurrences

    def top_chars(self, n: int) -> np.ndarray:
        """DataTrove's top n-gram characters: the most frequent n-gram's space-joined length
        times its count, overlapping occurrences included (so it can exceed the text's
        characters); 0 for a text with fewer than n tokens."""
        best, occurrences = self.top(n)
        found = best >= 0
        chars = np.zeros(len(best), np.int64)
        chars[found] = self.chars[best[found] + n] - self.chars[best[found]] + n - 1
        return chars * occurrences

    def top_coverage(self, n: int) -> np.ndarray:
        """Token characters covered by occurrences of each text's most frequent n-gram, each
        token counted once however many overlapping occurrences cover it; 0 for a text with
        fewer than n tokens."""
        best, occurrences = self.top(n)
        positions, labels = self.repeated(n)
        # the occurrences, in order: those of the repeated top n-grams, then the single
        # occurrence of the texts whose n-grams are all distinct
        starts = np.concatenate([positions[best[self.text[positions]] == labels],
                                 best[(best >= 0) & (occurrences == 1)]])
        if not len(starts):
            return np.zeros(len(best), np.int64)
        # each covers n tokens, or the tokens up to the next occurrence in its text
        following = np.append(starts[1:], self.size)
        following[np.append(self.text[starts[1:]] != self.text[starts[:-1]], True)] = self.size
        covered = self.chars[np.minimum(starts + n, following)] - self.chars[starts]
        return np.bincount(self.text[starts], covered, len(best)).astype(np.int64)

    def repeated_chars(self, n: int) -> np.ndarray:
        """Characters in repeated n-grams, scanning each text left to right and jumping over
        a repeat.

        This is DataTrove's scan: at position i, an n-gram already recorded adds its length
        and moves to i + n (the n-grams jumped over are not recorded); a new one is recorded
        and moves to i + 1. An n-gram seen once can never add characters, so only the
        positions of repeated ones are visited; a jump never crosses into the next text.
        """
        positions, labels = self.repeated(n)
        hits, resume, recorded = [], 0, bytearray(self.size)  # recorded[label]: visited
        # memoryviews hand out the ints one at a time, cheaper here than lists of them
        for pos, label in zip(memoryview(np.ascontiguousarray(positions, np.int64)),
                              memoryview(np.ascontiguousarray(labels, np.int64))):
            if pos >= resume:
                if recorded[label]:
                    hits.append(pos)
                    resume = pos + n
                else:
                    recorded[label] = 1
        hits = np.array(hits, np.int64)
        return np.bincount(self.text[hits], self.chars[hits + n] - self.chars[hits],
                           len(self.offsets) - 1).astype(np.int64)


def _repeated_classes(positions: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of ``positions`` (ascending) with equality ``codes``: the positions whose code occurs
    more than once, in order, and for each the first position with that code."""
    size = len(codes)
    if not size:
        return positions, positions
    # sorted by code, then by position: one key, the code above the index's bits, sorted
    # by value (faster than an argsort) when that cannot overflow, else a stable argsort
    bits = size.bit_length()
    if int(codes.max()) < 1 << (62 - bits):
        key = codes << bits
        key |= np.arange(size)
        key.sort()
        order = key & ((1 << bits) - 1)
        ordered = key >> bits
    else:
        order = np.argsort(codes, kind="stable")
        ordered = codes[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    group_sizes = np.diff(np.append(starts, size))
    # each position's label, -1 where its code occurs once (positions are >= 0)
    labels = np.empty(size, np.int64)
    labels[order] = np.repeat(np.where(group_sizes > 1, positions[order[starts]], -1),
                              group_sizes)
    repeated = labels >= 0
    return positions[repeated], labels[repeated]


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

    The n-gram signals are the costly part. By default each is computed, as DataTrove does,
    only for the documents that pass every earlier check (null for the others); the checks
    run in DataTrove's order: paragraphs, lines, top n-grams, then repeated n-grams, each
    in the order given. ``all_signals=True`` computes every signal for every document.
    Keep/drop decisions and the paragraph and line signals are the same either way.
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
                 all_signals: bool = False, text_column: str = "text"):
        owner = self.name
        self.dup_line_frac = fraction(owner, "dup_line_frac", dup_line_frac, optional=True)
        self.dup_para_frac = fraction(owner, "dup_para_frac", dup_para_frac, optional=True)
        self.dup_line_char_frac = fraction(owner, "dup_line_char_frac", dup_line_char_frac,
                                           optional=True)
        self.dup_para_char_frac = fraction(owner, "dup_para_char_frac", dup_para_char_frac,
                                           optional=True)
        self.top_n_grams = ngram_thresholds(owner, "top_n_grams", top_n_grams)
        self.dup_n_grams = ngram_thresholds(owner, "dup_n_grams", dup_n_grams)
        self.all_signals = boolean(owner, "all_signals", all_signals)
        self.text_column = string(owner, "text_column", text_column)

    def signal_names(self) -> list[str]:
        return (["dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"]
                + [f"top_{n}_gram_frac" for n, _ in self.top_n_grams]
                + [f"dup_{n}_gram_frac" for n, _ in self.dup_n_grams]
                + [f"top_{n}_gram_datatrove" for n, _ in self.top_n_grams])

    def _checks(self) -> list[tuple[str, str, float, int | None]]:
        """DataTrove's checks in order: (reason, signal, threshold, n-gram length or None);
        a document whose signal exceeds the threshold is rejected."""
        paras_and_lines = [("dup_para_frac", self.dup_para_frac),
                           ("dup_para_char_frac", self.dup_para_char_frac),
                           ("dup_line_frac", self.dup_line_frac),
                           ("dup_line_char_frac", self.dup_line_char_frac)]
        # None or 0 turns a paragraph or line check off
        return ([(name, name, threshold, None) for name, threshold in paras_and_lines
                 if threshold]
                + [(f"top_{n}_gram", f"top_{n}_gram_datatrove", t, n)
                   for n, t in self.top_n_grams]
                + [(f"duplicated_{n}_n_grams", f"dup_{n}_gram_frac", t, n)
                   for n, t in self.dup_n_grams])

    def signals(self, texts: pa.Array) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(signal name -> one float per document, reasons): the signals of
        :meth:`signal_names`, NaN where not computed (an empty document; an n-gram signal
        no check needs, see the class docstring), and DataTrove's first failing check per
        document (an object array: None where every check passes, "empty")."""
        size = lengths(texts)
        per_char = np.maximum(size, 1)
        paras = paragraphs(texts)
        para_dups, para_chars = duplicates(paras)
        rows, row_ids = nonempty_lines(texts)
        line_dups, line_chars = duplicates(rows, row_ids)
        values = {"dup_para_frac": para_dups / sizes(paras),
                  "dup_para_char_frac": para_chars / per_char,
                  "dup_line_frac": line_dups / sizes(rows),
                  "dup_line_char_frac": line_chars / per_char}
        tokens = batch_tokens(texts)
        grams = NGrams(tokens.ids, tokens.lengths[tokens.ids], tokens.offsets)
        # 0 only without tokens, where the coverage is 0 too
        word_chars = np.maximum(grams.chars[tokens.offsets[1:]] - grams.chars[tokens.offsets[:-1]],
                                1)
        nonempty = size > 0
        reasons = np.where(nonempty, None, "empty").astype(object)
        kept = nonempty.copy()  # no check so far rejects it
        for reason, signal, threshold, n in self._checks():
            if n is not None:  # an n-gram signal, computed now for the documents it needs
                computed = nonempty if self.all_signals else kept
                if not self.all_signals:  # (an empty document has no n-grams to drop)
                    grams.keep_texts(kept)
                if reason.startswith("top_"):
                    values[f"top_{n}_gram_frac"] = np.where(
                        computed, grams.top_coverage(n) / word_chars, np.nan)
                    values[signal] = np.where(computed, grams.top_chars(n) / per_char, np.nan)
                else:
                    values[signal] = np.where(computed, grams.repeated_chars(n) / per_char,
                                              np.nan)
            rejected = kept & (values[signal] > threshold)
            reasons[rejected] = reason
            kept &= ~rejected
        for column in values.values():
            column[~nonempty] = np.nan
        return values, reasons

    @system_allocator
    def score_batch(self, batch: pa.Table) -> pa.Table:
        values, reasons = self.signals(text_array(batch, self.text_column))
        signals = {name: pa.array(values[name], pa.float64(), mask=np.isnan(values[name]))
                   for name in self.signal_names()}
        return rule_columns(self.name, [r is None for r in reasons], reasons, signals)
