"""Regression tests for defects found by running curate on real data: shards whose column
types differ, CSV with quoted newlines, oversized documents (skip or stop), error
locations, selections whose id type differs, the kind select returns, tags written by
default, and NULL in `curate sql`."""

import json
import subprocess
import sys
import warnings

import datasets
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate
import curate.io.readers
import filters as F
from curate.core.errors import CurateError
from curate.io import MIB, Source, TableWriter, human_bytes
from curate.materialize import ApplyOptions, write_applied
from curate.scores import read_sharded
from curate.sql import format_table, json_lines
from tests.conftest import PROSE, write_jsonl


def cli(*args):
    return subprocess.run([sys.executable, "-m", "curate.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def texts(n, start=0):
    return [f"Document {i}. " + PROSE for i in range(start, start + n)]


def everything(folder, tmp_path, monkeypatch):
    """read_all, curate.score, curate.load and curate.apply on one folder."""
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    table = Source(str(folder)).read_all()
    scores = curate.score(str(folder), "exact_dup")
    assert scores.column("id").to_pylist() == table.column("id").to_pylist()
    loaded = curate.load(str(folder))
    assert loaded["id"] == table.column("id").to_pylist()
    kept = curate.apply(str(folder), curate.select(scores, F.Where("true")))
    assert kept["id"] == table.column("id").to_pylist()
    return table, loaded


# -- 1. shards whose column types differ ------------------------------------------------
def test_string_and_large_string_shards(tmp_path, monkeypatch):
    folder = tmp_path / "shards"
    folder.mkdir()
    pq.write_table(pa.table({"id": pa.array(["a", "b"], pa.string()),
                             "text": pa.array(texts(2), pa.string())}), folder / "0.parquet")
    pq.write_table(pa.table({"id": pa.array(["c", "d"], pa.large_string()),
                             "text": pa.array(texts(2, 2), pa.large_string())}),
                   folder / "1.parquet")
    table, loaded = everything(folder, tmp_path, monkeypatch)
    assert table.schema.field("id").type == pa.string()
    assert table.schema.field("text").type == pa.string()
    assert loaded["id"] == ["a", "b", "c", "d"]


def test_int_widths_floats_nulls_and_jsonl_beside_parquet(tmp_path, monkeypatch):
    folder = tmp_path / "mixed"
    folder.mkdir()
    pq.write_table(pa.table({"id": pa.array([0, 1], pa.int32()), "text": texts(2),
                             "score": pa.array([1, 2], pa.int16()),
                             "note": pa.nulls(2)}), folder / "a.parquet")
    pq.write_table(pa.table({"id": pa.array([2, 3], pa.int64()), "text": texts(2, 2),
                             "score": pa.array([0.5, None]), "note": ["x", None]}),
                   folder / "b.parquet")
    write_jsonl(folder / "c.jsonl", [{"id": 4, "text": texts(1, 4)[0], "score": 7,
                                      "extra": True}])
    table, _ = everything(folder, tmp_path, monkeypatch)
    assert table.schema.field("id").type == pa.int64()
    assert table.column("score").to_pylist() == [1.0, 2.0, 0.5, None, 7.0]
    assert table.column("note").to_pylist() == [None, None, "x", None, None]
    assert table.column("extra").to_pylist() == [None, None, None, None, True]


def test_int_ids_in_one_file_and_string_ids_in_another_is_one_clear_error(tmp_path):
    folder = tmp_path / "clash"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "text": texts(2)}), folder / "0.parquet")
    write_jsonl(folder / "1.jsonl", [{"id": "c", "text": "x"}])
    with pytest.raises(CurateError, match=r"1\.jsonl:1: column 'id' holds string ids, but "
                                          r".*0\.parquet holds int64 ids"):
        Source(str(folder)).read_all()
    pq.write_table(pa.table({"id": ["c"], "text": ["x"]}), folder / "1.parquet")
    (folder / "1.jsonl").unlink()
    with pytest.raises(CurateError, match=r"1\.parquet: column 'id' holds string ids, but "
                                          r".*0\.parquet holds int64 ids"):
        next(Source(str(folder)).iter_batches())  # found from the footers, before reading
    result = cli("score", folder, "-s", "exact_dup", "-o", tmp_path / "out")
    one_line_error(result, "0.parquet", "1.parquet", "'id'")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_jsonl_types_that_widen_between_batches(tmp_path, monkeypatch):
    """A column that is null in the first 1,200 lines, integers that become floats, and a
    key that appears late: read, loaded and written (Parquet, CSV, JSONL) intact."""
    rows = [{"id": i, "text": f"t{i}", "score": i, **({"meta": f"m{i}"} if i >= 1200 else
                                                       {"meta": None})} for i in range(1500)]
    rows[1400]["score"] = 0.5
    rows[1450]["late"] = "yes"
    path = write_jsonl(tmp_path / "w.jsonl", rows)
    table = Source(str(path)).read_all()
    assert table.column("meta").to_pylist() == [r["meta"] for r in rows]
    assert table.column("score").to_pylist() == [float(r["score"]) for r in rows]
    assert table.column("late").to_pylist() == [r.get("late") for r in rows]
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    assert curate.load(str(path))["late"][1450] == "yes"
    selection = pa.table({"id": list(range(1500)), "keep": [i % 2 == 0 for i in range(1500)]})
    for name in ("kept.parquet", "kept.csv", "kept.jsonl"):
        write_applied(Source(str(path)), selection, ApplyOptions(), kept=tmp_path / name,
                      batch_size=100)
        back = Source(str(tmp_path / name)).read_all()
        assert back.column("id").to_pylist() == list(range(0, 1500, 2)), name
        meta = back.column("meta").to_pylist()
        if name.endswith(".csv"):  # CSV reads an empty field as an empty string
            meta = [m or None for m in meta]
        assert meta == [r["meta"] for r in rows[::2]], name
        assert back.column("score").to_pylist()[700] == 0.5, name


