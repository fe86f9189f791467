"""Build the quickstart sample shipped in ``curate/data/quickstart/``.

Writes four files, all from permissively licensed real text (public domain, MIT, BSD,
PSF; nothing GPL):

- ``docs.jsonl.gz``: ~2,000 documents (``id``, ``text``, ``source``) mixing clean prose,
  boilerplate-heavy HTML-derived docs, code, short and junk texts, non-English text,
  and exact plus near duplicates of real documents;
- ``reference_good.jsonl.gz``: ~1,000 high-quality documents (``text``, ``source``);
- ``reference_bad.jsonl.gz``: ~1,000 low-quality documents (``text``, ``source``):
  navigation boilerplate, man-page fragments, ascii art, code dumps, keyword lists;
- ``PROVENANCE.md``: package, file, version, licence, processing and counts per source.

The three data sets are disjoint: every pool of chunks is shuffled once and cut into
non-overlapping slices. Output is deterministic for a given ``--seed``.

Usage::

    python benchmarks/build_quickstart_sample.py
"""

from __future__ import annotations

import argparse
import ast
import collections
import gzip
import importlib.metadata
import platform
import random
import re
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from build_corpus import (
    DEFAULT_SEED,
    DEFAULT_WORK,
    austen_novels,
    chunk_paragraphs,
    deb_version,
    english_man_pages,
    gutenberg_books,
    html_to_text,
    man_page_spdx,
    owning_packages,
    paragraphs,
    prepare_root,
    read_fortune_file,
    render_man_page,
    write_jsonl_gz,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "curate" / "data" / "quickstart"

#: SPDX identifiers of man pages we may ship (BSD-4-Clause-UC: the UC Regents withdrew
#: the advertising clause in 1999; ``curl`` is an MIT-style licence).
PERMISSIVE_MAN_LICENSES = frozenset(
    {"0BSD", "BSD-2-Clause", "BSD-3-Clause", "BSD-4-Clause-UC", "MIT", "curl"}
)

TARGET_DOCS = 2_000
#: Share of the duplicate budget that is exact copies; the rest are near duplicates.
EXACT_DUP_SHARE = 0.4


@dataclass
class Source:
    """One source's provenance and the chunks it gave to each output set."""

    name: str
    origin: str  # package (version) and file
    license: str
    processing: str
    pool: list[str] = field(default_factory=list)
    min_chars: int = 1  # shorter chunks (e.g. a book's last line) are dropped from the pool
    taken: collections.Counter = field(default_factory=collections.Counter)

    def take(self, split: str, n: int) -> list[str]:
        """The next ``n`` unused chunks of the (already shuffled) pool, for ``split``."""
        start = sum(self.taken.values())
        chunks = self.pool[start : start + n]
        if len(chunks) < n:
            raise ValueError(f"{self.name}: wanted {n} more chunks, {len(chunks)} left")
        self.taken[split] += n
        return chunks


# --------------------------------------------------------------------------- pools


def prose_sources(root: Path, work: Path, rng: random.Random) -> list[Source]:
    """Public-domain prose: Austen, Gutenberg novels, CFI, Devil's Dictionary, Jargon."""
    ver = lambda pkg: deb_version(work / "debs", pkg)  # noqa: E731
    austen = Source(
        "austen",
        f"r-cran-janeaustenr {ver('r-cran-janeaustenr')}: "
        "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb (6 novels)",
        "public domain text; package MIT",
        "R lazy-load DB read with PyPI rdata; lines joined, split at blank lines, "
        "consecutive paragraphs grouped to 400-6,000 characters; chunks under 200 "
        "characters (a book's last line) dropped",
    )
    austen.pool = [
        c
        for t in austen_novels(root).values()
        for c in chunk_paragraphs(paragraphs(t), rng, 400, 6_000)
    ]
    gutenberg = Source(
        "gutenberg",
        f"r-cran-tidytext {ver('r-cran-tidytext')}: usr/lib/R/site-library/tidytext/extdata/"
        "books.rda (Great Expectations, The War of the Worlds, Twenty Thousand Leagues)",
        "public domain text; package MIT",
        "rdata.read_rda; Pride and Prejudice dropped (in austen); grouped as austen",
    )
    gutenberg.pool = [
        c
        for t in gutenberg_books(root).values()
        for c in chunk_paragraphs(paragraphs(t), rng, 400, 6_000)
    ]
    cfi = Source(
        "cfi",
        f"cfi-en {ver('cfi-en')}: usr/share/doc/cfi-en/html/{{preface,ch*web}}.htm",
        'public domain ("Copyright does not exist", per debian/copyright)',
        "HTML to text with html.parser, grouped to 400-6,000 characters",
    )
    cfi_dir = root / "usr/share/doc/cfi-en/html"
    cfi.pool = [
        c
        for page in sorted(cfi_dir.glob("ch*web.htm")) + [cfi_dir / "preface.htm"]
        for c in chunk_paragraphs(
            paragraphs(html_to_text(page.read_text("utf-8", errors="replace"))), rng, 400, 6_000
        )
    ]
    devil = Source(
        "devil",
        f"dict-devil {ver('dict-devil')}: usr/share/dictd/devil.dict.dz",
        "public domain",
        "gzip-decoded dictd file, dictd header entries dropped, entries grouped to "
        "300-3,000 characters",
    )
    devil_text = gzip.decompress((root / "usr/share/dictd/devil.dict.dz").read_bytes())
    devil.pool = chunk_paragraphs(
        [
            p
            for p in paragraphs(devil_text.decode("utf-8", errors="replace"))
            if not p.startswith("00-database")
        ],
        rng,
        300,
        3_000,
    )
    jargon_text = gzip.decompress(
        (root / "usr/share/doc/jargon-text/jargon.txt.gz").read_bytes()
    ).decode("utf-8")
    body_start = jargon_text.index("\n   :(TM):")
    jargon = Source(
        "jargon",
        f"jargon-text {ver('jargon-text')}: usr/share/doc/jargon-text/jargon.txt.gz "
        "(front matter and lexicon entries)",
        "public domain",
        "paragraphs grouped to 400-6,000 characters; the glossary index is in jargon-index",
    )
    jargon.pool = chunk_paragraphs(paragraphs(jargon_text[body_start:]), rng, 400, 6_000)
    jargon_index = Source(
        "jargon-index",
        "jargon-text: the Glossary table of contents in jargon.txt.gz",
        "public domain",
        "one headword per line, 10-60 headwords per document (a keyword list)",
    )
    toc = jargon_text[jargon_text.index("\nGlossary\n") : body_start]
    words = [w.strip() for w in toc.splitlines() if w.strip() and w.strip() != "Glossary"]
    jargon_index.pool = group_lines(words, rng, 10, 60)
    for src in (austen, gutenberg, cfi, devil, jargon):
        src.min_chars = 200
    return [austen, gutenberg, cfi, devil, jargon, jargon_index]


def python_sources(root: Path, work: Path, rng: random.Random) -> list[Source]:
    """python3.11-doc RST and HTML (pages, nav fragments, index pages) and stdlib code."""
    version = deb_version(work / "debs", "python3.11-doc")
    html_root = root / "usr/share/doc/python3.11/html"
    rst = Source(
        "pydoc-rst",
        f"python3.11-doc {version}: usr/share/doc/python3.11/html/_sources/**/*.rst.txt",
        "PSF-2.0 (code examples 0BSD)",
        "RST source split at blank lines, grouped to 800-8,000 characters; "
        "chunks under 200 characters dropped",
        min_chars=200,
    )
    rst.pool = [
        c
        for p in sorted((html_root / "_sources").rglob("*.rst.txt"))
        for c in chunk_paragraphs(paragraphs(p.read_text("utf-8")), rng, 800, 8_000)
    ]

    pages = sorted(
        p
        for p in html_root.rglob("*.html")
        if "_static" not in p.parts and not p.name.startswith(("genindex", "py-modindex"))
    )
    page_texts = [
        t for t in (html_to_text(p.read_text("utf-8")) for p in pages) if 2_000 <= len(t) <= 15_000
    ]
    rng.shuffle(page_texts)
    half = len(page_texts) * 3 // 5
    html = Source(
        "pydoc-html",
        f"python3.11-doc {version}: usr/share/doc/python3.11/html/**/*.html",
        "PSF-2.0 (code examples 0BSD)",
        "whole page converted to text with html.parser, navigation, sidebar and footer "
        "kept; pages of 2,000-15,000 characters",
        pool=page_texts[:half],
    )
    nav = Source(
        "pydoc-nav",
        f"python3.11-doc {version}: other pages than pydoc-html",
        "PSF-2.0",
        "page text cut to its boilerplate: the lines before the page heading (sidebar, "
        "navigation) or the last 12-25 lines (navigation, footer)",
        pool=[f for t in page_texts[half:] for f in boilerplate_fragments(t, rng)],
    )
    index = Source(
        "pydoc-index",
        f"python3.11-doc {version}: genindex-*.html, py-modindex.html",
        "PSF-2.0",
        "index pages converted to text, 30-150 consecutive lines per document",
    )
    index_pages = sorted(html_root.glob("genindex-*.html")) + [html_root / "py-modindex.html"]
    index.pool = [
        doc
        for p in index_pages
        if p.name != "genindex-all.html"
        for doc in group_lines(
            [ln for ln in html_to_text(p.read_text("utf-8")).splitlines() if ln.strip()],
            rng,
            30,
            150,
        )
    ]

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "site-packages", "idle_test", "__pycache__"}
    code = Source(
        "python-src",
        f"CPython {platform.python_version()} standard library in the image: "
        f"{stdlib}/**/*.py (tests excluded)",
        "PSF-2.0",
        "whole module files of 500-12,000 characters",
    )
    code.pool = [
        p.read_text("utf-8", errors="replace")
        for p in sorted(stdlib.rglob("*.py"))
        if not skip.intersection(p.relative_to(stdlib).parts) and 500 <= p.stat().st_size <= 12_000
    ]
    return [rst, html, nav, index, code]


