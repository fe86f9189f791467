"""Tokenizers for the language models: raw bytes, or a byte-level BPE trained here.

Both map text to integer ids and back, with the same special tokens after the
ordinary vocabulary: ``<|endoftext|>`` (the end-of-document token the packer puts
after every document) and any control tokens (e.g. ``<|good|>``, ``<|bad|>`` for
conditional training). A special token written inside a text is encoded as its one id.

- :class:`ByteTokenizer`: ids 0-255 are the UTF-8 bytes; no training, nothing to save
  but its special tokens.
- :class:`BpeTokenizer`: a Hugging Face ``tokenizers`` byte-level BPE
  (:func:`train_bpe`), saved and loaded as ``tokenizer.json``, never pickled.

``token_bytes()`` gives each id's length in UTF-8 bytes (0 for special tokens), so
bits per byte can be computed from per-token losses of either tokenizer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from curate.core.errors import CurateError
from curate.core.hashing import fingerprint

EOD = "<|endoftext|>"


class _SpecialTokens:
    """What both tokenizers share: ``_ids`` maps each special token to its id."""

    _ids: dict[str, int]

    @property
    def eod_id(self) -> int:
        return self._ids[EOD]

    def token_id(self, token: str) -> int:
        """The id of special token ``token``."""
        if token not in self._ids:
            raise CurateError(f"{token!r} is not a special token of this tokenizer; it has "
                              f"{', '.join(self._ids)}")
        return self._ids[token]


class ByteTokenizer(_SpecialTokens):
    """UTF-8 bytes as ids 0-255, then ``EOD`` (256) and ``control`` tokens (257, ...)."""

    kind = "bytes"

    def __init__(self, control: Iterable[str] = ()):
        self.specials = [EOD, *_control(control)]
        self._ids = {token: 256 + i for i, token in enumerate(self.specials)}
        self._split = re.compile("(" + "|".join(map(re.escape, self.specials)) + ")")

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.specials)

    def encode(self, text: str) -> np.ndarray:
        """``[n]`` int32 ids of ``text``; special tokens in it become their ids."""
        parts = []
        for piece in self._split.split(text):
            if piece in self._ids:
                parts.append(np.array([self._ids[piece]], dtype=np.int32))
            elif piece:
                parts.append(np.frombuffer(piece.encode("utf-8"), dtype=np.uint8)
                             .astype(np.int32))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(t) for t in texts]

    def decode(self, ids) -> str:
        """Text of ``ids``; special tokens are written as their strings."""
        out, run = [], bytearray()
        names = {i: t for t, i in self._ids.items()}
        for i in (int(i) for i in ids):
            if i < 256:
                run.append(i)
                continue
            out.append(run.decode("utf-8", errors="replace"))
            run = bytearray()
            out.append(names.get(i, ""))
        out.append(run.decode("utf-8", errors="replace"))
        return "".join(out)

    def token_bytes(self) -> np.ndarray:
        """``[vocab_size]`` int64 UTF-8 byte length of each id (0 for specials)."""
        return np.concatenate([np.ones(256, dtype=np.int64),
                               np.zeros(len(self.specials), dtype=np.int64)])

    @property
    def fingerprint(self) -> str:
        return fingerprint({"kind": self.kind, "specials": self.specials})

    def save(self, path) -> Path:
        """Write ``path`` (JSON naming the kind and special tokens)."""
        from curate.core.cache import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"curate_tokenizer": "bytes",
                                       "specials": self.specials}, indent=1) + "\n")
        return path


class BpeTokenizer(_SpecialTokens):
    """A Hugging Face ``tokenizers.Tokenizer`` (byte-level BPE) with curate's specials.

    The special tokens are the tokenizer's added special tokens; ``EOD`` must be one.
    """

    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.specials = _added_specials(tokenizer)
        if EOD not in self.specials:
            raise CurateError(f"BPE tokenizer has no {EOD} special token")
        self._ids = {t: tokenizer.token_to_id(t) for t in self.specials}

    @classmethod
    def load(cls, path) -> BpeTokenizer:
        """Read a ``tokenizer.json``."""
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # tokenizers raises its own Exception type
            raise CurateError(f"{path}: not a tokenizer.json ({exc})") from None

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int32)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int32)
                for e in self.tokenizer.encode_batch(list(texts))]

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_bytes(self) -> np.ndarray:
        from tokenizers.pre_tokenizers import ByteLevel

        # Byte-level BPE spells each byte as one printable character: invert that map.
        alphabet = {ch: 1 for ch in ByteLevel.alphabet()}
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        special = set(self._ids.values())
        for token, i in self.tokenizer.get_vocab(with_added_tokens=True).items():
            if i not in special:
                lengths[i] = sum(alphabet.get(ch, len(ch.encode("utf-8"))) for ch in token)
        return lengths

    @property
    def fingerprint(self) -> str:
        return fingerprint({"kind": self.kind, "json": self.tokenizer.to_str()})

    def save(self, path) -> Path:
        """Write ``tokenizer.json`` to ``path``."""
        from curate.core.cache import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            self.tokenizer.save(str(tmp))
        return path


def train_bpe(batches: Iterable[list[str]], vocab_size: int = 4096,
              control: Iterable[str] = ()) -> BpeTokenizer:
    """Train a byte-level BPE of ``vocab_size`` ids (specials included) on text batches.

    ``batches`` yields lists of documents (e.g. a pool's text column, batch by batch).
    The 256 byte symbols are always in the vocabulary, so any text encodes.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = [EOD, *_control(control)]
    if vocab_size < 256 + len(specials) + 1:
        raise CurateError(f"vocab_size must exceed 256 bytes + {len(specials)} special "
                          f"tokens, got {vocab_size}")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(batches, trainer=trainer)
    return BpeTokenizer(tokenizer)


def load_tokenizer(path) -> ByteTokenizer | BpeTokenizer:
    """Read a tokenizer saved by either class's ``save``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CurateError(f"{path}: cannot read tokenizer ({exc})") from None
    if isinstance(data, dict) and data.get("curate_tokenizer") == "bytes":
        specials = data.get("specials", [EOD])
        return ByteTokenizer(specials[1:])
    return BpeTokenizer.load(path)


def make_tokenizer(spec, *, control=(), train_batches=None):
    """The tokenizer ``spec`` names: ``"bytes"``, ``"bpe:VOCAB"`` (trained on
    ``train_batches()``, an iterator of text batches) or a path to a saved tokenizer."""
    if spec in (None, "bytes"):
        return ByteTokenizer(control)
    if isinstance(spec, str) and spec.startswith("bpe"):
        _, _, size = spec.partition(":")
        try:
            vocab = int(size) if size else 4096
        except ValueError:
            raise CurateError(f"tokenizer {spec!r}: expected bpe:VOCAB_SIZE, e.g. "
                              "bpe:4096") from None
        if train_batches is None:
            raise CurateError(f"tokenizer {spec!r} needs training text")
        return train_bpe(train_batches(), vocab, control)
    if isinstance(spec, (ByteTokenizer, BpeTokenizer)):
        return spec
    return load_tokenizer(spec)


def _control(tokens: Iterable[str]) -> list[str]:
    tokens = list(tokens)
    for t in tokens:
        if not isinstance(t, str) or not t or t == EOD:
            raise CurateError(f"control tokens must be non-empty strings other than {EOD}, "
                              f"got {t!r}")
    if len(set(tokens)) != len(tokens):
        raise CurateError(f"control tokens repeat: {tokens}")
    return tokens


def _added_specials(tokenizer) -> list[str]:
    decoder = tokenizer.get_added_tokens_decoder()
    return [decoder[i].content for i in sorted(decoder) if decoder[i].special]