def test_a_key_first_seen_in_a_later_row_of_a_batch_is_kept(tmp_path):
    path = write_jsonl(tmp_path / "k.jsonl", [{"id": 1, "text": "a"},
                                              {"id": 2, "text": "b", "lang": "fr"}])
    assert Source(str(path)).read_all().column("lang").to_pylist() == [None, "fr"]


def test_integers_too_large_for_floats_are_not_rounded(tmp_path):
    rows = [{"id": i, "text": "t", "n": 2 ** 60 + i} for i in range(3)]
    rows.append({"id": 3, "text": "t", "n": 0.5})
    path = write_jsonl(tmp_path / "n.jsonl", rows)
    with pytest.raises(CurateError, match=r"n\.jsonl:4: column 'n'.*too large to be exact"):
        list(Source(str(path)).iter_batches(batch_size=2))  # in one batch
    with pytest.raises(CurateError, match=r"n\.jsonl:4: column 'n'.*too large to be exact"):
        list(Source(str(path)).iter_batches(batch_size=3))  # across batches


def test_table_writer_widens_what_it_has_written(tmp_path):
    first = pa.table({"id": [1, 2], "x": pa.nulls(2), "n": [1, 2]})
    second = pa.table({"id": [3], "x": ["s"], "n": [2.5], "new": [True]})
    for name in ("o.parquet", "o.csv", "o.jsonl"):
        with TableWriter(tmp_path / name) as writer:
            writer.write(first)
            writer.write(second)
        back = Source(str(tmp_path / name)).read_all()
        x = back.column("x").to_pylist()
        assert [v or None for v in x] if name.endswith(".csv") else x == [None, None, "s"]
        assert back.column("n").to_pylist() == [1.0, 2.0, 2.5], name
        assert back.column("new").to_pylist() == [None, None, True], name
    with pytest.raises(CurateError, match="o2.parquet: column 'x' changes type"):
        with TableWriter(tmp_path / "o2.parquet") as writer:
            writer.write(pa.table({"x": [1]}))
            writer.write(pa.table({"x": ["a"]}))
    assert not (tmp_path / "o2.parquet").exists()


