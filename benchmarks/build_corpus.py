"""Build the parity benchmark corpus from real text that is available offline.

Sources are Debian packages fetched with ``apt-get download`` and unpacked with
``dpkg-deb -x`` into a scratch folder (nothing is installed), plus files already in
the image (the CPython stdlib, C headers, man pages). The output is gzipped JSONL, one
document per line with the fields ``id`` (e.g. ``"pydoc-html-0042"``), ``text``,
``source`` (short domain name) and ``license``.

The corpus mixes clean prose, boilerplate-heavy HTML-derived documentation, RST
sources, code, non-English text, short texts, ascii art, rendered man pages and
documents with repeated lines and paragraphs. Output is deterministic: file lists are
sorted and every random choice comes from ``random.Random`` seeded from ``--seed``.

Usage::

    python benchmarks/build_corpus.py --out benchmarks/data/parity_corpus.jsonl.gz
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import math
import os
import random
import re
import subprocess
import sysconfig
import warnings
import zlib
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORK = BENCH_DIR / "work"
DEFAULT_SEED = 1234

#: Debian packages the corpus reads, fetched with ``apt-get download``.
PACKAGES = (
    "r-cran-janeaustenr",
    "r-cran-tidytext",
    "bible-kjv",
    "bible-kjv-text",
    "jargon-text",
    "dict-devil",
    "cfi-en",
    "python3.11-doc",
    "debian-reference-en",
    "debian-reference-de",
    "debian-reference-es",
    "debian-reference-fr",
    "debian-reference-it",
    "debian-reference-ja",
    "debian-reference-pt",
    "debian-reference-zh-cn",
    "installation-guide-amd64",
    "fortunes",
    "fortunes-min",
    "fortunes-it",
    "fortunes-de",
    "fortunes-ru",
)

#: Documents above this size are rare; the HTML genindex/contents pages are kept as
#: the "handful of large ones".
MAX_DOC_CHARS = 200_000

#: Sources whose documents are rewritten into the ``synthetic-repeat`` documents.
REPEAT_DONOR_SOURCES = frozenset(
    "austen gutenberg kjv jargon pydoc-rst pydoc-html python-src debref-en debref-de "
    "manpage".split()
)

PD_AUSTEN = "PD (text); MIT (janeaustenr packaging)"
PD_TIDYTEXT = "PD (text); MIT (tidytext packaging)"
PSF = "PSF-2.0"


@dataclass(frozen=True)
class Doc:
    """One corpus document; ``id`` is ``<source>-<4-digit index>``."""

    id: str
    text: str
    source: str
    license: str


# --------------------------------------------------------------------------- packages


def fetch_debs(deb_dir: Path, packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    """Download the ``.deb`` of each package not yet in ``deb_dir``; return all paths."""
    deb_dir.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(deb_dir.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=deb_dir, check=True)
    return sorted(path for p in packages for path in deb_dir.glob(f"{p}_*.deb"))


def extract_debs(debs: list[Path], root: Path) -> None:
    """Unpack each ``.deb`` into ``root`` with ``dpkg-deb -x`` (once; a stamp marks it)."""
    stamps = root / ".extracted"
    stamps.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        stamp = stamps / deb.name
        if not stamp.exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            stamp.touch()


def deb_version(deb_dir: Path, package: str) -> str:
    """The version recorded in the downloaded ``.deb`` of ``package``."""
    (deb,) = deb_dir.glob(f"{package}_*.deb")
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


# --------------------------------------------------------------------------- text helpers


# Tags that end a paragraph (blank line) and tags that only end a line.
_PARA_TAGS = frozenset(
    "address article aside blockquote dl figure footer form h1 h2 h3 h4 h5 h6 header hr "
    "main nav ol p pre section table title ul".split()
)
_LINE_TAGS = frozenset("br caption dd div dt figcaption li tbody td tfoot th thead tr".split())


class _HTMLText(HTMLParser):
    """Collects the visible text of a page: a blank line after paragraph-level blocks,
    a line break after list items, cells and divs.

    Navigation, headers, footers and link lists are kept on purpose: they are the
    boilerplate the quality scorers must see. ``script`` and ``style`` are dropped
    because a browser does not show them.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._pre = 0
        self._trailing_newlines = 2  # the start of the page counts as a paragraph break

    def _break(self, tag: str) -> None:
        wanted = 2 if tag in _PARA_TAGS else 1 if tag in _LINE_TAGS else 0
        if wanted > self._trailing_newlines:
            self.parts.append("\n" * (wanted - self._trailing_newlines))
            self._trailing_newlines = wanted

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        else:
            self._pre += tag == "pre"
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        else:
            self._pre = max(0, self._pre - (tag == "pre"))
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._pre:
            data = re.sub(r"\s+", " ", data)
            if self._trailing_newlines:
                data = data.lstrip()
        if data:
            self.parts.append(data)
            stripped = data.rstrip("\n")
            self._trailing_newlines = (
                len(data) - len(stripped) if stripped else (self._trailing_newlines + len(data))
            )


