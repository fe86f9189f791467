"""The general reader: one document per installed file whose path matches a pattern."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

from curate.corpus.document import Document, read_file
from curate.corpus.dpkg import Dpkg


def glob_regex(pattern: str) -> re.Pattern:
    """A compiled regular expression for a path pattern: ``**/`` matches any folders (or
    none), a bare ``**`` anything, ``*`` any characters but ``/``, ``?`` one of them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i]) or re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def distinct_files(paths) -> list[str]:
    """The regular files among ``paths`` (links followed), one path per file: a link to a
    file also listed under its own name is dropped; sorted."""
    by_target: dict[str, list[str]] = {}
    for path in paths:
        if os.path.isfile(path):
            by_target.setdefault(os.path.realpath(path), []).append(path)
    return sorted(target if target in names else min(names)
                  for target, names in by_target.items())


class Files:
    """One document per installed file whose path matches ``pattern`` and no ``exclude``.

    Args:
        pattern: an absolute path pattern (see :func:`glob_regex`).
        package: read only this Debian package's files; None: the files of every installed
            package, each document attributed to the package that ships it (files no
            package ships, such as links made by update-alternatives, are left out).
        exclude: path patterns to leave out.
        to_text: applied to the decoded text (e.g. HTML to text); default: the text as is.
        license: the licence of the files, for the manifest.
    """

    def __init__(self, pattern: str, *, license: str, package: str | None = None, exclude=(),
                 to_text: Callable[[str], str] | None = None):
        self.pattern, self.package, self.exclude = pattern, package, tuple(exclude)
        self.to_text, self.license = to_text, license
        self._match = glob_regex(pattern).match
        self._excluded = [glob_regex(p).match for p in self.exclude]

    def describe(self) -> str:
        skip = "".join(f" but {p}" for p in self.exclude)
        return f"{self.package or 'installed packages'}: {self.pattern}{skip}"

    def paths(self, dpkg: Dpkg) -> dict[str, str]:
        """Matching path -> package that ships it, sorted by path."""
        owners = ({p: self.package for p in dpkg.files(self.package)} if self.package
                  else dpkg.owners())
        matching = (p for p in owners
                    if self._match(p) and not any(ex(p) for ex in self._excluded))
        return {path: owners[path] for path in distinct_files(matching)}

    def documents(self, dpkg: Dpkg) -> Iterator[Document]:
        for path, package in self.paths(dpkg).items():
            text, sha = read_file(path)
            if self.to_text is not None:
                text = self.to_text(text)
            yield Document(package, dpkg.version(package), path, text, sha)