# -- 2. CSV with quoted newlines --------------------------------------------------------
def test_csv_with_quoted_newlines_larger_than_the_block_size(tmp_path, monkeypatch):
    monkeypatch.setattr(curate.io.readers, "CSV_BLOCK_SIZE", 4096)
    body = [f"line one of {i}\nline two, with a comma\n\nand \"quotes\"" for i in range(300)]
    body[150] = "long\n" + "x" * 20_000  # one row longer than the block
    frame = pd.DataFrame({"id": range(300), "text": body})
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert (tmp_path / "t.csv").stat().st_size > 4 * 4096
    table = Source(str(tmp_path / "t.csv"), required_columns=("text",)).read_all()
    assert table.column("id").to_pylist() == list(range(300))
    assert table.column("text").to_pylist() == body


def test_csv_text_column_is_read_as_strings(tmp_path):
    pd.DataFrame({"id": [1, 2], "text": ["12", "7"]}).to_csv(tmp_path / "n.csv", index=False)
    assert Source(str(tmp_path / "n.csv")).read_all().column("text").to_pylist() == ["12", "7"]


# -- 3. oversized documents -------------------------------------------------------------
def test_sizes_are_in_mib():
    assert human_bytes(4 * MIB) == "4.0 MiB"
    assert human_bytes(int(5.5 * MIB)) == "5.5 MiB"
    assert human_bytes(2048) == "2.0 KiB"
    assert human_bytes(10) == "10 bytes"


@pytest.fixture
def with_big(tmp_path):
    """Five documents; the third is over a 1 KiB limit."""
    rows = [{"text": f"small {i}"} for i in range(5)]
    rows[2]["text"] = "big " * 300
    return write_jsonl(tmp_path / "big.jsonl", rows)


def test_skip_counts_and_keeps_positions_as_ids(with_big):
    with pytest.raises(CurateError, match=r"big.jsonl:3: example id=2: column 'text' is "
                                          r"1\.2 KiB, over the 1\.0 KiB limit.*--on-oversize"):
        Source(str(with_big), max_doc_bytes=1024).read_all()
    source = Source(str(with_big), max_doc_bytes=1024, on_oversize="skip")
    assert source.read_all().column("id").to_pylist() == [0, 1, 3, 4]
    assert source.skipped == 1 and source.skipped_at == [f"{with_big}:3"]
    assert source.describe()["skipped"] == 1
    assert "skipped 1 document" in source.skipped_report()
    with pytest.raises(CurateError, match="on_oversize must be one of error, skip"):
        Source(str(with_big), on_oversize="drop")


