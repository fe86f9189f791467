"""Reading datasets in bounded batches, and writing them atomically.

A :class:`Source` reads JSONL (also gzipped), Parquet, CSV, a ``save_to_disk``
folder, a folder or glob of such shards, a built-in name (``builtin:NAME``), or an
in-memory ``datasets.Dataset`` / pandas DataFrame / ``pyarrow.Table``. It yields
``pyarrow.Table`` batches that always carry the id column, so memory stays
bounded whatever the corpus size.

Shards need not agree on column types when the types are compatible: ``string`` and
``large_string`` become ``string``, integers of any width ``int64``, integers beside
floats ``float64`` (when every integer is exact as a float), an all-null column takes
the type the other shards give it, and a column missing from a shard is null there.
Ids are always ``int64`` or ``string`` when read from files. Types that cannot be
combined (integer ids in one file, string ids in another) are an error naming both
files and the column.

Every user error (malformed JSON, invalid UTF-8, a missing column, a value of the
wrong type, an empty file, a duplicate id, an oversized document) is a
:class:`CurateError` naming the file, the line (JSONL; rows of other formats count
from 0) and what was expected.

The size limit (``max_doc_bytes``) is one rule for every format: a document's size is
the UTF-8 bytes of its text: the text column (``text_column``, default ``text``) and,
while scoring, each string column a scorer reads (``required_columns``). Other columns
do not count, and data without text has no limit. ``on_oversize="skip"`` leaves such
documents out instead of stopping; :attr:`Source.skipped` counts them (ids stay the
documents' positions in the source either way).
"""

from curate.io.formats import (
           DEFAULT_BATCH_SIZE,
           DEFAULT_MAX_DOC_BYTES,
           MIB,
           ON_OVERSIZE,
           human_bytes,
)
from curate.io.memory import like, to_arrow
from curate.io.schema import cast_column, concat_tables, conform_table, unify_schemas
from curate.io.source import Source
from curate.io.writers import TableWriter, write_figure, write_table, write_text

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_DOC_BYTES", "MIB", "ON_OVERSIZE", "Source",
           "TableWriter", "cast_column", "concat_tables", "conform_table", "human_bytes",
           "like", "to_arrow", "unify_schemas", "write_figure", "write_table", "write_text"]
