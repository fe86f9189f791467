"""A fastText quality classifier: the probability that a text belongs to a chosen label.

The DCLM recipe: a supervised fastText model with word bigrams, trained on
high-quality reference text (``__label__hq``) against ordinary web text
(``__label__lq`` here; DCLM's released classifier calls it ``__label__cc``). The
score column is ``fasttext_quality_<label>``: the probability fastText gives that
label, exactly as fastText's per-text predict reports it. fastText adds 1e-5 to
every probability before taking logs, so a confident prediction can read 1.00001;
the value is kept as is so that thresholds published for fastText classifiers
carry over unchanged.

Text is normalised to one line (``"\\n"`` becomes a space) for training and
scoring; fastText treats every other ASCII whitespace character as a word separator
already, so this matches DCLM's ``" ".join(text.splitlines())``.

Models persist only as fastText ``.bin`` files. A scorer pickles (for executors) as
the path of its ``.bin``, or, when it was fitted and not saved, as the ``.bin``
bytes; the worker loads the model lazily on its first batch.
"""

from __future__ import annotations

import os
import random
import re
import struct
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, FittedScorer
from curate.core.validate import integer, non_negative_int, number, positive_int, string

POSITIVE_LABEL = "hq"
NEGATIVE_LABEL = "lq"


def model_path(owner: str, value, suffix: str) -> str | None:
    """A model parameter: None, or a path (``str`` or ``os.PathLike``) as a string."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise CurateError(f"{owner}: model must be the path of a {suffix} file or none, "
                          f"got {value!r}")
    return value


def one_line(text: str) -> str:
    """``text`` with newlines replaced by spaces (fastText reads one example per line)."""
    return text.replace("\n", " ")


@register_scorer
class FastTextQuality(FittedScorer):
    """Score texts with a supervised fastText classifier.

    Parameters
    ----------
    model:
        Path of a fastText ``.bin`` (any supervised model, e.g. DCLM's classifier),
        or None for a scorer that will be fitted.
    label:
        The label whose probability is scored, with or without fastText's label
        prefix (``"hq"`` or ``"__label__hq"``). Default: ``"hq"`` when the model has
        it, otherwise the model's first label (its most frequent training label).
    text_column:
        Column holding the text.

    Output: one float32 column ``fasttext_quality_<label>`` in [0, 1.00001].
    """

    name = "fasttext_quality"
    kind = "model"
    batch_size = 1000

    def __init__(self, model: str | os.PathLike | None = None, label: str | None = None,
                 text_column: str = "text"):
        self.model = model_path(self.name, model, ".bin")
        self.label = string(self.name, "label", label, optional=True)
        self.text_column = string(self.name, "text_column", text_column)
        self._path = None if self.model is None else os.path.abspath(self.model)
        if self._path is not None:  # fail now, not in a worker on its first batch
            if not os.path.isfile(self._path):
                raise CurateError(f"fastText model not found: {self.model}")
            check_fasttext_bin(self._path)
        self._bin: bytes | None = None  # .bin bytes of a fitted, unsaved model
        self._ft = None

    # -- model access -------------------------------------------------------------

    @classmethod
    def load(cls, path, label: str | None = None, text_column: str = "text") -> FastTextQuality:
        """Load a fastText ``.bin``; checks the file and the label now, not on first batch."""
        scorer = cls(model=path, label=label, text_column=text_column)
        scorer.scored_label()
        return scorer

    def fasttext_model(self):
        """The fastText model object, loaded on first use in this process."""
        if self._ft is None:
            if self._path is not None:
                self._ft = _load_bin(self._path)
            elif self._bin is not None:
                self._ft = _load_bytes(self._bin)
            else:
                raise CurateError("fasttext_quality has no model: pass model=PATH.bin or fit it")
        return self._ft

    def labels(self) -> list[str]:
        """The model's labels without fastText's prefix, most frequent first."""
        ft = self.fasttext_model()
        prefix = ft.f.getArgs().label
        return [lab[len(prefix):] if lab.startswith(prefix) else lab for lab in ft.labels]

    def scored_label(self) -> str:
        """The label whose probability is scored (without prefix)."""
        labels = self.labels()
        if self.label is None:
            return POSITIVE_LABEL if POSITIVE_LABEL in labels else labels[0]
        prefix = self.fasttext_model().f.getArgs().label
        wanted = self.label[len(prefix):] if self.label.startswith(prefix) else self.label
        if wanted not in labels:
            raise CurateError(f"fastText model has no label {self.label!r}; "
                              f"its labels are: {', '.join(labels)}")
        return wanted

    def column(self) -> str:
        """The output column name, ``fasttext_quality_<label>`` in snake_case."""
        return self.col(re.sub(r"\W+", "_", self.scored_label().lower()).strip("_"))

    @property
    def primary(self) -> str:
        return self.column()

    @property
    def directions(self) -> dict[str, str]:
        """The scored label's probability: higher is better."""
        return {self.column(): EASIER}

    # -- fit / save ---------------------------------------------------------------

    def fit(self, positive: Iterable[str], negative: Iterable[str], *, epoch: int = 5,
            lr: float = 0.1, word_ngrams: int = 2, dim: int = 100, bucket: int = 200_000,
            min_count: int = 1, seed: int = 0, threads: int = 1) -> FastTextQuality:
        """Train on texts labelled ``hq`` (``positive``) and ``lq`` (``negative``).

        Empty and None texts are skipped. Training lines are shuffled with
        ``random.Random(seed)`` and fastText gets ``seed``; ``threads=1`` (the
        default) avoids Hogwild's thread races, so the same texts and seed give the same
        model byte for byte with ``fasttext-wheel`` 0.9.2. (The ``fasttext-numpy2-wheel``
        build is not reproducible and sporadically stops with "Encountered NaN." on the
        same inputs; see the README.)
        ``bucket`` (hashed n-gram rows) defaults to 200k rather than fastText's 2M so
        that a model with ``dim=100`` is ~80 MB, not ~800 MB; raise it for large
        training sets. The other defaults are fastText's supervised defaults, with
        word bigrams as in DCLM. Returns self, now scoring ``fasttext_quality_hq``.
        """
        import fasttext

        owner = f"{self.name}.fit"
        epoch = positive_int(owner, "epoch", epoch)
        lr = number(owner, "lr", lr, minimum=0, strict_minimum=True)
        word_ngrams = positive_int(owner, "word_ngrams", word_ngrams)
        dim = positive_int(owner, "dim", dim)
        # word n-grams hash into ``bucket`` rows: fastText divides by it
        bucket = integer(owner, "bucket", bucket, minimum=1 if word_ngrams > 1 else 0)
        min_count = positive_int(owner, "min_count", min_count)
        seed = non_negative_int(owner, "seed", seed)
        threads = positive_int(owner, "threads", threads)
        lines = _training_lines(positive, POSITIVE_LABEL) + _training_lines(negative,
                                                                             NEGATIVE_LABEL)
        counts = {lab: sum(line.startswith(f"__label__{lab} ") for line in lines)
                  for lab in (POSITIVE_LABEL, NEGATIVE_LABEL)}
        if min(counts.values()) == 0:
            raise CurateError(f"fasttext_quality.fit needs non-empty positive and negative "
                              f"texts; got {counts[POSITIVE_LABEL]} positive and "
                              f"{counts[NEGATIVE_LABEL]} negative")
        random.Random(seed).shuffle(lines)
        with tempfile.TemporaryDirectory(prefix="curate-fasttext-") as tmp:
            train_file = Path(tmp) / "train.txt"
            train_file.write_text("".join(lines), encoding="utf-8")
            try:
                self._ft = fasttext.train_supervised(
                    input=str(train_file), epoch=epoch, lr=lr, wordNgrams=word_ngrams, dim=dim,
                    bucket=bucket, minCount=min_count, seed=seed, thread=threads, verbose=0)
            except RuntimeError as exc:  # e.g. "Encountered NaN." when lr is too high
                raise CurateError(f"fastText training failed ({exc}); try a lower lr") from None
        self.model, self._path, self._bin = None, None, None
        self.label = POSITIVE_LABEL
        return self

    def save(self, path) -> None:
        """Write the model as a fastText ``.bin`` (atomically); the scorer then refers to it."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            self.fasttext_model().save_model(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self.model, self._path, self._bin = path, os.path.abspath(path), None

    # -- scoring ------------------------------------------------------------------

    def score_batch(self, batch: pa.Table) -> pa.Table:
        """One float32 column, one row per input row; null text scores as empty text."""
        ft = self.fasttext_model()
        target = ft.f.getArgs().label + self.scored_label()
        column = pc.fill_null(batch.column(self.text_column), "")
        texts = pc.replace_substring(column, "\n", " ").to_pylist()
        # The binding's per-text predict, not the batched ``predict(list)``: under numpy 2,
        # fasttext-wheel 0.9.2's batched path returns rows that repeat the top label's
        # probability for every label, so any label but the top one reads wrong.
        predict = ft.f.predict
        scores = np.zeros(len(texts), dtype=np.float32)
        for i, text in enumerate(texts):
            for prob, label in predict(text, -1, 0.0, "strict"):
                if label == target:
                    scores[i] = prob
                    break
        return pa.table({self.column(): pa.array(scores)})

    # -- pickling -----------------------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_ft"] = None
        if self._path is None and self._bin is None and self._ft is not None:
            self._bin = state["_bin"] = _model_bytes(self._ft)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _training_lines(texts: Iterable[str], label: str) -> list[str]:
    if isinstance(texts, str):
        raise CurateError("fasttext_quality.fit expects an iterable of texts, not one string")
    return [f"__label__{label} {one_line(t)}\n" for t in texts if t and not t.isspace()]


def _open_model(path: str):
    """``fasttext.load_model`` without the deprecation notice it prints on every call."""
    from fasttext.FastText import _FastText

    return _FastText(model_path=path)


#: The first two int32 of a fastText ``.bin``: the file-format magic and the newest version.
FASTTEXT_MAGIC = 793712314
FASTTEXT_VERSION = 12
_ARGS = struct.Struct("<12id")  # dim ws epoch minCount neg wordNgrams loss model bucket minn
#                                 maxn lrUpdateRate, then t (double)
_DICT = struct.Struct("<3i2q")  # size nwords nlabels, then ntokens pruneidx_size (int64)
_DENSE = struct.Struct("<2q")  # rows, columns (then rows * columns float32)
_QUANT = struct.Struct("<?2qi")  # qnorm, rows, columns, codesize (then codesize bytes)
_PQ = struct.Struct("<4i")  # dim nsubq dsub lastdsub (then dim * 256 float32 centroids)


def check_fasttext_bin(path: str) -> None:
    """Check that ``path`` is a whole fastText ``.bin`` before fastText reads it.

    fastText trusts the file: a file cut inside its dictionary makes it read words past
    the end forever (memory grows until the machine gives out), and a file cut inside a
    matrix loads as a model with missing weights. This walks the layout that
    ``FastText::saveModel`` writes, without loading anything: magic 793712314 and version
    (int32 each; fastText reads versions 11 and 12 this way), the arguments (12 int32 and a
    double), the dictionary (counts, then one NUL-terminated word, an int64 count and a
    type byte per entry, then the pruned-index pairs), then for the input and the output
    matrix a quantization flag and either rows x columns float32 or a quantized matrix with
    its product quantizers. Every size comes from the header and the matrix dimensions;
    the file must be at least as long as they add up to. Reads only the header and the
    dictionary (memory-mapped), never the weights.

    Raises:
        CurateError: ``"<path>: not a complete fastText model: <what is wrong>"``.
    """
    import mmap

    def fail(why: str) -> CurateError:
        return CurateError(f"{path}: not a complete fastText model: {why}")

    size = os.path.getsize(path)
    if size < 8:
        raise fail(f"{size} bytes, shorter than the 8-byte signature")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        magic, version = struct.unpack_from("<2i", data, 0)
        if magic != FASTTEXT_MAGIC:
            raise fail(f"magic number {magic}, expected {FASTTEXT_MAGIC}")
        if version not in (11, FASTTEXT_VERSION):
            raise fail(f"format version {version}, expected 11 or {FASTTEXT_VERSION}")
        pos = 8

        def read(layout: struct.Struct, what: str) -> tuple:
            nonlocal pos
            if pos + layout.size > size:
                raise fail(f"the file ends ({size} bytes) inside the {what} at byte {pos}")
            values = layout.unpack_from(data, pos)
            pos += layout.size
            return values

        def skip(count: int, what: str) -> None:
            nonlocal pos
            if count < 0 or pos + count > size:
                raise fail(f"the {what} needs {count} bytes from byte {pos}; the file has "
                           f"{size} bytes")
            pos += count

        args = read(_ARGS, "arguments")
        dim, loss, model = args[0], args[6], args[7]
        if dim < 1 or loss not in (1, 2, 3, 4) or model not in (1, 2, 3):
            raise fail(f"implausible arguments (dim {dim}, loss {loss}, model {model})")
        entries, nwords, nlabels, _, prune_size = read(_DICT, "dictionary header")
        if min(entries, nwords, nlabels) < 0 or nwords + nlabels != entries \
                or prune_size < -1:
            raise fail(f"implausible dictionary header ({entries} entries, {nwords} words, "
                       f"{nlabels} labels, {prune_size} pruned)")
        # Each entry takes at least 10 bytes (NUL, count, type): a file cut well before the
        # dictionary's end fails here, before any word is looked for.
        if pos + 10 * entries > size:
            raise fail(f"the dictionary's {entries} entries need at least {10 * entries} "
                       f"bytes from byte {pos}; the file has {size} bytes")
        find = data.find
        for index in range(entries):
            end = find(b"\0", pos)
            if end < 0 or end + 10 > size:
                raise fail(f"the file ends ({size} bytes) inside dictionary entry "
                           f"{index} of {entries}")
            if data[end + 9] > 1:
                raise fail(f"dictionary entry {index} has type {data[end + 9]}")
            pos = end + 10
        skip(8 * max(prune_size, 0), "pruned index")
        (quant_input,) = read(struct.Struct("<?"), "input quantization flag")
        _matrix(read, skip, quant_input, dim, "input matrix", fail)
        (quant_output,) = read(struct.Struct("<?"), "output quantization flag")
        _matrix(read, skip, quant_input and quant_output, dim, "output matrix", fail)


def _matrix(read, skip, quantized: bool, dim: int, what: str, fail) -> None:
    """Step over one saved matrix (``DenseMatrix::save`` or ``QuantMatrix::save``)."""
    if not quantized:
        rows, columns = read(_DENSE, f"{what} dimensions")
        if rows < 0 or columns != dim:
            raise fail(f"{what} is {rows} x {columns}, expected {dim} columns")
        skip(4 * rows * columns, f"{what} ({rows} x {columns} float32)")
        return
    qnorm, rows, columns, codesize = read(_QUANT, f"quantized {what} header")
    if rows < 0 or columns != dim or codesize < 0:
        raise fail(f"quantized {what} is {rows} x {columns} with {codesize} code bytes")
    skip(codesize, f"{what} codes")
    for quantizer in ("product quantizer", "norm quantizer")[:1 + bool(qnorm)]:
        if quantizer == "norm quantizer":
            skip(rows, f"{what} norm codes")
        pq_dim = read(_PQ, f"{what} {quantizer}")[0]
        skip(4 * 256 * pq_dim, f"{what} {quantizer} centroids")


def _load_bin(path: str):
    if not os.path.isfile(path):
        raise CurateError(f"fastText model not found: {path}")
    check_fasttext_bin(path)
    try:
        return _open_model(path)
    except ValueError as exc:
        raise CurateError(f"cannot load fastText model {path}: {exc}") from None


def _load_bytes(data: bytes):
    fd, tmp = tempfile.mkstemp(suffix=".bin", prefix="curate-fasttext-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        check_fasttext_bin(tmp)
        return _open_model(tmp)  # fastText reads the whole file; it can go now
    finally:
        os.remove(tmp)


def _model_bytes(ft) -> bytes:
    fd, tmp = tempfile.mkstemp(suffix=".bin", prefix="curate-fasttext-")
    os.close(fd)
    try:
        ft.save_model(tmp)
        return Path(tmp).read_bytes()
    finally:
        os.remove(tmp)