def test_skip_through_the_api_warns(with_big, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="skipped 1 document"):
        scores = curate.score(str(with_big), "exact_dup", max_doc_bytes=1024,
                              on_oversize="skip")
    assert scores.column("id").to_pylist() == [0, 1, 3, 4]
    with pytest.warns(UserWarning, match="skipped 1 document"):
        assert curate.load(str(with_big), max_doc_bytes=1024, on_oversize="skip")["id"] == [
            0, 1, 3, 4]
    selection = curate.select(scores, F.Where("true"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = curate.apply(str(with_big), selection, max_doc_bytes=1024, on_oversize="skip")
    assert kept["id"] == [0, 1, 3, 4]
    with pytest.raises(CurateError, match="id 2 of the dataset is not in the selection"):
        curate.apply(str(with_big), selection, max_doc_bytes=0)


def test_cli_skip_reports_the_count(with_big, tmp_path):
    out = tmp_path / "scores"
    one_line_error(cli("score", with_big, "-s", "exact_dup", "--max-doc-bytes", 1024, "-o", out),
                   "big.jsonl:3:", "1.0 KiB limit", "--on-oversize skip")
    result = cli("score", with_big, "-s", "exact_dup", "--max-doc-bytes", 1024,
                 "--on-oversize", "skip", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "skipped 1 document" in result.stdout and "big.jsonl:3" in result.stdout
    assert read_sharded(out / "exact_dup").column("id").to_pylist() == [0, 1, 3, 4]
    assert cli("filter", out, "--where", "true", "-o", tmp_path / "sel.parquet").returncode == 0
    result = cli("apply", with_big, "--selection", tmp_path / "sel.parquet", "-o",
                 tmp_path / "kept.jsonl", "--max-doc-bytes", 1024, "--on-oversize", "skip")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 document" in result.stdout
    assert [json.loads(line)["id"] for line in (tmp_path / "kept.jsonl").open()] == [0, 1, 3, 4]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_apply_applies_one_size_rule_to_every_format(tmp_path, fmt):
    """The limit measures the text column, never the rest of the record."""
    rows = [{"id": "a", "text": "short", "meta": "m" * 5000},
            {"id": "b", "text": "long " * 400, "meta": ""}]
    path = tmp_path / f"d.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    pq.write_table(pa.table({"id": ["a", "b"], "keep": [True, True]}), tmp_path / "sel.parquet")
    args = ("apply", path, "--selection", tmp_path / "sel.parquet", "-o", tmp_path / "k.jsonl",
            "--max-doc-bytes", 1024)
    one_line_error(cli(*args), "example id='b'", "column 'text' is 2.0 KiB")
    assert not (tmp_path / "k.jsonl").exists()
    result = cli(*args, "--on-oversize", "skip")
    assert result.returncode == 2  # b is not in the dataset any more: the selection has it
    pq.write_table(pa.table({"id": ["a"], "keep": [True]}), tmp_path / "sel.parquet")
    assert cli(*args, "--on-oversize", "skip").returncode == 0
    assert [json.loads(line)["id"] for line in (tmp_path / "k.jsonl").open()] == ["a"]


# -- 4. error locations -----------------------------------------------------------------
def test_duplicate_id_names_its_line_and_the_first(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"id": 0, "text": "a"}\n\n{"id": 1, "text": "b"}\n{"id": 2, "text": "c"}\n'
                    '{"id": 0, "text": "d"}\n')
    for batch_size in (1000, 2):
        with pytest.raises(CurateError, match=r"dup\.jsonl:5: duplicate id 0 \(first seen at "
                                              r".*dup\.jsonl:1\)"):
            list(Source(str(path)).iter_batches(batch_size))
    folder = tmp_path / "two"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"id": i, "text": "x"} for i in range(5)])
    write_jsonl(folder / "b.jsonl", [{"id": 9, "text": "x"}, {"id": 3, "text": "y"}])
    with pytest.raises(CurateError, match=r"b\.jsonl:2: duplicate id 3 \(first seen at "
                                          r".*a\.jsonl:4\)"):
        list(Source(str(folder)).iter_batches(2))


def test_non_string_text_names_file_line_and_column(tmp_path):
    alone = tmp_path / "alone.jsonl"
    alone.write_text('{"id": 1, "text": 5}\n')
    with pytest.raises(CurateError, match=r"alone\.jsonl:1: column 'text' holds an integer "
                                          r"\(5\); expected a string"):
        Source(str(alone), required_columns=("text",)).read_all()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"id": 0, "text": "hello"}\n{"id": 1, "text": 5}\n')
    with pytest.raises(CurateError, match=r"mixed\.jsonl:2: column 'text' holds an integer"):
        Source(str(mixed)).read_all()
    one_line_error(cli("score", alone, "-s", "gopher_quality", "-o", tmp_path / "o"),
                   "alone.jsonl:1: column 'text' holds an integer (5); expected a string")
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": 0, "n": 1}\n{"id": 1, "n": "x"}\n')
    with pytest.raises(CurateError, match=r"other\.jsonl:2: column 'n' holds a string \(\"x\"\), "
                                          r"but earlier lines hold integers"):
        Source(str(other)).read_all()


