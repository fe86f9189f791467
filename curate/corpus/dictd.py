"""Entries of a dictd dictionary (such as GCIDE), grouped into documents of a few KB."""

from __future__ import annotations

from collections.abc import Iterator

from curate.corpus.document import Document, decode, group_texts, read_bytes
from curate.corpus.dpkg import Dpkg

#: dictd's base64 digits, for the offsets and lengths in its ``.index`` files.
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: Headwords of dictd's own header entries (database name, URL, info).
HEADER_PREFIXES = ("00-database", "00database")


def b64_number(digits: str) -> int:
    value = 0
    for digit in digits:
        value = value * 64 + B64.index(digit)
    return value


def entry_spans(index: str) -> list[tuple[int, int]]:
    """``(offset, length)`` of each entry that a dictd ``.index`` text points to, in file
    order: each span once (several headwords may share one), header entries and spans that
    overlap an earlier one left out."""
    spans, header = set(), set()
    for line in index.splitlines():
        word, offset, length = line.split("\t")[:3]
        span = (b64_number(offset), b64_number(length))
        (header if word.startswith(HEADER_PREFIXES) else spans).add(span)
    kept, end = [], 0
    for offset, length in sorted(spans - header):
        if offset >= end:
            kept.append((offset, length))
            end = offset + length
    return kept


class DictdEntries:
    """The entries of ``dictionary`` (``.dict`` or ``.dict.dz``, split with the ``.index``
    beside it) in file order, consecutive entries joined into documents of ``chars``
    characters or more. ``file`` is ``<dictionary>#<n>``."""

    def __init__(self, package: str, dictionary: str, *, license: str, chars: int = 4000):
        self.package, self.dictionary, self.license, self.chars = (package, dictionary,
                                                                    license, chars)
        self.index = dictionary.removesuffix(".dz").removesuffix(".dict") + ".index"

    def describe(self) -> str:
        return f"{self.package}: {self.dictionary} (entries, grouped)"

    def documents(self, dpkg: Dpkg) -> Iterator[Document]:
        data, sha = read_bytes(self.dictionary)
        index, _ = read_bytes(self.index)
        entries = (decode(data[offset:offset + length]).strip("\n")
                   for offset, length in entry_spans(decode(index)))
        version = dpkg.version(self.package)
        for n, text in enumerate(group_texts(entries, self.chars, "\n\n")):
            yield Document(self.package, version, f"{self.dictionary}#{n}", text + "\n", sha)
