"""Token pools: documents packed into one memory-mapped stream of token ids.

A pool is a folder holding ``tokens.bin`` (the ids of every document, each followed
by the end-of-document token, as little-endian uint16, or uint32 for vocabularies over
65,536) and ``pool.json`` (counts, dtype, the tokenizer's and the texts' fingerprints) and
``token_bytes.npy`` (each id's length in UTF-8 bytes, for bits per byte).
Training reads fixed-length sequences straight from the memory map, so a pool of
hundreds of megabytes never becomes Python objects:

    sequence i = stream[i * context : i * context + context + 1]   # inputs + shifted targets

with ``(n_tokens - 1) // context`` sequences (the tail is dropped). One epoch is one
pass over every sequence.

:func:`pack_pool` builds a pool from text batches into a cache folder named by the
fingerprint of the texts and the tokenizer, so the same pool is packed once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import xxhash

from curate.core.cache import default_folder
from curate.core.errors import CurateError
from curate.core.hashing import fingerprint

TOKENS = "tokens.bin"
META = "pool.json"
TOKEN_BYTES = "token_bytes.npy"
#: Bump when the pool's layout changes, so old cached pools are not read.
FORMAT = 1


@dataclass(frozen=True)
class TokenPool:
    """A packed pool on disk; cheap to pickle (it holds the path, not the tokens: the
    metadata and the memory map are opened once per process, on first use)."""

    path: Path

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "path", state["path"])

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.path / META).read_text(encoding="utf-8"))

    @cached_property
    def tokens(self) -> np.memmap:
        """The ``[n_tokens]`` id stream, memory-mapped read-only."""
        return np.memmap(self.path / TOKENS, dtype=np.dtype(self.meta["dtype"]), mode="r")

    @property
    def n_tokens(self) -> int:
        return int(self.meta["tokens"])

    @property
    def n_bytes(self) -> int:
        """UTF-8 bytes of the packed texts."""
        return int(self.meta["bytes"])

    @property
    def token_bytes(self) -> np.ndarray:
        """``[vocab_size]`` UTF-8 byte length of each id (0 for special tokens)."""
        return np.load(self.path / TOKEN_BYTES)

    def n_sequences(self, context: int) -> int:
        return max(self.n_tokens - 1, 0) // context

    def sequences(self, index: np.ndarray, context: int) -> np.ndarray:
        """``[len(index), context + 1]`` int64 ids of the sequences at ``index``."""
        starts = np.asarray(index, dtype=np.int64)[:, None] * context
        return self.tokens[starts + np.arange(context + 1)].astype(np.int64)


def pack_pool(batches: Callable[[], Iterable[list[str]]], tokenizer, *, cache=None,
              name: str = "pool") -> TokenPool:
    """Pack the documents ``batches()`` yields (lists of texts) with ``tokenizer``.

    ``batches`` is called twice (once to fingerprint the texts, once to encode them on a
    miss), so it must return a fresh iterator each time. The pool lands in
    ``<cache>/tokens/<fingerprint>/`` (``cache`` default ``$CURATE_CACHE``) and is
    reused when the same texts are packed again with the same tokenizer.
    """
    digest, docs = _text_digest(batches())
    if docs == 0:
        raise CurateError(f"{name}: no documents to pack")
    key = fingerprint({"format": FORMAT, "texts": digest, "tokenizer": tokenizer.fingerprint})
    dtype = np.uint16 if tokenizer.vocab_size <= 2 ** 16 else np.uint32

    def write(tmp: Path) -> None:
        n_tokens = n_bytes = 0
        eod = np.array([tokenizer.eod_id], dtype=dtype)
        with open(tmp / TOKENS, "wb") as out:
            for texts in batches():
                for ids in tokenizer.encode_batch(list(texts)):
                    out.write(ids.astype(dtype).tobytes())
                    out.write(eod.tobytes())
                    n_tokens += len(ids) + 1
                n_bytes += sum(len(t.encode("utf-8")) for t in texts)
        _finish(tmp, tokenizer.token_bytes(), {
            "format": FORMAT, "name": name, "documents": docs, "tokens": n_tokens,
            "bytes": n_bytes, "dtype": np.dtype(dtype).str, "texts": digest,
            "tokenizer": tokenizer.fingerprint, "vocab_size": tokenizer.vocab_size,
            "eod": int(tokenizer.eod_id)})

    return _written(Path(cache or default_folder()) / "tokens" / key, write)


def _written(folder: Path, write) -> TokenPool:
    """The pool in ``folder``; unless it is there, ``write(tmp)`` fills a temporary folder
    that is then renamed into place, so a killed run never leaves half a pool and two
    processes writing the same pool do not clash."""
    if (folder / META).is_file():
        return TokenPool(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another process wrote the same pool first
        shutil.rmtree(tmp, ignore_errors=True)
    return TokenPool(folder)


def _finish(tmp: Path, token_bytes: np.ndarray, meta: dict) -> None:
    np.save(tmp / TOKEN_BYTES, token_bytes)
    (tmp / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _text_digest(batches: Iterable[list[str]]) -> tuple[str, int]:
    """xxh3-128 over the texts (each length-prefixed) and the number of documents."""
    h, docs = xxhash.xxh3_128(), 0
    for texts in batches:
        for text in texts:
            data = text.encode("utf-8")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
            docs += 1
    return h.hexdigest(), docs


def prefix_pool(parts: list[tuple[TokenPool, int]], *, cache=None,
                name: str = "pool") -> TokenPool:
    """A pool of the first ``n`` tokens of each ``(pool, n)`` in ``parts``, one after the
    other (a document cut at ``n`` ends there). Prefixes of one packed stream of shuffled
    documents are nested pools: the pool of ``n`` tokens holds the pool of ``m < n``.

    Cached like :func:`pack_pool`, keyed by the parts' texts and lengths.
    """
    if not parts:
        raise CurateError(f"{name}: no parts")
    tokenizers = {pool.meta["tokenizer"] for pool, _ in parts}
    if len(tokenizers) != 1:
        raise CurateError(f"{name}: parts were packed with different tokenizers")
    for pool, n in parts:
        if not 0 < n <= pool.n_tokens:
            raise CurateError(f"{name}: asked for {n:,} tokens of a pool of {pool.n_tokens:,}")
    first = parts[0][0].meta
    texts = fingerprint([[pool.meta["texts"], int(n)] for pool, n in parts])
    key = fingerprint({"format": FORMAT, "prefixes": texts, "tokenizer": first["tokenizer"]})
    token_bytes = parts[0][0].token_bytes
    eod = int(first.get("eod", parts[0][0].tokens[-1]))  # a packed stream ends on EOD

    def write(tmp: Path) -> None:
        documents = n_bytes = 0
        with open(tmp / TOKENS, "wb") as out:
            for pool, n in parts:
                ids = np.asarray(pool.tokens[:n])
                out.write(ids.tobytes())
                documents += int(np.count_nonzero(ids == eod)) + int(ids[-1] != eod)
                n_bytes += int(token_bytes[ids].sum())
        _finish(tmp, token_bytes, {
            **{k: first[k] for k in ("dtype", "tokenizer", "vocab_size")}, "format": FORMAT,
            "eod": eod, "name": name, "documents": documents,
            "tokens": int(sum(n for _, n in parts)), "bytes": n_bytes, "texts": texts})

    return _written(Path(cache or default_folder()) / "tokens" / key, write)
