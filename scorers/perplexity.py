"""Perplexity of each document under a small word n-gram reference model.

Why this model: CCNet ranks web text by its perplexity under a KenLM 5-gram model
(modified Kneser-Ney) trained on Wikipedia. A smoothed word n-gram model is the
right kind of reference for a data filter: it trains in seconds on a few MB of
reference text, scores thousands of documents per second on a CPU, and needs no
weights from the internet. This module fits the same smoothing as KenLM,
interpolated modified Kneser-Ney (Chen & Goodman, 1998), in-process with numpy:

* tokens: lowercased, digits mapped to ``0`` (CCNet's normalisation), words
  ``\\w+`` and single punctuation marks; each line is a sentence ``<s> ... </s>``;
  words seen fewer than ``min_count`` times become ``<unk>``. Scoring an
  out-of-vocabulary word costs P(<unk> | h) / N, where N is the number of word types
  ``<unk>`` stood for in the reference corpus: the class probability is shared among
  its members, so text made of unknown words (another language, gibberish) is not
  cheap just because ``<unk>`` as a class is frequent.
* highest order: raw counts; lower orders: continuation counts N1+(. w), except for
  n-grams that start with ``<s>``, which cannot be extended to the left and keep raw
  counts (as KenLM does); unigrams are interpolated with the uniform distribution.
* three discounts per order from counts of counts, D_j = j - (j+1) Y n_{j+1}/n_j
  with Y = n1 / (n1 + 2 n2); when the counts are too sparse to give 0 < D_j < j the
  order falls back to (0.5, 1.0, 1.5), KenLM's ``--discount_fallback``.

The model is stored in backoff form (the ARPA layout): for every seen n-gram its
interpolated log-probability, for every seen context its log interpolation weight.
N-grams are keyed by a 64-bit hash of their token ids (checked for collisions when
fitting), so scoring a batch is a few ``np.searchsorted`` calls per order. Models
are saved as ``.npz`` (arrays plus a JSON header), loaded with ``allow_pickle=False``.

Output columns: ``perplexity_nll`` (float32, mean negative log-likelihood in nats
per scored token), ``perplexity_ppl`` (float32, ``exp(nll)``) and
``perplexity_tokens`` (int64, scored tokens: words plus one ``</s>`` per line).
Text without tokens scores null NLL and perplexity and 0 tokens.

Limits: a word model sees a run of CJK characters without spaces as one (unknown)
token, so such text gets few tokens and a per-token NLL that is not comparable with
spaced languages; score one language at a time, or filter by ``langid`` first.
Speed (2 CPU cores, order 3 fitted on 6 MB of English books, 1000-text batches):
430-540 docs/s on 6.9k-character documents (3-3.7 MB/s), ~20k docs/s on
180-character ones (one process).
"""

from __future__ import annotations

import collections
import json
import os
import re
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import HARDER, FittedScorer
from curate.core.validate import positive_int, string

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
BOS_ID, EOS_ID, UNK_ID = 0, 1, 2
FORMAT = "curate-perplexity-kn/1"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)

#: Characters that end a line (those ``str.splitlines`` splits on); all are whitespace.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
BREAK_ID = -1  # a line break in a flattened token sequence, before lines are framed
_TOKEN = re.compile(rf"\w+|[^\w\s]|[{LINE_BREAKS}]")
_DIGIT = re.compile(r"\d")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def tokenize(text: str) -> list[str]:
    """Lowercased tokens, digits as ``0``, with each line break kept as a token.

    Line breaks are the characters ``str.splitlines`` splits on; :func:`is_break`
    tells them apart from words and punctuation.
    """
    return _TOKEN.findall(_DIGIT.sub("0", text.lower()))


def is_break(token: str) -> bool:
    return token in LINE_BREAKS


class _Vocab(dict):
    """token -> id, with ``<unk>`` for unknown tokens (``__missing__`` keeps lookups in C)."""

    def __missing__(self, token):
        return UNK_ID


