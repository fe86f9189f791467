"""The slices of the corpus: named groups of readers over installed packages.

A reader has ``package`` (the Debian package it needs, or None when it needs none),
``license``, ``describe()`` (one line for the manifest) and ``documents(dpkg)``, which
yields :class:`~curate.corpus.document.Document` in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass

from curate.corpus.dictd import DictdEntries
from curate.corpus.files import Files
from curate.corpus.handbook import HandbookLocales
from curate.corpus.html import html_to_text
from curate.corpus.stdlib import PythonStdlib
from curate.corpus.wordnet import WordNetGlosses

HANDBOOK = "/usr/share/doc/debian-handbook/html"
KERNEL_DOC = "/usr/share/doc/linux-doc-6.1/Documentation"
#: Licence of the files read from every installed package (man pages, changelogs, ...).
PER_PACKAGE = "each package's own (/usr/share/doc/<package>/copyright)"


@dataclass(frozen=True)
class Slice:
    """A named part of the corpus: ``summary`` says what kind of text it is; ``readers``
    yield its documents, in order."""

    name: str
    summary: str
    readers: tuple

    @property
    def packages(self) -> tuple[str, ...]:
        """The Debian packages the readers need, in order."""
        return tuple(dict.fromkeys(r.package for r in self.readers if r.package))


SLICES: dict[str, Slice] = {s.name: s for s in (
    Slice("prose", "natural-language documentation (reST, POD, HTML as text, dictionary "
          "entries), the cleanest slice", (
              Files("/usr/share/doc/python3.11/html/_sources/**/*.rst.txt",
                    package="python3.11-doc", license="PSF-2.0"),
              Files(f"{KERNEL_DOC}/**/*.rst.gz", package="linux-doc-6.1",
                    exclude=(f"{KERNEL_DOC}/translations/**",), license="GPL-2.0"),
              DictdEntries("dict-gcide", "/usr/share/dictd/gcide.dict.dz", license="GPL-2+"),
              WordNetGlosses("wordnet-base", "/usr/share/wordnet", license="WordNet-3.0"),
              Files("/usr/share/perl/*/pod/*.pod", package="perl-doc",
                    license="GPL-1+ or Artistic-1.0"),
              Files(f"{HANDBOOK}/en-US/*.html", package="debian-handbook",
                    to_text=html_to_text, license="GPL-2+ or CC-BY-SA-3.0"),
          )),
    Slice("multilingual", "the Debian Administrator's Handbook translated, as text, with "
          "its locale in lang", (
              HandbookLocales("debian-handbook", HANDBOOK, license="GPL-2+ or CC-BY-SA-3.0"),
          )),
    Slice("man", "English man pages as roff source (noisy markup)", (
        Files("/usr/share/man/man*/*", license=PER_PACKAGE),
    )),
    Slice("changelog", "Debian and upstream changelogs (boilerplate, names, dates)", (
        Files("/usr/share/doc/*/changelog.Debian.gz", license=PER_PACKAGE),
        Files("/usr/share/doc/*/changelog.gz", license=PER_PACKAGE),
    )),
    Slice("copyright", "Debian copyright files (licence texts, heavily duplicated)", (
        Files("/usr/share/doc/*/copyright", license=PER_PACKAGE),
    )),
    Slice("code", "the Python standard library's source", (PythonStdlib(),)),
)}

DEFAULT_SLICES = ("prose", "man", "changelog", "copyright", "code")