@pytest.mark.parametrize("line, message", [
    ('{"id": 3, "t": "x" "u": 1}', "malformed JSON at column 20: Expecting ',' delimiter"),
    ('{"id": 3, "text": "a\tb"}', "malformed JSON: Invalid control character at column 21"),
    ('{"id": 3, "text": "abc', "malformed JSON: Unterminated string starting at column 19"),
    ('{"id": 3} {}', "malformed JSON at column 11: Extra data after the JSON object"),
])
def test_json_errors_are_whole_sentences(tmp_path, line, message):
    path = tmp_path / "file.jsonl"
    path.write_text('{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n' + line + "\n")
    with pytest.raises(CurateError) as info:
        Source(str(path)).read_all()
    assert str(info.value).startswith(f"{path}:3: {message}")


def test_rows_of_other_formats_are_located(tmp_path):
    pq.write_table(pa.table({"id": ["a", None], "text": ["x", "y"]}), tmp_path / "p.parquet")
    with pytest.raises(CurateError, match=r"p\.parquet: row 1: example has no id"):
        Source(str(tmp_path / "p.parquet")).read_all()
    frame = pd.DataFrame({"id": [1, 2], "text": ["a", 5]})
    with pytest.raises(CurateError, match="DataFrame column 'text' mixes value types"):
        Source(frame)


# -- 5. selections whose id type differs from the dataset's -----------------------------
@pytest.mark.parametrize("data_ids, sel_ids", [
    (pa.array([1, 2, 3], pa.int64()), pa.array([1, 2, 3], pa.int32())),
    (pa.array([1, 2, 3], pa.int32()), pa.array([1, 2, 3], pa.int64())),
    (pa.array(["a", "b", "c"], pa.string()), pa.array(["a", "b", "c"], pa.large_string())),
    (pa.array(["a", "b", "c"], pa.large_string()), pa.array(["a", "b", "c"], pa.string())),
])
def test_apply_unifies_compatible_id_types(data_ids, sel_ids):
    data = pa.table({"id": data_ids, "text": ["x", "y", "z"]})
    selection = pa.table({"id": sel_ids, "keep": [True, False, True]})
    kept = curate.apply(data, selection)
    assert kept.column("id").to_pylist() == [data_ids[0].as_py(), data_ids[2].as_py()]
    assert kept.column("id").type == data_ids.type  # the dataset keeps its own type


def test_apply_with_int_selection_on_string_ids_is_one_error(tmp_path, docs_file):
    pq.write_table(pa.table({"id": list(range(12)), "keep": [True] * 12}),
                   tmp_path / "sel.parquet")
    result = cli("apply", docs_file, "--selection", tmp_path / "sel.parquet", "-o",
                 tmp_path / "kept.jsonl")
    one_line_error(result, "the selection's ids are int64 but the dataset's ids are string")
    assert not (tmp_path / "kept.jsonl").exists()


# -- 6. select hands back the kind it was given -----------------------------------------
def test_select_returns_the_kind_it_was_given(docs):
    frame = pd.DataFrame(docs)
    for data, kind in ((frame, pd.DataFrame), (pa.Table.from_pandas(frame), pa.Table),
                       (datasets.Dataset.from_pandas(frame), datasets.Dataset)):
        selection = curate.select(curate.score(data, "exact_dup"),
                                  F.Where("NOT exact_dup_duplicate"))
        assert isinstance(selection, kind)
        assert len(curate.apply(data, selection)) == len(docs) - 1