def html_to_text(html: str) -> str:
    """Visible text of an HTML page with boilerplate kept; at most one blank line in a row."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs of ``text``, without empty ones."""
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def chunk_paragraphs(
    paras: list[str], rng: random.Random, min_chars: int, max_chars: int
) -> list[str]:
    """Group consecutive paragraphs into documents of log-uniform target length.

    Each document takes paragraphs until it reaches a target drawn log-uniformly from
    ``[min_chars, max_chars]``; the last, shorter remainder is kept as well.
    """
    docs: list[str] = []
    current: list[str] = []
    size = 0
    target = _log_uniform(rng, min_chars, max_chars)
    for para in paras:
        current.append(para)
        size += len(para) + 2
        if size >= target:
            docs.append("\n\n".join(current) + "\n")
            current, size = [], 0
            target = _log_uniform(rng, min_chars, max_chars)
    if current:
        docs.append("\n\n".join(current) + "\n")
    return docs


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def read_fortune_file(path: Path) -> list[str]:
    """The ``%``-separated entries of a fortune file, overstrike backspaces removed."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    raw = re.sub(r".\x08", "", raw)
    entries = re.split(r"^%\s*$", raw, flags=re.M)
    return [e.strip("\n") + "\n" for e in entries if e.strip()]


def fortune_files(folder: Path) -> list[Path]:
    """Regular fortune data files in ``folder`` (no symlinks, ``.dat`` or ``.u8``)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")
    )


# --------------------------------------------------------------------------- R data


def read_r_lazyload(rdb_prefix: Path) -> dict:
    """Objects in an R lazy-load database (``<prefix>.rdx`` index + ``<prefix>.rdb``).

    The index is a gzip-compressed serialized list whose ``variables`` entry maps each
    name to ``(offset, length)`` in the ``.rdb``; each record there is a 4-byte length
    followed by a zlib stream holding one serialized R object.
    """
    import rdata  # benchmark-only dependency (PyPI rdata 1.1)

    # Bare serialized streams carry no RDX/RDS magic, so rdata warns "assumed RDS".
    warnings.filterwarnings("ignore", "Unknown file type", UserWarning, "rdata")
    index = rdata.conversion.convert(
        rdata.parser.parse_data(gzip.decompress(rdb_prefix.with_suffix(".rdx").read_bytes()))
    )
    blob = rdb_prefix.with_suffix(".rdb").read_bytes()
    objects = {}
    for name, (offset, length) in index["variables"].items():
        record = blob[int(offset) : int(offset) + int(length)]
        parsed = rdata.parser.parse_data(zlib.decompress(record[4:]))
        objects[str(name)] = rdata.conversion.convert(parsed)
    return objects


# --------------------------------------------------------------------------- sources
# Each reader returns (source, license, texts) triples; ids are assigned at the end.


def austen_novels(root: Path) -> dict[str, str]:
    """The six Austen novels from janeaustenr, as ``{name: full text}``."""
    prefix = root / "usr/lib/R/site-library/janeaustenr/data/Rdata"
    novels = read_r_lazyload(prefix)
    return {name: "\n".join(str(x) for x in lines) for name, lines in sorted(novels.items())}


def gutenberg_books(root: Path) -> dict[str, str]:
    """tidytext's Gutenberg novels as ``{title: full text}`` (P&P left to janeaustenr)."""
    import rdata

    with warnings.catch_warnings():  # rdata warns that it maps tbl_df to data.frame
        warnings.simplefilter("ignore", UserWarning)
        frame = rdata.read_rda(root / "usr/lib/R/site-library/tidytext/extdata/books.rda")
    books = frame["books"]
    return {
        str(title): "\n".join(str(x) for x in group["text"])
        for title, group in sorted(books.groupby("title"), key=lambda kv: str(kv[0]))
        if str(title) != "Pride and Prejudice"
    }