@register_scorer
class Perplexity(FittedScorer):
    """Mean NLL and perplexity under an interpolated modified Kneser-Ney n-gram model.

    Parameters
    ----------
    model:
        Path of a model saved by :meth:`save` (``.npz``), or None to :meth:`fit` one.
    text_column:
        Column holding the text.
    """

    name = "perplexity"
    kind = "model"
    directions = {"perplexity_nll": HARDER, "perplexity_ppl": HARDER}
    primary = "perplexity_nll"
    batch_size = 1000

    def __init__(self, model: str | os.PathLike | None = None, text_column: str = "text"):
        if isinstance(model, os.PathLike):
            model = os.fspath(model)
        if model is not None and not (isinstance(model, str) and model):
            raise CurateError(f"{self.name}: model must be the path of a .npz file or none, "
                              f"got {model!r}")
        self.model = model
        self.text_column = string(self.name, "text_column", text_column)
        self._arrays: dict[str, np.ndarray] | None = None
        self._meta: dict | None = None
        self._vocab: _Vocab | None = None
        if self.model is not None:
            self._set_model(*_read_npz(self.model))

    @classmethod
    def load(cls, path, text_column: str = "text") -> Perplexity:
        return cls(model=path, text_column=text_column)

    @property
    def order(self) -> int:
        return self._require()["order"]

    @property
    def vocabulary(self) -> list[str]:
        """Tokens by id: ``<s>``, ``</s>``, ``<unk>``, then words by falling frequency."""
        return list(self._require()["vocab"])

    def _require(self) -> dict:
        if self._meta is None:
            raise CurateError("perplexity has no model: pass model=PATH.npz or fit it")
        return self._meta

    def _set_model(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self._meta, self._arrays = meta, arrays
        self._vocab = _Vocab((tok, i) for i, tok in enumerate(meta["vocab"]))
        self._vocab.update((char, BREAK_ID) for char in LINE_BREAKS)

    # -- fit / save ---------------------------------------------------------------

    def fit(self, texts: Iterable[str], order: int = 3, min_count: int = 2) -> Perplexity:
        """Fit the model on reference ``texts`` (None and empty texts are skipped).

        ``order`` is the n-gram order (3: trigrams); words seen fewer than
        ``min_count`` times map to ``<unk>``, which gives unseen words at scoring
        time a probability learnt from the rare words of the reference corpus.
        """
        if isinstance(texts, str):
            raise CurateError("perplexity.fit expects an iterable of texts, not one string")
        order = positive_int(f"{self.name}.fit", "order", order)
        min_count = positive_int(f"{self.name}.fit", "min_count", min_count)
        docs = [tokenize(text) for text in texts if text]
        counts = collections.Counter(tok for tokens in docs for tok in tokens)
        for char in LINE_BREAKS:
            counts.pop(char, None)
        if not counts:
            raise CurateError("perplexity.fit got no text with tokens")
        # Tokens never contain "<s>"-like strings: the tokenizer splits "<" and ">" off.
        words = sorted((t for t, c in counts.items() if c >= min_count),
                       key=lambda t: (-counts[t], t))
        vocab = [BOS, EOS, UNK, *words]
        meta = {"format": FORMAT, "order": order, "min_count": min_count, "vocab": vocab,
                "unk_types": len(counts) - len(words)}
        self._set_model(meta, {})
        seq, pos, _ = self._flatten(docs)
        self._arrays, meta["discounts"] = _fit_arrays(seq, pos, order, len(vocab))
        self.model = None
        return self

    def save(self, path) -> None:
        """Write the model to ``path`` (``.npz``, atomically); the scorer then refers to it."""
        meta = self._require()
        path = os.fspath(path)
        header = np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, header=header, **self._arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self.model = path

    # -- scoring ------------------------------------------------------------------

    def score_batch(self, batch: pa.Table) -> pa.Table:
        self._require()
        texts = self.texts(batch)
        seq, pos, doc = self._flatten([tokenize(t) for t in texts])
        scored = pos >= 1
        logp = self._log_probs(seq, pos)
        logp[seq == UNK_ID] -= np.log(max(self._meta["unk_types"], 1))
        logp = logp[scored]
        n_docs = len(texts)
        tokens = np.bincount(doc[scored], minlength=n_docs)
        total = np.bincount(doc[scored], weights=logp, minlength=n_docs)
        has_tokens = tokens > 0
        nll = -total / np.maximum(tokens, 1)
        return pa.table({
            self.col("nll"): pa.array(nll.astype(np.float32), mask=~has_tokens),
            self.col("ppl"): pa.array(np.exp(nll).astype(np.float32), mask=~has_tokens),
            self.col("tokens"): pa.array(tokens.astype(np.int64)),
        })

    def next_token_probs(self, context: str) -> tuple[list[str], np.ndarray]:
        """P(w | context) for every w in the vocabulary except ``<s>``.

        ``context`` is tokenised like the documents and read as the start of a line.
        Returns the tokens and a float64 array of their probabilities (sums to 1);
        ``<unk>`` gets the probability of the whole class of unknown words.
        """
        self._require()
        prefix = [BOS_ID] + [self._vocab[t] for t in tokenize(context) if not is_break(t)]
        candidates = np.arange(1, len(self._meta["vocab"]))
        rows = np.empty((len(candidates), len(prefix) + 1), dtype=np.int64)
        rows[:, :-1] = prefix
        rows[:, -1] = candidates
        pos = np.tile(np.arange(rows.shape[1]), len(candidates))
        logp = self._log_probs(rows.ravel(), pos).reshape(rows.shape)[:, -1]
        return self.vocabulary[1:], np.exp(logp)

    def _flatten(self, docs: list[list[str]]):
        """Tokenised docs -> (token ids, position in line, doc index), int64 arrays.

        Every non-empty line becomes ``<s> w1 ... wn </s>``; position 0 is ``<s>``.
        """
        lookup = self._vocab.__getitem__
        flat: list[int] = []
        doc_lengths = []
        for tokens in docs:
            before = len(flat)
            flat.extend(map(lookup, tokens))
            flat.append(BREAK_ID)  # lines never run across documents
            doc_lengths.append(len(flat) - before)
        flat = np.asarray(flat, dtype=np.int64)
        breaks = flat == BREAK_ID
        words = flat[~breaks]
        word_docs = np.repeat(np.arange(len(docs)), doc_lengths)[~breaks]
        segment = np.cumsum(breaks)[~breaks]
        first = np.ones(len(words), dtype=bool)  # first word of its line
        first[1:] = segment[1:] != segment[:-1]
        last = np.ones(len(words), dtype=bool)
        last[:-1] = first[1:]
        line = np.cumsum(first) - 1
        at = np.arange(len(words)) + 2 * line + 1  # room for <s> and </s> of each line
        seq = np.empty(len(words) + 2 * int(first.sum()), dtype=np.int64)
        seq[at] = words
        seq[at[first] - 1] = BOS_ID
        seq[at[last] + 1] = EOS_ID
        line_lengths = at[last] - at[first] + 3
        pos = np.arange(len(seq)) - np.repeat(at[first] - 1, line_lengths)
        return seq, pos, np.repeat(word_docs[first], line_lengths)

    def _log_probs(self, seq: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Natural log P(seq[i] | history) for every position (meaningless where pos == 0)."""
        arrays = self._arrays
        keys = ngram_keys(seq, self.order)
        out = np.zeros(len(seq), dtype=np.float64)
        todo = pos >= 1
        for k in range(self.order, 1, -1):
            cand = np.flatnonzero(todo & (pos >= k - 1))
            hit, idx = _lookup(arrays[f"keys_{k}"], keys[k][cand])
            out[cand[hit]] += arrays[f"logp_{k}"][idx[hit]]
            todo[cand[hit]] = False
            miss = cand[~hit]
            # Unseen n-gram: back off with the context's interpolation weight (1 if unseen).
            ctx_hit, ctx_idx = _lookup(arrays[f"ctx_keys_{k}"], keys[k - 1][miss - 1])
            out[miss[ctx_hit]] += arrays[f"log_gamma_{k}"][ctx_idx[ctx_hit]]
        rest = np.flatnonzero(todo)
        out[rest] += arrays["logp_1"][seq[rest]]
        return out


def ngram_keys(seq: np.ndarray, order: int) -> list[np.ndarray | None]:
    """``keys[k][i]``: 64-bit hash of the k-gram ``seq[i-k+1 : i+1]`` (k = 1..order).

    Entries whose k-gram would cross the start of ``seq`` hold junk; callers mask
    them by position in line. ``keys[0]`` is None.
    """
    ids = seq.astype(np.uint64) + np.uint64(1)
    keys: list[np.ndarray | None] = [None, _mix64(ids)]
    for _ in range(2, order + 1):
        prev = np.zeros(len(seq), dtype=np.uint64)
        prev[1:] = keys[-1][:-1]
        keys.append(_mix64(prev * _GOLDEN + ids))
    return keys


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that scatters nearby values."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found mask, index into sorted_keys) for each query."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), dtype=bool), np.zeros(len(queries), dtype=np.int64)
    idx = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return sorted_keys[idx] == queries, idx


def _fit_arrays(seq: np.ndarray, pos: np.ndarray, order: int,
                vocab_size: int) -> tuple[dict[str, np.ndarray], list[list[float]]]:
    """Count n-grams of the flattened corpus and build the backoff-form tables."""
    keys = ngram_keys(seq, order)
    grams = [None] + [_unique_grams(seq, pos, keys, k) for k in range(1, order + 1)]
    for k in range(order, 0, -1):  # adjusted counts: raw at the top, continuation below
        g = grams[k]
        g["adjusted"] = g["count"]
        if k < order:
            suffixes, left_types = np.unique(grams[k + 1]["suffix"], return_counts=True)
            continuation = np.zeros(len(g["keys"]), dtype=np.int64)
            continuation[np.searchsorted(g["keys"], suffixes)] = left_types
            g["adjusted"] = np.where(g["starts_bos"], g["count"], continuation)

    arrays: dict[str, np.ndarray] = {}
    all_discounts = []
    prob_lower = None
    for k in range(1, order + 1):
        g = grams[k]
        discounts = _discounts(g["adjusted"])
        all_discounts.append(list(discounts))
        a = g["adjusted"].astype(np.float64)
        d = np.select([a == 1, a == 2, a >= 3], discounts, 0.0)
        if k == 1:
            # Dense over the vocabulary, interpolated with the uniform over all but <s>.
            a_all = np.zeros(vocab_size)
            d_all = np.zeros(vocab_size)
            a_all[g["last"]] = a
            d_all[g["last"]] = d
            total = a_all.sum()
            prob = (a_all - d_all) / total + d_all.sum() / total / (vocab_size - 1)
            prob[BOS_ID] = 1.0  # never predicted; log 0 as a placeholder
            prob_lower = prob
            arrays["logp_1"] = np.log(prob).astype(np.float32)
            continue
        ctx_keys, ctx_of = np.unique(g["context"], return_inverse=True)
        denom = np.bincount(ctx_of, weights=a)
        gamma = np.bincount(ctx_of, weights=d) / denom
        if k == 2:
            lower = prob_lower[g["last"]]
        else:
            lower = prob_lower[np.searchsorted(grams[k - 1]["keys"], g["suffix"])]
        prob = (a - d) / denom[ctx_of] + gamma[ctx_of] * lower
        prob_lower = prob
        arrays[f"keys_{k}"] = g["keys"]
        arrays[f"logp_{k}"] = np.log(prob).astype(np.float32)
        arrays[f"ctx_keys_{k}"] = ctx_keys
        arrays[f"log_gamma_{k}"] = np.log(gamma).astype(np.float32)
    return arrays, all_discounts


def _unique_grams(seq, pos, keys, k) -> dict[str, np.ndarray]:
    """Distinct k-grams ending at predicted positions, with count, context and suffix keys."""
    at = np.flatnonzero((pos >= 1) & (pos >= k - 1))
    uniq, first, inverse, count = np.unique(keys[k][at], return_index=True,
                                            return_inverse=True, return_counts=True)
    for back in range(k):  # every occurrence of a key must be the same k-gram
        tokens = seq[at - back]
        if np.any(tokens != tokens[first][inverse]):
            raise RuntimeError(f"64-bit hash collision among {k}-grams; please report it")
    rep = at[first]
    out = {"keys": uniq, "count": count, "last": seq[rep],
           "starts_bos": seq[rep - (k - 1)] == BOS_ID}
    if k >= 2:
        out["context"] = keys[k - 1][rep - 1]  # the first k-1 tokens
        out["suffix"] = keys[k - 1][rep]  # the last k-1 tokens
    return out


def _discounts(adjusted: np.ndarray) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from counts of counts."""
    n = np.bincount(np.minimum(adjusted, 5), minlength=5)[1:5].astype(np.float64)
    if np.all(n > 0):
        y = n[0] / (n[0] + 2 * n[1])
        d = tuple(float(j - (j + 1) * y * n[j] / n[j - 1]) for j in (1, 2, 3))
        if all(0 < dj < j for j, dj in zip((1, 2, 3), d, strict=True)):
            return d
    return FALLBACK_DISCOUNTS


def _read_npz(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    if not os.path.isfile(path):
        raise CurateError(f"perplexity model not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(arrays.pop("header").tobytes().decode())
    except (OSError, ValueError, KeyError) as exc:
        raise CurateError(f"cannot read perplexity model {path}: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CurateError(f"{path} is not a curate perplexity model ({FORMAT})")
    return meta, arrays