def boilerplate_fragments(page: str, rng: random.Random) -> list[str]:
    """The sidebar/navigation head and the navigation/footer tail of a page's text.

    The head is everything before the second line that repeats the page title (Sphinx
    prints the title in the ``<title>``, the breadcrumb and the ``<h1>``).
    """
    lines = page.splitlines()
    title = lines[0].split(" — Python")[0]
    heading = next(
        (i for i, ln in enumerate(lines) if i > 0 and ln.startswith(title) and ln.endswith("¶")),
        None,
    )
    out = ["\n".join(lines[-rng.randint(12, 25) :]) + "\n"]
    if heading:
        out.insert(0, "\n".join(lines[:heading]).strip() + "\n")
    return out


def group_lines(lines: list[str], rng: random.Random, low: int, high: int) -> list[str]:
    """Consecutive runs of ``low``-``high`` lines joined into documents."""
    docs, i = [], 0
    while i < len(lines):
        n = rng.randint(low, high)
        docs.append("\n".join(lines[i : i + n]) + "\n")
        i += n
    return docs


def man_sources(rng: random.Random) -> list[Source]:
    """English man pages in the image whose roff carries a permissive SPDX identifier."""
    pages = [p for p in english_man_pages() if man_page_spdx(p) in PERMISSIVE_MAN_LICENSES]
    owners = owning_packages(pages)
    packages = sorted(set(owners.values()))
    versions = ", ".join(f"{p} {installed_version(p)}" for p in packages)
    rendered = [render_man_page(p) for p in pages]
    order = list(range(len(pages)))
    rng.shuffle(order)
    # A third of the pages stay whole (the short ones: curl.1 alone is 230 kchars).
    whole_ids = [i for i in order if len(rendered[i]) <= 30_000][: len(order) // 3]
    fragment_ids = [i for i in order if i not in whole_ids]
    whole = Source(
        "manpage",
        f"{versions}: " + ", ".join(sorted(pages[i].name for i in whole_ids)),
        "per-page SPDX header: " + ", ".join(sorted(PERMISSIVE_MAN_LICENSES)),
        "`man -l F | col -b`, MANWIDTH=80, C.UTF-8; whole page (at most 30,000 characters)",
        pool=[rendered[i] for i in whole_ids],
    )
    fragments = Source(
        "manpage-fragment",
        f"{versions}: the other {len(fragment_ids)} permissive pages",
        whole.license,
        "rendered as manpage, then cut into runs of consecutive paragraphs of 150-1,500 characters",
        pool=[
            f
            for i in fragment_ids
            for f in chunk_paragraphs(paragraphs(rendered[i]), rng, 150, 1_500)
        ],
    )
    return [whole, fragments]


def installed_version(package: str) -> str:
    """Version of an installed Debian package (``dpkg-query``)."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def short_sources(root: Path, work: Path) -> list[Source]:
    """BSD English fortunes, public-domain Italian fortunes and ascii art."""
    games = root / "usr/share/games/fortunes"
    fortunes_version = deb_version(work / "debs", "fortunes")
    it_version = deb_version(work / "debs", "fortunes-it")
    en_files = sorted(
        p
        for p in games.iterdir()
        if p.is_file()
        and not p.is_symlink()
        and p.suffix not in (".dat", ".u8")
        and p.name != "ascii-art"
    )
    en = Source(
        "fortunes-en",
        f"fortunes {fortunes_version} + fortunes-min: usr/share/games/fortunes/* "
        "(all English categories but ascii-art)",
        "BSD (fortune-mod, see debian/copyright)",
        "split at `%` lines, backspace overstrikes removed; one quote per document",
        pool=[q for f in en_files for q in read_fortune_file(f)],
    )
    it_dir = games / "it"
    it = Source(
        "fortunes-it",
        f"fortunes-it {it_version}: usr/share/games/fortunes/it/* (but banner)",
        'public domain ("Consider this package freeware (public domain)", debian/copyright)',
        "as fortunes-en",
        pool=[
            q
            for f in sorted(it_dir.iterdir())
            if f.is_file()
            and not f.is_symlink()
            and f.suffix not in (".dat", ".u8")
            and f.name != "banner"
            for q in read_fortune_file(f)
        ],
    )
    art = Source(
        "ascii-art",
        f"fortunes {fortunes_version}: usr/share/games/fortunes/ascii-art; "
        f"fortunes-it {it_version}: usr/share/games/fortunes/it/banner",
        "BSD (ascii-art); public domain (banner)",
        "one fortune entry per document",
        pool=read_fortune_file(games / "ascii-art") + read_fortune_file(it_dir / "banner"),
    )
    return [en, it, art]


def spacy_source(rng: random.Random) -> Source:
    """spaCy's per-language example sentences, grouped into short documents."""
    import spacy

    lang_dir = Path(spacy.__file__).parent / "lang"
    docs = []
    for path in sorted(lang_dir.glob("*/examples.py")):
        sentences = example_sentences(path)
        for i in range(0, len(sentences), 6):
            docs.append("\n".join(sentences[i : i + 6]) + "\n")
    rng.shuffle(docs)
    return Source(
        "spacy-examples",
        f"spaCy {importlib.metadata.version('spacy')} (PyPI): spacy/lang/*/examples.py",
        "MIT",
        "the `sentences` list read with ast (not imported), up to 6 sentences per "
        "document, one language per document",
        pool=docs,
    )


def example_sentences(path: Path) -> list[str]:
    """The string literals of the module-level ``sentences = [...]`` in ``path``."""
    tree = ast.parse(path.read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "sentences" for t in node.targets
        ):
            return [s for s in ast.literal_eval(node.value) if isinstance(s, str)]
    return []


# --------------------------------------------------------------------------- duplicates


def near_duplicate(text: str, rng: random.Random) -> str:
    """``text`` with a few small edits, as when a page is re-posted or re-scraped.

    About one edit per 150 words (1 to 6): a word dropped, doubled, swapped with its
    neighbour or upper-cased; and with probability 1/3 the last paragraph removed or a
    trailing line added.
    """
    tokens = re.split(r"(\s+)", text)
    word_slots = [i for i, t in enumerate(tokens) if t and not t.isspace()]
    for _ in range(min(6, max(1, len(word_slots) // 150))):
        i = rng.choice(word_slots)
        op = rng.choice(("drop", "double", "swap", "upper"))
        if op == "upper" and tokens[i].upper() != tokens[i]:
            tokens[i] = tokens[i].upper()
        elif op == "double":
            tokens[i] = f"{tokens[i]} {tokens[i]}"
        elif op == "swap" and i + 2 < len(tokens) and tokens[i] != tokens[i + 2]:
            tokens[i], tokens[i + 2] = tokens[i + 2], tokens[i]
        else:  # "drop", and the fallback when upper/swap would change nothing
            tokens[i] = ""
    edited = "".join(tokens)
    roll = rng.random()
    paras = paragraphs(edited)
    if roll < 1 / 6 and len(paras) > 2:
        edited = "\n\n".join(paras[:-1]) + "\n"
    elif roll < 1 / 3:
        edited = edited.rstrip("\n") + "\n\n" + rng.choice(paras).splitlines()[0] + "\n"
    return edited


# --------------------------------------------------------------------------- assembly

#: How many chunks each source gives to docs / reference_good / reference_bad.
PLAN: dict[str, dict[str, int]] = {
    "austen": {"docs": 230, "good": 380},
    "gutenberg": {"docs": 140, "good": 220},
    "cfi": {"docs": 40, "good": 70},
    "devil": {"docs": 40, "good": 60},
    "jargon": {"docs": 90},
    "jargon-index": {"docs": 5, "bad": 55},
    "pydoc-rst": {"docs": 130, "good": 270},
    "pydoc-html": {"docs": 150},
    "pydoc-nav": {"docs": 10, "bad": 215},
    "pydoc-index": {"docs": 10, "bad": 185},
    "python-src": {"docs": 180, "bad": 210},
    "manpage": {"docs": 20},
    "manpage-fragment": {"docs": 20, "bad": 300},
    "fortunes-en": {"docs": 330},
    "fortunes-it": {"docs": 150},
    "ascii-art": {"docs": 3, "bad": 8},
    "spacy-examples": {"docs": 110},
}


def build(root: Path, work: Path, seed: int) -> tuple[dict[str, list[dict]], list[Source]]:
    """Assemble the three data sets; return them with the sources used."""
    rng = random.Random(seed)
    sources = (
        prose_sources(root, work, rng)
        + python_sources(root, work, rng)
        + man_sources(rng)
        + short_sources(root, work)
        + [spacy_source(rng)]
    )
    for src in sources:
        # Deduplicated, since a text repeated in a pool could land in two sets.
        src.pool = [t for t in dict.fromkeys(src.pool) if len(t.strip()) >= src.min_chars]
        rng.shuffle(src.pool)
    by_name = {s.name: s for s in sources}

    sets: dict[str, list[dict]] = {"docs": [], "good": [], "bad": []}
    for name, splits in PLAN.items():
        for split, n in splits.items():
            sets[split] += [{"text": t, "source": name} for t in by_name[name].take(split, n)]

    originals = sets["docs"]
    n_dups = max(0, TARGET_DOCS - len(originals))
    n_exact = int(n_dups * EXACT_DUP_SHARE)
    candidates = [d for d in originals if len(d["text"].split()) >= 50]
    picks = rng.sample(candidates, n_dups)
    dups = [dict(d) for d in picks[:n_exact]]
    dups += [
        {"text": near_duplicate(d["text"], rng), "source": d["source"]} for d in picks[n_exact:]
    ]
    docs = originals + dups
    rng.shuffle(docs)
    sets["docs"] = [{"id": f"qs-{i:04d}", **d} for i, d in enumerate(docs)]
    by_name["docs-duplicates"] = Source(
        "(duplicates)",
        "documents of docs.jsonl.gz with >= 50 words",
        "as the copied document",
        f"{n_exact} exact copies and {n_dups - n_exact} near duplicates (near_duplicate(): "
        "1-6 word edits, sometimes last paragraph dropped or a line repeated at the end)",
        taken=collections.Counter({"docs": n_dups}),
    )
    check_disjoint(sets)
    return sets, list(by_name.values())


def check_disjoint(sets: dict[str, list[dict]]) -> None:
    """Raise if a text of one reference set also occurs in another set."""
    seen = {name: {d["text"] for d in docs} for name, docs in sets.items()}
    for a, b in (("docs", "good"), ("docs", "bad"), ("good", "bad")):
        shared = seen[a] & seen[b]
        if shared:
            raise ValueError(f"{len(shared)} texts occur in both {a} and {b}")


def provenance_markdown(sources: list[Source], sets: dict[str, list[dict]], sizes: dict) -> str:
    """PROVENANCE.md: one section per source plus a size table."""
    lines = [
        "# Quickstart sample: provenance",
        "",
        "Built by `benchmarks/build_quickstart_sample.py` (deterministic, seed "
        f"{DEFAULT_SEED}) from Debian bookworm packages fetched with `apt-get download` "
        "and unpacked with `dpkg-deb -x`, files in the build image, and the spaCy wheel. "
        "Only public-domain and permissively licensed (MIT, BSD, PSF-2.0) text is used.",
        "",
        "| file | documents | bytes (gzip) | characters |",
        "|---|---:|---:|---:|",
    ]
    for split, fname in (
        ("docs", "docs.jsonl.gz"),
        ("good", "reference_good.jsonl.gz"),
        ("bad", "reference_bad.jsonl.gz"),
    ):
        chars = sum(len(d["text"]) for d in sets[split])
        lines.append(f"| {fname} | {len(sets[split])} | {sizes[split]:,} | {chars:,} |")
    lines += ["", "## Sources", ""]
    for src in sources:
        counts = ", ".join(f"{split} {n}" for split, n in sorted(src.taken.items()))
        lines += [
            f"### {src.name}",
            "",
            f"- from: {src.origin}",
            f"- licence: {src.license}",
            f"- processing: {src.processing}",
            f"- documents: {counts}",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK,
        help="scratch folder for .deb files and their unpacked tree",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    root = prepare_root(args.work)
    sets, sources = build(root, args.work, args.seed)
    files = {
        "docs": "docs.jsonl.gz",
        "good": "reference_good.jsonl.gz",
        "bad": "reference_bad.jsonl.gz",
    }
    sizes = {}
    for split, fname in files.items():
        path = args.out_dir / fname
        write_jsonl_gz(sets[split], path)
        sizes[split] = path.stat().st_size
    (args.out_dir / "PROVENANCE.md").write_text(provenance_markdown(sources, sets, sizes))
    for split, fname in files.items():
        counts = collections.Counter(d["source"] for d in sets[split])
        print(f"{fname}: {len(sets[split])} docs, {sizes[split]:,} bytes; {dict(counts)}")


if __name__ == "__main__":
    main()
