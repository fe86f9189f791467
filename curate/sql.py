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


# -- printing results -------------------------------------------------------------------
def _cell(value) -> str:
    """One value as the table shows it: NULL for a missing value, NaN only for a float
    that is not a number."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value).replace("\n", "\\n").replace("\t", "\\t")


def _numeric(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or \
        pa.types.is_decimal(type_)


def format_table(table: pa.Table, max_rows: int = 200) -> str:
    """A query result as an aligned text table (numbers right-aligned, NULL for missing
    values); longer results show their first and last ``max_rows // 2`` rows."""
    n = table.num_rows
    shown = list(range(n)) if n <= max_rows else [*range(max_rows // 2),
                                                   *range(n - max_rows // 2, n)]
    take = table if len(shown) == n else table.take(pa.array(shown, pa.int64()))
    columns = []
    for name, col in zip(table.column_names, take.columns):
        cells = [_cell(v) for v in col.to_pylist()]
        width = max([len(name), *map(len, cells)])
        right = _numeric(col.type)
        columns.append([s.rjust(width) if right else s.ljust(width) for s in [name, *cells]])
    lines = [" ".join(row).rstrip() for row in zip(*columns)] if columns else []
    if not lines:
        return "(no columns)"
    if n == 0:
        return f"{lines[0]}\n(0 rows)"
    if len(shown) < n:
        lines.insert(1 + max_rows // 2, "...")
        lines.append(f"[{n} rows x {table.num_columns} columns]")
    return "\n".join(lines)


def json_lines(table: pa.Table) -> str:
    """A query result as JSON lines: NULL (and a float that is not a number, which JSON
    cannot write) is null; decimals are numbers; dates and times ISO 8601 text."""
    import decimal
    import json
    import math

    def value(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, decimal.Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        if isinstance(v, dict):
            return {k: value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [value(x) for x in v]
        return v

    def other(v):
        return v.isoformat() if hasattr(v, "isoformat") else str(v)

    return "".join(json.dumps(value(row), ensure_ascii=False, default=other) + "\n"
                   for row in table.to_pylist())
