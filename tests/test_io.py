"""Reading and writing datasets: formats, ids, batching, atomic writes, bad input."""

import datasets
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate
from curate.core.errors import CurateError
from curate.io import Source, TableWriter
from tests.conftest import write_jsonl


def test_formats_read_the_same_rows(tmp_path, docs):
    table = pa.Table.from_pylist(docs)
    write_jsonl(tmp_path / "a.jsonl", docs)
    write_jsonl(tmp_path / "a.jsonl.gz", docs, gz=True)
    pq.write_table(table, tmp_path / "a.parquet")
    table.to_pandas().to_csv(tmp_path / "a.csv", index=False)
    datasets.Dataset(table).save_to_disk(str(tmp_path / "saved"))
    for name in ("a.jsonl", "a.jsonl.gz", "a.parquet", "a.csv", "saved"):
        got = Source(str(tmp_path / name)).read_all()
        assert got.column("id").to_pylist() == [d["id"] for d in docs], name
        texts = [t or "" for t in got.column("text").to_pylist()]
        assert texts == [d["text"] for d in docs], name


def test_shards_by_folder_and_glob_keep_order_and_assign_positions(tmp_path, docs):
    rows = [{"text": d["text"]} for d in docs]
    write_jsonl(tmp_path / "part-000.jsonl", rows[:5])
    write_jsonl(tmp_path / "part-001.jsonl", rows[5:])
    for spec in (str(tmp_path), str(tmp_path / "part-*.jsonl")):
        source = Source(spec)
        table = source.read_all()
        assert table.column("id").to_pylist() == list(range(len(rows)))
        assert source.ids_assigned is True


def test_batches_are_bounded(tmp_path, docs):
    write_jsonl(tmp_path / "d.jsonl", docs)
    sizes = [b.num_rows for b in Source(str(tmp_path / "d.jsonl")).iter_batches(5)]
    assert sizes == [5, 5, 2]


def test_in_memory_kinds_round_trip(docs):
    frame = pd.DataFrame(docs)
    for data, kind in ((frame, pd.DataFrame), (pa.Table.from_pandas(frame), pa.Table),
                       (datasets.Dataset.from_pandas(frame), datasets.Dataset)):
        from filters import Where

        scores = curate.score(data, "exact_dup")
        assert isinstance(scores, kind)
        selection = curate.select(scores, Where("NOT exact_dup_duplicate"))
        kept = curate.apply(data, selection)
        assert isinstance(kept, kind)
        assert len(kept) == len(docs) - 1  # the duplicate of doc0


def test_load_returns_memory_mapped_dataset(tmp_path, docs, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    write_jsonl(tmp_path / "d.jsonl", [{"text": d["text"]} for d in docs])
    ds = curate.load(str(tmp_path / "d.jsonl"))
    assert isinstance(ds, datasets.Dataset)
    assert ds["id"] == list(range(len(docs)))
    assert ds.cache_files  # backed by an Arrow file, not held in memory
    assert curate.load(str(tmp_path / "d.jsonl"))["text"] == ds["text"]


def test_save_writes_by_extension(tmp_path, docs):
    for name in ("o.jsonl", "o.jsonl.gz", "o.parquet", "o.csv"):
        curate.save(pa.Table.from_pylist(docs), tmp_path / name)
        assert Source(str(tmp_path / name)).read_all().num_rows == len(docs)


def test_gzip_output_is_byte_identical(tmp_path, docs):
    table = pa.Table.from_pylist(docs)
    for name in ("x.jsonl.gz", "y.jsonl.gz"):
        with TableWriter(tmp_path / name) as w:
            w.write(table)
    assert (tmp_path / "x.jsonl.gz").read_bytes() == (tmp_path / "y.jsonl.gz").read_bytes()


def test_failed_write_leaves_no_file(tmp_path, docs):
    with pytest.raises(RuntimeError):
        with TableWriter(tmp_path / "out.parquet") as w:
            w.write(pa.Table.from_pylist(docs))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, message", [
    (b'{"id": 1, "text": "a"}\n{"id": 2, "text": "b"\n', "bad.jsonl:2: malformed JSON"),
    (b'{"id": 1, "text": "caf\xe9"}\n', "bad.jsonl:1: invalid UTF-8"),
    (b'{"id": 1, "text": "a"}\n[1, 2]\n', "bad.jsonl:2: expected a JSON object"),
    (b"", "bad.jsonl: dataset is empty"),
    (b'{"id": 1, "body": "a"}\n', "column 'text' not found; columns are: id, body"),
    (b'{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', "duplicate id 1"),
])
def test_bad_input_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(CurateError, match=message.replace("(", r"\(")):
        Source(str(path), required_columns=("text",)).read_all()


def test_oversized_document_is_reported(tmp_path):
    path = write_jsonl(tmp_path / "big.jsonl", [{"text": "word " * 1_100_000}])
    with pytest.raises(CurateError,
                       match=r"big.jsonl:1: .*column 'text' is 5.2 MiB, over the 4.0 MiB limit"):
        Source(str(path)).read_all()
    assert Source(str(path), max_doc_bytes=0).read_all().num_rows == 1


def test_truncated_gzip_is_reported(tmp_path, docs):
    path = write_jsonl(tmp_path / "d.jsonl.gz", docs * 50, gz=True)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CurateError, match="d.jsonl.gz: cannot read"):
        Source(str(path)).read_all()


def test_unknown_path_and_type(tmp_path):
    with pytest.raises(CurateError, match="no such file or folder"):
        Source(str(tmp_path / "missing.jsonl"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(CurateError, match="unsupported file type"):
        Source(str(tmp_path / "x.txt"))


def test_atomic_writes_get_the_mode_a_plain_open_would_give(tmp_path):
    import os

    from curate.io import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.txt").read_text() == "x"
