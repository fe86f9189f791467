"""The Python standard library's modules, one document per source file."""

from __future__ import annotations

import platform
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from curate.corpus.document import Document, read_file
from curate.corpus.dpkg import Dpkg

#: Folders left out: test suites and installed third-party packages.
EXCLUDE_FOLDERS = frozenset({"test", "tests", "idle_test", "site-packages"})


class PythonStdlib:
    """Every ``*.py`` under the running interpreter's ``stdlib`` folder but those in
    :data:`EXCLUDE_FOLDERS`, as package ``python3-stdlib`` at the interpreter's version;
    ``file`` is the path inside the standard library (``json/decoder.py``). It needs no
    Debian package."""

    package = None
    name = "python3-stdlib"
    license = "PSF-2.0"

    def describe(self) -> str:
        return f"{self.name}: {self.root()}/**/*.py but {', '.join(sorted(EXCLUDE_FOLDERS))}"

    @staticmethod
    def root() -> Path:
        return Path(sysconfig.get_paths()["stdlib"])

    def documents(self, dpkg: Dpkg) -> Iterator[Document]:
        root, version = self.root(), platform.python_version()
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if EXCLUDE_FOLDERS.isdisjoint(relative.parts[:-1]) and path.is_file():
                text, sha = read_file(path)
                yield Document(self.name, version, relative.as_posix(), text, sha)
