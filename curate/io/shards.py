"""The shard plan: a source cut into sorted row ranges that any executor can score alone.

A :class:`Shard` is a row range of one file (or of an in-memory table) with the position
of its first row in the whole source, so that ids assigned by position, the rows a
shard covers and the shard's name never depend on which worker reads it or when.
:func:`plan_shards` cuts a source into shards of at most ``shard_rows`` rows, in the
source's own order (files sorted by path, rows in file order); :class:`ShardPlan`
carries them with a fingerprint of what the plan was made from (file paths, sizes and
modification times, or the in-memory table's content hash; the shard size; curate's
version). The local and the Ray executor run the same plan.

Counting rows reads each file once (Parquet only its footer); the counts are kept in
the plan, and a plan file whose fingerprint still matches is reused instead of counting
again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

#: Rows per shard by default: small enough to resume at a fine grain and to keep a few
#: workers busy on one file of tens of thousands of documents, large enough that the
#: per-shard overhead (a file and a commit per scorer) stays small. Raise it for corpora
#: of hundreds of millions of documents.
DEFAULT_SHARD_ROWS = 10_000


@dataclass(frozen=True)
class Shard:
    """Rows ``start`` to ``stop`` of ``file`` (None: the in-memory table).

    ``position`` is the source position of the shard's first row (the rows of the files
    before it, plus ``start``); ``index`` orders shards, and names them
    (:attr:`name`, ``00000``).
    """

    index: int
    file: str | None
    start: int
    stop: int
    position: int

    @property
    def name(self) -> str:
        return f"{self.index:05d}"

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class ShardPlan:
    """The shards of a source and the fingerprint of what they were cut from."""

    shards: list[Shard]
    fingerprint: str
    ids_assigned: bool
    first_file: str | None
    rows: int

    def to_json(self) -> str:
        return json.dumps({"fingerprint": self.fingerprint, "ids_assigned": self.ids_assigned,
                           "first_file": self.first_file, "rows": self.rows,
                           "shards": [asdict(s) for s in self.shards]}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ShardPlan:
        data = json.loads(text)
        return cls([Shard(**s) for s in data["shards"]], data["fingerprint"],
                   data["ids_assigned"], data["first_file"], data["rows"])


def plan_fingerprint(source, shard_rows: int) -> str:
    """What a plan of ``source`` depends on: files with sizes and mtimes (or the
    in-memory table's content), ``shard_rows``, curate's version."""
    import curate
    from curate.core.hashing import fingerprint

    if source.in_memory is not None:
        content = source.fingerprint()
    else:
        content = [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in source.files]
    return fingerprint([content, shard_rows, curate.__version__])


def plan_shards(source, shard_rows: int = DEFAULT_SHARD_ROWS,
                previous: ShardPlan | None = None) -> ShardPlan:
    """Cut ``source`` (a :class:`curate.io.Source`) into shards of at most ``shard_rows`` rows.

    ``previous``, a plan read back from disk, is returned as it is when its fingerprint
    matches (the files have not changed), so a resumed run counts nothing again.
    Reading the first row checks the source's columns and decides whether ids are
    positions (no id column in the first file).
    """
    from curate.core.errors import CurateError
    from curate.io.formats import format_of
    from curate.io.readers import count_rows

    if isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1:
        raise CurateError(f"shard_rows must be a whole number >= 1, got {shard_rows!r}")
    fp = plan_fingerprint(source, shard_rows)
    if previous is not None and previous.fingerprint == fp:
        return previous
    next(source.iter_batches(1), None)  # sets ids_assigned; raises on an empty source
    if source.in_memory is not None:
        counts = [(None, source.in_memory.num_rows)]
    else:
        counts = [(str(f), count_rows(f, format_of(f))) for f in source.files]
    shards, position = [], 0
    for file, rows in counts:
        for start in range(0, rows, shard_rows):
            stop = min(start + shard_rows, rows)
            shards.append(Shard(len(shards), file, start, stop, position + start))
        position += rows
    first = str(source.files[0]) if source.files and source.in_memory is None else None
    return ShardPlan(shards, fp, bool(source.ids_assigned), first, position)


def read_plan(path: Path) -> ShardPlan | None:
    """The plan stored at ``path``, or None when there is none (or it is unreadable)."""
    try:
        return ShardPlan.from_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
