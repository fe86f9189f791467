"""SQL over score tables with DuckDB, sandboxed.

User SQL runs on an in-memory connection with external access disabled: it sees
the registered score tables (one view per scorer, plus ``scores``, their join by
id) and nothing on disk.
"""

from __future__ import annotations

import pyarrow as pa

from curate.core.errors import CurateError


def connect(tables: dict[str, pa.Table], joined: pa.Table | None = None):
    """A DuckDB connection that sees only the given tables (and ``scores``)."""
    import duckdb

    con = duckdb.connect(config={"enable_external_access": False,
                                 "lock_configuration": True, "threads": 1})
    for name, table in tables.items():
        con.register(name, table)
    if joined is not None:
        con.register("scores", joined)
    return con


def query(tables: dict[str, pa.Table], sql: str, joined: pa.Table | None = None) -> pa.Table:
    """Run one SQL statement and return its result as Arrow."""
    con = connect(tables, joined)
    try:
        return con.sql(sql).to_arrow_table()
    except Exception as exc:  # duckdb raises many error classes; all are the user's SQL
        raise CurateError(f"SQL error in {sql!r}: {_first_line(exc)}") from None
    finally:
        con.close()


def evaluate(table: pa.Table, expression: str, *, what: str = "predicate") -> pa.Array:
    """Evaluate a SQL expression for every row of ``table``, in row order.

    Columns of ``table`` are visible by name. A boolean predicate that yields NULL
    counts as false, as in a SQL ``WHERE``.
    """
    con = connect({}, table)
    try:
        result = con.sql(f"SELECT ({expression}) AS value FROM scores").to_arrow_table()
    except Exception as exc:
        raise CurateError(f"bad {what} {expression!r}: {_first_line(exc)}") from None
    finally:
        con.close()
    return result.column("value").combine_chunks()


def evaluate_predicate(table: pa.Table, predicate: str) -> pa.Array:
    """Boolean mask of rows where ``predicate`` is true (NULL counts as false)."""
    import pyarrow.compute as pc

    values = evaluate(table, predicate)
    if not pa.types.is_boolean(values.type):
        raise CurateError(f"predicate {predicate!r} gives {values.type} values; expected a "
                          "boolean condition such as \"gopher_quality_keep AND "
                          "fasttext_quality_hq > 0.5\"")
    return pc.fill_null(values, False)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