def prose_sources(root: Path, rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """English prose: Austen, Gutenberg novels, KJV chapters, Jargon, Devil, CFI."""
    out = []
    austen = [
        chunk
        for text in austen_novels(root).values()
        for chunk in chunk_paragraphs(paragraphs(text), rng, 1_500, 20_000)
    ]
    out.append(("austen", PD_AUSTEN, austen))
    gutenberg = [
        chunk
        for text in gutenberg_books(root).values()
        for chunk in chunk_paragraphs(paragraphs(text), rng, 1_500, 20_000)
    ]
    out.append(("gutenberg", PD_TIDYTEXT, gutenberg))
    out.append(("kjv", "PD (text); GPL-2+ (bible-kjv packaging)", kjv_chapters(root)))

    jargon = gzip.decompress(
        (root / "usr/share/doc/jargon-text/jargon.txt.gz").read_bytes()
    ).decode("utf-8")
    out.append(("jargon", "PD", chunk_paragraphs(paragraphs(jargon), rng, 1_000, 12_000)))

    devil = gzip.decompress((root / "usr/share/dictd/devil.dict.dz").read_bytes()).decode(
        "utf-8", errors="replace"
    )
    devil_paras = [p for p in paragraphs(devil) if not p.startswith("00-database")]
    out.append(("devil", "PD", chunk_paragraphs(devil_paras, rng, 800, 8_000)))

    cfi_dir = root / "usr/share/doc/cfi-en/html"
    cfi_pages = sorted(cfi_dir.glob("ch*web.htm")) + [cfi_dir / "preface.htm"]
    cfi = [
        chunk
        for page in cfi_pages
        for chunk in chunk_paragraphs(
            paragraphs(html_to_text(page.read_text("utf-8", errors="replace"))),
            rng,
            1_500,
            15_000,
        )
    ]
    out.append(("cfi", "PD", cfi))
    return out


def kjv_chapters(root: Path) -> list[str]:
    """The KJV, one document per chapter (``bible -p`` dump of the unpacked package).

    The dump alternates a chapter heading (``Genesis 1``) and the chapter body, each
    block separated by one blank line.
    """
    dump = subprocess.run(
        [str(root / "usr/bin/bible"), "-p", str(root / "usr/lib"), "gen1:1-rev22:21"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    blocks = dump.strip("\n").split("\n\n")
    return [f"{head}\n\n{body}\n" for head, body in zip(blocks[::2], blocks[1::2], strict=True)]


def python_doc_sources(root: Path) -> list[tuple[str, str, list[str]]]:
    """python3.11-doc: every HTML page as text (boilerplate kept) and every RST source."""
    html_root = root / "usr/share/doc/python3.11/html"
    pages = sorted(p for p in html_root.rglob("*.html") if "_static" not in p.parts)
    html_docs = [html_to_text(p.read_text("utf-8")) for p in pages]
    rst_files = sorted((html_root / "_sources").rglob("*.rst.txt"))
    rst_docs = [p.read_text("utf-8") for p in rst_files]
    return [("pydoc-html", PSF, html_docs), ("pydoc-rst", PSF, rst_docs)]


def code_sources(rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Code in the image: a sample of CPython stdlib modules and of C headers."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "site-packages", "idle_test", "__pycache__"}
    py_files = sorted(
        p
        for p in stdlib.rglob("*.py")
        if not skip.intersection(p.relative_to(stdlib).parts)
        and 200 < p.stat().st_size < MAX_DOC_CHARS
    )
    py_docs = [p.read_text("utf-8", errors="replace") for p in sample_sorted(rng, py_files, 280)]
    headers = sorted(
        p for p in Path("/usr/include").rglob("*.h") if 200 < p.stat().st_size < MAX_DOC_CHARS
    )
    h_docs = [p.read_text("utf-8", errors="replace") for p in sample_sorted(rng, headers, 180)]
    return [
        ("python-src", PSF, py_docs),
        ("c-header", "various (see file header)", h_docs),
    ]


def non_english_sources(root: Path, rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """debian-reference plain text in 8 languages; installation guide HTML in ru/el/ko."""
    out = []
    for lang in ("de", "en", "es", "fr", "it", "ja", "pt", "zh-cn"):
        path = root / f"usr/share/debian-reference/debian-reference.{lang}.txt.gz"
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        chunks = chunk_paragraphs(paragraphs(text), rng, 2_000, 20_000)
        out.append((f"debref-{lang}", "GPL-2+", chunks))
    for lang in ("el", "ko", "ru"):
        folder = root / "usr/share/doc/installation-guide-amd64" / lang
        pages = [html_to_text(p.read_text("utf-8")) for p in sorted(folder.glob("*.html"))]
        out.append((f"instguide-{lang}", "GPL-2", pages))
    return out


def short_text_sources(root: Path, rng: random.Random) -> list[tuple[str, str, list[str]]]:
    """Fortunes: English quotes, fortunes-it/de/ru, and the ascii-art collections.

    ``fortunes-art`` holds en ``ascii-art``, de ``asciiart`` and it ``banner``; the
    ``art`` categories of en and ru are quotes about art and stay with their language.
    """
    games = root / "usr/share/games/fortunes"
    art_files = {"": "ascii-art", "de": "asciiart", "it": "banner"}

    def quotes(lang: str) -> list[str]:
        folder = games / lang
        return [
            e
            for f in fortune_files(folder)
            if f.name != art_files.get(lang)
            for e in read_fortune_file(f)
        ]

    return [
        ("fortunes-en", "BSD", sample_sorted(rng, quotes(""), 2_000)),
        ("fortunes-it", "PD", sample_sorted(rng, quotes("it"), 400)),
        ("fortunes-de", "GPL-2+", sample_sorted(rng, quotes("de"), 300)),
        ("fortunes-ru", "GPL-2", sample_sorted(rng, quotes("ru"), 300)),
        ("fortunes-art", "BSD", read_fortune_file(games / "ascii-art")),
        ("fortunes-art", "GPL-2+", read_fortune_file(games / "de/asciiart")),
        ("fortunes-art", "PD", read_fortune_file(games / "it/banner")),
    ]


_SPDX = re.compile(rb"SPDX-License-Identifier:\s*([\w.+-]+)")


def man_page_spdx(path: Path) -> str | None:
    """The SPDX licence identifier in the head of a gzipped roff page, if it has one."""
    match = _SPDX.search(gzip.decompress(path.read_bytes())[:4_000])
    return match.group(1).decode() if match else None


def man_page_license(path: Path, package: str) -> str:
    """The page's SPDX identifier, else a pointer to its package's copyright file."""
    return man_page_spdx(path) or f"see /usr/share/doc/{package}/copyright"


def owning_packages(paths: list[Path]) -> dict[Path, str]:
    """``{path: Debian package}`` from one ``dpkg -S`` call; unknown paths map to "unknown"."""
    out = subprocess.run(
        ["dpkg", "-S", *map(str, paths)], capture_output=True, text=True, check=False
    ).stdout
    owners = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        owners[Path(path)] = package.split(":")[0].split(",")[0]
    return {p: owners.get(p, "unknown") for p in paths}


def render_man_page(path: Path) -> str:
    """Plain text of a man page: ``man -l F | col -b`` at 80 columns, C.UTF-8 locale."""
    env = {**os.environ, "MANWIDTH": "80", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    man = subprocess.run(
        ["man", "-l", str(path)], env=env, capture_output=True, check=False, timeout=60
    )
    col = subprocess.run(["col", "-b"], input=man.stdout, capture_output=True, check=True)
    return col.stdout.decode("utf-8", errors="replace")


def english_man_pages() -> list[Path]:
    """English man pages in the image (``man1``..``man8``), sorted.

    Symlinks are skipped, and so are the ~16k generated ``gcloud`` pages, which would
    otherwise make up most of any sample.
    """
    return sorted(
        p
        for section in sorted(Path("/usr/share/man").glob("man[1-8]"))
        for p in section.glob("*.gz")
        if not p.is_symlink() and not p.name.startswith("gcloud")
    )


def man_page_groups(rng: random.Random, count: int = 300) -> list[tuple[str, str, list[str]]]:
    """Rendered man pages, one ``("manpage", license, [text])`` group per page.

    ``count`` pages are sampled; pages that render to almost nothing (``.so`` stubs)
    are dropped, so slightly fewer documents may come out.
    """
    pages = sample_sorted(rng, english_man_pages(), count)
    owners = owning_packages(pages)
    groups = []
    for path in pages:
        text = render_man_page(path)
        if len(text.strip()) > 100:
            groups.append(("manpage", man_page_license(path, owners[path]), [text]))
    return groups


def repeat_variant(text: str, rng: random.Random) -> str:
    """A real document rewritten with repeated content, one of four real-world patterns.

    - ``para``: some paragraphs appear 2-6 times in place (copy-paste accidents);
    - ``line``: one line is repeated 5-40 times (log spam, spinner output);
    - ``block``: the whole document is concatenated 2-4 times (scrape loops);
    - ``tail``: the last paragraph is repeated 3-12 times (footers, signatures).
    """
    paras = paragraphs(text)
    kind = rng.choice(("para", "line", "block", "tail"))
    if kind == "para":
        out = []
        for p in paras:
            out.extend([p] * (rng.randint(2, 6) if rng.random() < 0.3 else 1))
        return "\n\n".join(out) + "\n"
    if kind == "line":
        lines = text.splitlines()
        idx = rng.randrange(len(lines))
        return "\n".join(lines[:idx] + [lines[idx]] * rng.randint(5, 40) + lines[idx:]) + "\n"
    if kind == "block":
        return text * rng.randint(2, 4)
    return "\n\n".join(paras + [paras[-1]] * rng.randint(3, 12)) + "\n"


def sample_sorted(rng: random.Random, items: list, k: int) -> list:
    """``k`` items chosen without replacement, kept in their original (sorted) order."""
    if k >= len(items):
        return list(items)
    return [items[i] for i in sorted(rng.sample(range(len(items)), k))]


# --------------------------------------------------------------------------- assembly


def collect_docs(root: Path, seed: int = DEFAULT_SEED) -> list[Doc]:
    """All corpus documents from the unpacked packages under ``root`` and the image."""
    rng = random.Random(seed)
    groups = []
    groups += prose_sources(root, rng)
    groups += python_doc_sources(root)
    groups += code_sources(rng)
    groups += non_english_sources(root, rng)
    groups += short_text_sources(root, rng)
    groups += man_page_groups(rng)
    docs = _assign_ids(groups)

    # Repetition documents come from mid-sized prose/doc/code documents (2-20 kchars).
    donors = [
        d for d in docs if d.source in REPEAT_DONOR_SOURCES and 2_000 <= len(d.text) <= 20_000
    ]
    docs += [
        Doc(f"synthetic-repeat-{i:04d}", repeat_variant(d.text, rng), "synthetic-repeat", d.license)
        for i, d in enumerate(sample_sorted(rng, donors, 300))
    ]
    return docs


def _assign_ids(groups: list[tuple[str, str, list[str]]]) -> list[Doc]:
    """Documents numbered per source, in group order; blank texts dropped."""
    next_index: collections.Counter = collections.Counter()
    docs = []
    for source, lic, texts in groups:
        for text in texts:
            if text.strip():
                docs.append(Doc(f"{source}-{next_index[source]:04d}", text, source, lic))
                next_index[source] += 1
    return docs


def write_jsonl_gz(records: list[dict], out: Path) -> None:
    """Write ``records`` as gzipped JSONL (no name, mtime 0: equal input gives equal bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def summary(docs: list[Doc]) -> str:
    """Per-source document count and characters, plus totals, as a text table."""
    counts = collections.Counter(d.source for d in docs)
    chars = collections.Counter()
    for d in docs:
        chars[d.source] += len(d.text)
    lines = [f"{'source':<20} {'docs':>6} {'chars':>12}"]
    lines += [f"{s:<20} {counts[s]:>6} {chars[s]:>12,}" for s in sorted(counts)]
    lines.append(f"{'TOTAL':<20} {len(docs):>6} {sum(chars.values()):>12,}")
    return "\n".join(lines)


def prepare_root(work: Path) -> Path:
    """Fetch and unpack the packages under ``work``; return the unpacked root."""
    debs = fetch_debs(work / "debs")
    root = work / "root"
    extract_debs(debs, root)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output .jsonl.gz path")
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK,
        help="scratch folder for .deb files and their unpacked tree",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    root = prepare_root(args.work)
    docs = collect_docs(root, args.seed)
    write_jsonl_gz([asdict(d) for d in docs], args.out)
    print(summary(docs))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
