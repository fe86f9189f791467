"""One fingerprint for everything that is cached or compared: values, files, tables.

Values are hashed as canonical JSON (sorted keys, no spaces, ``str()`` for anything
JSON cannot encode) with xxh3-128, so the same configuration gives the same key in
every process and on every machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa


def canonical_json(value) -> str:
    """``value`` as compact JSON with sorted keys (the text that :func:`fingerprint` hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(value) -> str:
    """xxh3-128 hex digest (32 characters) of the canonical JSON of ``value``."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(canonical_json(value).encode())


def file_hash(path: str | Path) -> str:
    """xxh3-128 hex digest of a file's bytes, read in 4 MiB blocks."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def table_hash(table: pa.Table) -> str:
    """xxh3-128 hex digest of a table's Arrow IPC stream (schema and values)."""
    import xxhash

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return xxhash.xxh3_128_hexdigest(sink.getvalue().to_pybytes())
