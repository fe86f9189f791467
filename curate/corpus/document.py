"""A document with its provenance, and the helpers every reader shares."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from curate.core.errors import CurateError

#: Suffixes of gzip-compressed files (``.dz`` is dictd's seekable gzip).
GZIP_SUFFIXES = (".gz", ".dz")


class Document(NamedTuple):
    """One document: its text and where it comes from.

    ``file`` is the installed path (or a path inside the package), with ``#N`` appended
    for the N-th document (from 0) cut from one file; ``sha256`` is the hex digest of
    the source file's bytes as installed (compressed, if it is); ``lang`` is a BCP 47
    tag where the slice knows the language, else None.
    """

    package: str
    version: str
    file: str
    text: str
    sha256: str
    lang: str | None = None


def read_bytes(path: str | Path) -> tuple[bytes, str]:
    """``(content, sha256)`` of a file: the content gunzipped when the name ends in
    ``.gz``/``.dz``, the SHA-256 hex digest of the bytes as stored."""
    path = Path(path)
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if not path.name.endswith(GZIP_SUFFIXES):
        return raw, sha
    try:
        return gzip.decompress(raw), sha
    except (OSError, EOFError, zlib.error) as exc:
        raise CurateError(f"{path}: not a readable gzip file ({exc})") from None


def read_file(path: str | Path) -> tuple[str, str]:
    """``(text, sha256)`` of a file as :func:`read_bytes` reads it, decoded as UTF-8 with
    undecodable bytes replaced."""
    data, sha = read_bytes(path)
    return decode(data), sha


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def group_texts(texts: Iterable[str], chars: int, sep: str) -> Iterator[str]:
    """Consecutive ``texts`` joined with ``sep`` into documents of at least ``chars``
    characters (the last one may be shorter)."""
    group: list[str] = []
    size = 0
    for text in texts:
        group.append(text)
        size += len(text) + len(sep)
        if size >= chars:
            yield sep.join(group)
            group, size = [], 0
    if group:
        yield sep.join(group)
