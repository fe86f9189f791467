"""WordNet glosses: each synset's words and definition, grouped into documents of a few KB."""

from __future__ import annotations

import re
from collections.abc import Iterator

from curate.corpus.document import Document, group_texts, read_file
from curate.corpus.dpkg import Dpkg


def gloss_line(line: str) -> str | None:
    """``"word, other word: gloss"`` for one line of a WordNet ``data.*`` file; None for
    the licence header (lines that start with two spaces) and lines without a gloss."""
    if line.startswith("  ") or " | " not in line:
        return None
    fields, _, gloss = line.partition(" | ")
    fields = fields.split()
    count = int(fields[3], 16)  # synset: offset, lexicon file, type, word count, words
    words = [re.sub(r"\([a-z]+\)$", "", w).replace("_", " ")  # adjective markers: (a), (p)
             for w in fields[4:4 + 2 * count:2]]
    return f"{', '.join(words)}: {gloss.strip()}"


class WordNetGlosses:
    """One line per synset of ``folder/data.<part>`` (see :func:`gloss_line`), consecutive
    lines joined into documents of ``chars`` characters or more. ``file`` is
    ``<folder>/data.<part>#<n>``."""

    def __init__(self, package: str, folder: str, *, license: str,
                 parts=("noun", "verb", "adj", "adv"), chars: int = 4000):
        self.package, self.folder, self.license = package, folder, license
        self.parts, self.chars = tuple(parts), chars

    def describe(self) -> str:
        return f"{self.package}: {self.folder}/data.{{{','.join(self.parts)}}} (glosses, grouped)"

    def documents(self, dpkg: Dpkg) -> Iterator[Document]:
        version = dpkg.version(self.package)
        for part in self.parts:
            path = f"{self.folder}/data.{part}"
            text, sha = read_file(path)
            glosses = filter(None, map(gloss_line, text.splitlines()))
            for n, doc in enumerate(group_texts(glosses, self.chars, "\n")):
                yield Document(self.package, version, f"{path}#{n}", doc + "\n", sha)