# -- 7. tags are never dropped silently -------------------------------------------------
def test_tags_become_a_column_by_default_and_none_drops_them():
    data = pa.table({"id": ["a", "b", "c"], "text": ["x", "y", "z"]})
    tagged = pa.table({"id": ["a", "b", "c"], "keep": [True] * 3, "tag": ["hq", None, "lq"]})
    assert curate.apply(data, tagged).column("tag").to_pylist() == ["hq", None, "lq"]
    assert curate.apply(data, tagged, tag_as="none").column_names == ["id", "text"]
    untagged = pa.table({"id": ["a", "b", "c"], "keep": [True] * 3})
    assert curate.apply(data, untagged).column_names == ["id", "text"]
    own = data.append_column("tag", pa.array(["mine"] * 3))
    with pytest.raises(CurateError, match="already has a 'tag' column"):
        curate.apply(own, tagged)
    assert curate.apply(own, tagged, tag_as="none").column("tag").to_pylist() == ["mine"] * 3


def test_cli_apply_writes_tags_unless_told_not_to(tmp_path, docs_file):
    pq.write_table(pa.table({"id": ["doc0", "fr"], "keep": [True, True], "tag": [None, "fr"]}),
                   tmp_path / "sel.parquet")
    small = write_jsonl(tmp_path / "small.jsonl", [{"id": "doc0", "text": "a"},
                                                   {"id": "fr", "text": "b"}])
    base = ("apply", small, "--selection", tmp_path / "sel.parquet", "-o")
    assert cli(*base, tmp_path / "k.jsonl").returncode == 0
    assert [json.loads(line).get("tag") for line in (tmp_path / "k.jsonl").open()] == [None,
                                                                                       "fr"]
    assert cli(*base, tmp_path / "n.jsonl", "--tag-as", "none").returncode == 0
    assert all("tag" not in json.loads(line) for line in (tmp_path / "n.jsonl").open())


# -- 8. NULL in `curate sql` ------------------------------------------------------------
def test_sql_table_prints_null_not_nan(tmp_path, docs_file):
    out = tmp_path / "scores"
    assert cli("score", docs_file, "-s", "exact_dup", "-o", out).returncode == 0
    query = ("SELECT id, CASE WHEN exact_dup_duplicate THEN 1 END AS dup, "
             "CASE WHEN id = 'doc1' THEN 'x' END AS s FROM scores WHERE id IN ('doc1', 'dup') "
             "ORDER BY id")
    table = cli("sql", out, query)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["id", "dup", "s"]
    assert lines[1].split() == ["doc1", "NULL", "x"]
    assert lines[2].split() == ["dup", "1", "NULL"]
    assert "NaN" not in table.stdout and "None" not in table.stdout
    csv = cli("sql", out, query, "--format", "csv").stdout.splitlines()
    assert csv[1:] == ['"doc1",,"x"', '"dup",1,']
    rows = [json.loads(line) for line in cli("sql", out, query, "--format", "json").stdout
            .splitlines()]
    assert rows == [{"id": "doc1", "dup": None, "s": "x"}, {"id": "dup", "dup": 1, "s": None}]


def test_format_table_and_json_lines():
    table = pa.table({"n": pa.array([1, None], pa.int64()), "x": [float("nan"), 2.5],
                      "s": ["a", None]})
    lines = format_table(table).splitlines()
    assert [line.split() for line in lines] == [["n", "x", "s"], ["1", "nan", "a"],
                                                ["NULL", "2.5", "NULL"]]
    assert json_lines(table).splitlines() == ['{"n": 1, "x": null, "s": "a"}',
                                              '{"n": null, "x": 2.5, "s": null}']
    long = format_table(pa.table({"n": list(range(10))}), max_rows=4).splitlines()
    assert long == ["n", "0", "1", "...", "8", "9", "[10 rows x 1 columns]"]
    assert format_table(pa.table({"n": pa.array([], pa.int64())})) == "n\n(0 rows)"
