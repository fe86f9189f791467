"""One content-addressed cache: a folder of files named by the fingerprint of what made them.

A key is a :func:`curate.core.hashing.fingerprint` of everything the content depends on
(configuration, data fingerprints, curate's version); the file is
``<folder>/<key><suffix>``. Entries are written atomically (a temporary name, then a
rename), so a killed process never leaves a half entry, and two processes computing the
same entry simply write the same bytes. The score caches and training-run caches of the
experiments, the recipe steps and :func:`curate.load` all use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file 0600; give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_folder() -> Path:
    """``$CURATE_CACHE``, default ``~/.cache/curate``."""
    return Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate"))


class Cache:
    """Files keyed by fingerprint in ``folder`` (created on first write).

    ``hits`` and ``misses`` count the lookups that found an entry and those that did not.
    """

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()
        self.hits = self.misses = 0

    def path(self, key: str, suffix: str) -> Path:
        return self.folder / f"{key}{suffix}"

    def _lookup(self, key: str, suffix: str) -> Path | None:
        path = self.path(key, suffix)
        if path.exists():
            self.hits += 1
            return path
        self.misses += 1
        return None

    def get_json(self, key: str):
        """The JSON value stored under ``key``, or None."""
        path = self._lookup(key, ".json")
        return None if path is None else json.loads(path.read_text(encoding="utf-8"))

    def put_json(self, key: str, value) -> Path:
        path = self.path(key, ".json")
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(value, sort_keys=True, indent=1, default=str),
                           encoding="utf-8")
        return path

    def get_table(self, key: str) -> pa.Table | None:
        """The Parquet table stored under ``key``, or None."""
        import pyarrow.parquet as pq

        path = self._lookup(key, ".parquet")
        return None if path is None else pq.read_table(path)

    def put_table(self, key: str, table: pa.Table) -> Path:
        import pyarrow.parquet as pq

        path = self.path(key, ".parquet")
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path

    def file(self, key: str, suffix: str, write) -> Path:
        """The path of entry ``key`` + ``suffix``, made first by ``write(tmp_path)`` if absent."""
        path = self._lookup(key, suffix)
        if path is None:
            path = self.path(key, suffix)
            with atomic_path(path) as tmp:
                write(tmp)
        return path
