"""Building the corpus: read each slice, sample and split it, write the tables and manifest.

Each slice is read once, in its readers' order, into a temporary Arrow file beside the
output (so a slice of hundreds of MB is never held as Python strings); only an id, a
sampling key and a size per document stay in memory. The selection is then made from
the keys and the rows are copied, in reading order, into ``train.parquet`` and
``heldout.parquet``.

Every document gets a key, a 64-bit hash of ``(seed, id)``, i.e. a seeded random
order. ``max_bytes`` takes documents in key order while they fit; the held-out set is
the lowest-key share of what was taken. So a capped build's held-out documents are
held out in the uncapped build too (with the same seed), and never in its training set.
"""

from __future__ import annotations

import hashlib
import platform
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import curate
from curate.core.cache import atomic_path
from curate.core.errors import CurateError
from curate.core.hashing import file_hash
from curate.corpus.dpkg import Dpkg, install_command
from curate.corpus.manifest import CorpusManifest, SliceReport, SplitCount
from curate.corpus.slices import DEFAULT_SLICES, SLICES, Slice
from curate.io import write_text

SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("slice", pa.string()),
                    ("package", pa.string()), ("version", pa.string()), ("file", pa.string()),
                    ("sha256", pa.string()), ("lang", pa.string()), ("bytes", pa.int64())])
SPLITS = ("train", "heldout")
#: Text per batch of the temporary file, and per Parquet row group.
SPILL_BYTES = 4 << 20
ROW_GROUP_BYTES = 16 << 20


def document_id(slice_name: str, package: str, file: str) -> str:
    """``<slice>/<16 hex digits of SHA-256 of package and file>``: stable across versions."""
    digest = hashlib.sha256(f"{package}\0{file}".encode()).hexdigest()
    return f"{slice_name}/{digest[:16]}"


