"""The Debian Administrator's Handbook in languages other than English, tagged by locale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from curate.corpus.document import Document
from curate.corpus.dpkg import Dpkg
from curate.corpus.files import Files
from curate.corpus.html import html_to_text

#: Locales whose translation covers most of the book (most pages under half English).
LOCALES = ("ar-MA", "ca-ES", "de-DE", "es-ES", "fa-IR", "fr-FR", "id-ID", "it-IT", "nb-NO",
           "pt-BR", "ru-RU")


def english_share(text: str, english_lines: set[str]) -> float:
    """The share of ``text``'s characters on lines (stripped) that ``english_lines`` holds."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    total = sum(map(len, lines))
    return sum(len(line) for line in lines if line in english_lines) / total if total else 1.0


class HandbookLocales:
    """One document per HTML page of ``<root>/<locale>/`` for each of ``locales``, as text
    (:func:`~curate.corpus.html.html_to_text`), ``lang`` set to the locale. A page whose
    text is at least ``max_english`` on lines of the English page of the same name (an
    untranslated page; code and command lines are shared by every locale) is left out."""

    def __init__(self, package: str, root: str, *, license: str, locales=LOCALES,
                 english: str = "en-US", max_english: float = 0.5):
        self.package, self.root, self.license = package, root, license
        self.locales, self.english, self.max_english = tuple(locales), english, max_english

    def describe(self) -> str:
        return (f"{self.package}: {self.root}/{{{','.join(self.locales)}}}/*.html "
                f"(pages under {self.max_english:.0%} {self.english} lines)")

    def _pages(self, locale: str) -> Files:
        return Files(f"{self.root}/{locale}/*.html", package=self.package,
                     license=self.license, to_text=html_to_text)

    def documents(self, dpkg: Dpkg) -> Iterator[Document]:
        english = {PurePosixPath(doc.file).name: {ln.strip() for ln in doc.text.splitlines()}
                   for doc in self._pages(self.english).documents(dpkg)}
        for locale in self.locales:
            for doc in self._pages(locale).documents(dpkg):
                lines = english.get(PurePosixPath(doc.file).name, set())
                if english_share(doc.text, lines) < self.max_english:
                    yield doc._replace(lang=locale)