def sample_key(seed: int, doc_id: str) -> int:
    """A document's place in the seeded random order: 64 bits of SHA-256 of seed and id."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{doc_id}".encode()).digest()[:8], "big")


def heldout_count(n: int, fraction: float) -> int:
    """``round(fraction * n)`` held-out documents of ``n``; at least one (and one fewer
    than ``n``) when ``fraction`` > 0 and ``n`` >= 2."""
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(fraction * n)))


def choose(keys: np.ndarray, sizes: np.ndarray, max_bytes: int | None,
           fraction: float) -> np.ndarray:
    """The split of each document: 0 left out, 1 train, 2 held out.

    In key order, documents are taken while they fit in ``max_bytes`` (a document that
    does not fit is passed over; None: all are taken); the first
    :func:`heldout_count` of those taken are held out.
    """
    order = np.argsort(keys, kind="stable")
    if max_bytes is None:
        taken = order
    else:
        picked, room = [], max_bytes
        for i in order.tolist():
            if sizes[i] <= room:
                picked.append(i)
                room -= int(sizes[i])
        taken = np.asarray(picked, dtype=np.int64)
    split = np.zeros(len(keys), dtype=np.int8)
    split[taken] = 1
    split[taken[:heldout_count(len(taken), fraction)]] = 2
    return split


class _ParquetRows:
    """Rows appended in order to one zstd Parquet file with :data:`SCHEMA`, a row group per
    :data:`ROW_GROUP_BYTES` of text; the file appears only when the block succeeds."""

    def __init__(self, path: Path):
        self._atomic = atomic_path(path)
        self._pending: list[pa.Table] = []
        self._bytes = 0
        self.count = SplitCount()

    def __enter__(self) -> _ParquetRows:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self._atomic.__enter__(), SCHEMA, compression="zstd")
        return self

    def write(self, table: pa.Table) -> None:
        text_bytes = int(pc.sum(table["bytes"]).as_py() or 0)
        self.count.add(table.num_rows, text_bytes)
        self._pending.append(table)
        self._bytes += text_bytes
        if self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
        self._pending, self._bytes = [], 0

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._flush()
        finally:
            self._writer.close()
        return self._atomic.__exit__(exc_type, exc, tb)


def _progress(enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(desc=desc, unit=" docs", disable=not enabled, leave=False, dynamic_ncols=True)


def _read_slice(sl: Slice, dpkg: Dpkg, spill: Path, report: SliceReport, *, seed: int,
                min_chars: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Write the slice's documents to ``spill`` (Arrow stream); return their keys and sizes."""
    keys, sizes, ids, rows, pending = [], [], set(), [], 0
    with pa.OSFile(str(spill), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as writer, \
            _progress(progress, sl.name) as bar:
        for reader in sl.readers:
            if reader.package in report.missing:
                continue
            for doc in reader.documents(dpkg):
                bar.update()
                if not doc.text.strip() or len(doc.text) < min_chars:
                    report.too_short += 1
                    continue
                doc_id = document_id(sl.name, doc.package, doc.file)
                if doc_id in ids:
                    raise RuntimeError(f"slice {sl.name!r}: two documents with id {doc_id} "
                                       f"({doc.package} {doc.file})")
                ids.add(doc_id)
                size = len(doc.text.encode("utf-8"))
                keys.append(sample_key(seed, doc_id))
                sizes.append(size)
                rows.append({"id": doc_id, "text": doc.text, "slice": sl.name,
                             "package": doc.package, "version": doc.version, "file": doc.file,
                             "sha256": doc.sha256, "lang": doc.lang, "bytes": size})
                pending += size
                if pending >= SPILL_BYTES:
                    writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
                    rows, pending = [], 0
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
    report.available.add(len(sizes), sum(sizes))
    return np.asarray(keys, dtype=np.uint64), np.asarray(sizes, dtype=np.int64)


def _copy_split(spill: Path, split: np.ndarray, outputs: dict, report: SliceReport) -> None:
    """Copy the rows of ``spill`` to the outputs their ``split`` code names, in order."""
    start = 0
    with pa.OSFile(str(spill)) as source:
        for batch in pa.ipc.open_stream(source):
            codes = split[start:start + batch.num_rows]
            start += batch.num_rows
            table = pa.Table.from_batches([batch])
            for code, name in enumerate(SPLITS, start=1):
                rows = table.filter(pa.array(codes == code))
                if rows.num_rows:
                    outputs[name].write(rows)
                    report.packages.update(zip(rows["package"].to_pylist(),
                                               rows["version"].to_pylist()))
                    getattr(report, name).add(rows.num_rows,
                                              int(pc.sum(rows["bytes"]).as_py()))
    report.packages = dict(sorted(report.packages.items()))


def _check(slices, max_bytes, heldout_fraction, min_chars) -> list[str]:
    """The requested slice names in :data:`SLICES` order; CurateError for a bad setting."""
    names = [slices] if isinstance(slices, str) else list(slices)
    unknown = [n for n in names if n not in SLICES]
    if unknown or not names:
        what = f"unknown corpus slice {', '.join(map(repr, unknown))}" if unknown else \
            "no corpus slice given"
        raise CurateError(f"{what}; known slices: {', '.join(SLICES)}")
    caps = max_bytes.values() if isinstance(max_bytes, dict) else [max_bytes]
    if any(c is not None and c <= 0 for c in caps):
        raise CurateError(f"max_bytes must be positive (or None for no cap), not {max_bytes}")
    if isinstance(max_bytes, dict) and set(max_bytes) - set(names):
        raise CurateError(f"max_bytes names slices not built: "
                          f"{', '.join(sorted(set(max_bytes) - set(names)))}")
    if not 0 <= heldout_fraction < 1:
        raise CurateError(f"heldout_fraction must be in [0, 1), not {heldout_fraction}")
    if min_chars < 0:
        raise CurateError(f"min_chars must be >= 0, not {min_chars}")
    return [n for n in SLICES if n in names]


def build_corpus(out_dir: str | Path, *, slices=DEFAULT_SLICES, max_bytes: int | dict | None = None,
                 heldout_fraction: float = 0.1, seed: int = 0, min_chars: int = 200,
                 strict: bool = False, progress: bool = False) -> CorpusManifest:
    """Build the text corpus from installed packages into ``out_dir``.

    Writes ``train.parquet`` and ``heldout.parquet`` (zstd; columns of :data:`SCHEMA`:
    ``id``, ``text``, ``slice``, ``package``, ``version``, ``file``, ``sha256`` of the
    source file, ``lang``, ``bytes`` of UTF-8 text; rows by slice in :data:`SLICES` order,
    then in reading order) and ``manifest.json``, each atomically. The same packages and
    arguments give byte-identical files.

    Args:
        slices: names from :data:`SLICES`, default ``prose``, ``man``, ``changelog``,
            ``copyright``, ``code`` (``multilingual`` on request).
        max_bytes: cap per slice on the text written (train and held out together), filled
            from a seeded random order of the slice's documents; a mapping gives each
            slice its own cap (slices left out are not capped); None: no cap.
        heldout_fraction: share of each slice's documents held out, in ``[0, 1)``.
        seed: the random order behind the cap and the split.
        min_chars: shorter documents (and blank ones) are left out.
        strict: a Debian package a slice needs but that is not installed is a CurateError
            (default: that part is left out, a slice with nothing left is skipped, and the
            manifest says so).
        progress: a progress bar per slice on stderr.
    """
    names = _check(slices, max_bytes, heldout_fraction, min_chars)
    dpkg = Dpkg()
    manifest = CorpusManifest(curate.__version__, platform.python_version(), seed,
                              heldout_fraction, max_bytes, min_chars)
    reports = {}
    for name in names:
        sl = SLICES[name]
        missing = [p for p in sl.packages if not dpkg.installed(p)]
        if missing and strict:
            raise CurateError(f"corpus slice {name!r} needs the Debian package "
                              f"{', '.join(missing)}, which is not installed; install it with: "
                              f"{install_command(missing)}")
        reports[name] = SliceReport(
            name, sl.summary,
            [{"reader": r.describe(), "package": r.package, "license": r.license,
              "read": r.package not in missing} for r in sl.readers],
            {p: f"not installed ({install_command([p])})" for p in missing})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".corpus-", dir=out_dir) as scratch, \
            _ParquetRows(out_dir / "train.parquet") as train, \
            _ParquetRows(out_dir / "heldout.parquet") as heldout:
        outputs = {"train": train, "heldout": heldout}
        for name, report in reports.items():
            sl, spill = SLICES[name], Path(scratch) / f"{name}.arrow"
            if all(r.package in report.missing for r in sl.readers):
                manifest.skipped[name] = (f"{', '.join(report.missing)} not installed "
                                          f"({install_command(report.missing)})")
                continue
            keys, sizes = _read_slice(sl, dpkg, spill, report, seed=seed,
                                      min_chars=min_chars, progress=progress)
            if not len(keys):
                manifest.skipped[name] = "no documents (no installed file matches)"
                continue
            cap = max_bytes.get(name) if isinstance(max_bytes, dict) else max_bytes
            _copy_split(spill, choose(keys, sizes, cap, heldout_fraction), outputs, report)
            spill.unlink()
            manifest.slices[name] = report
    for name, output in outputs.items():
        path = out_dir / f"{name}.parquet"
        manifest.files[path.name] = {"documents": output.count.documents,
                                     "text_bytes": output.count.bytes,
                                     "size": path.stat().st_size, "xxh3_128": file_hash(path)}
    write_text(out_dir / "manifest.json", manifest.to_json())
    return manifest
