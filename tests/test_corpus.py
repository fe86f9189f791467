"""The text-corpus builder: provenance, the cap and the split, determinism, missing
packages, and the shipped sample (builtin:text_corpus).

Builds read only what every Debian image with Python has (``copyright`` files and the
standard library) or synthetic slices; readers of the optional documentation packages
are tested only where those packages are installed.
"""

import hashlib
import itertools
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.core.errors import CurateError
from curate.core.hashing import file_hash
from curate.corpus import SCHEMA, SLICES, Document, Slice, build_corpus, document_id
from curate.corpus.build import heldout_count
from curate.corpus.dictd import entry_spans
from curate.corpus.dpkg import Dpkg
from curate.corpus.files import Files, distinct_files, glob_regex
from curate.corpus.handbook import english_share
from curate.corpus.html import html_to_text
from curate.corpus.stdlib import PythonStdlib
from curate.corpus.wordnet import gloss_line
from curate.io import Source

SAMPLE = Path(__file__).resolve().parent.parent / "curate" / "data" / "text_corpus"
DPKG = Dpkg()
needs_dpkg = pytest.mark.skipif(not DPKG.versions(), reason="not a Debian system (no dpkg)")


class Synthetic:
    """A reader of ``n`` made-up documents ``doc000``, ``doc001``, ... of ``size`` characters."""

    license = "test"

    def __init__(self, n=200, size=1000, package=None):
        self.n, self.size, self.package = n, size, package

    def describe(self):
        return f"{self.n} synthetic documents"

    def documents(self, dpkg):
        for i in range(self.n):
            text = f"document {i:03d} " + "x" * (self.size - 13)
            yield Document("synthetic", "1.0", f"doc{i:03d}", text, "0" * 64)


@pytest.fixture
def synthetic(monkeypatch):
    """Register slices ``synthetic`` (200 documents of 1,000 bytes) and ``absent`` (needs a
    package that is never installed)."""
    monkeypatch.setitem(SLICES, "synthetic", Slice("synthetic", "test", (Synthetic(),)))
    monkeypatch.setitem(SLICES, "absent", Slice("absent", "test", (
        Synthetic(package="curate-no-such-package"),)))


def read(out: Path, split: str) -> list[dict]:
    return pq.read_table(out / f"{split}.parquet").to_pylist()


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    """``copyright`` and ``code`` from the installed files, 60 kB of text each."""
    out = tmp_path_factory.mktemp("corpus")
    manifest = build_corpus(out, slices=("code", "copyright"), max_bytes=60_000, seed=0)
    return out, manifest


# -- provenance ------------------------------------------------------------------------
@needs_dpkg
def test_rows_carry_their_provenance(real_build):
    out, manifest = real_build
    assert pq.read_schema(out / "train.parquet").remove_metadata().equals(SCHEMA)
    rows = read(out, "train") + read(out, "heldout")
    assert {r["slice"] for r in rows} == {"code", "copyright"}
    stdlib = PythonStdlib.root()
    for row in rows:
        assert row["id"] == document_id(row["slice"], row["package"], row["file"])
        assert row["bytes"] == len(row["text"].encode()) and len(row["text"]) >= 200
        assert row["lang"] is None
        if row["slice"] == "code":
            path = stdlib / row["file"]
            assert (row["package"], row["version"]) == ("python3-stdlib",
                                                        platform.python_version())
            assert "test" not in Path(row["file"]).parts[:-1]
        else:
            path = Path(row["file"])
            assert path == Path("/usr/share/doc") / row["package"] / "copyright"
            assert row["version"] == subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", row["package"]],
                capture_output=True, text=True, check=True).stdout
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert row["text"] == path.read_text("utf-8", errors="replace")


@needs_dpkg
def test_manifest_counts_packages_and_fingerprints(real_build):
    out, manifest = real_build
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(manifest.to_json())
    assert (on_disk["seed"], on_disk["max_bytes"], on_disk["heldout_fraction"]) == (0, 60_000,
                                                                                     0.1)
    assert on_disk["python_version"] == platform.python_version() and on_disk["skipped"] == {}
    for split in ("train", "heldout"):
        rows = read(out, split)
        entry = on_disk["files"][f"{split}.parquet"]
        assert entry["xxh3_128"] == file_hash(out / f"{split}.parquet")
        assert entry["documents"] == len(rows)
        for name, report in on_disk["slices"].items():
            mine = [r for r in rows if r["slice"] == name]
            assert report[split] == {"documents": len(mine),
                                     "bytes": sum(r["bytes"] for r in mine)}
            assert {r["package"]: r["version"] for r in mine}.items() <= \
                report["packages"].items()
    for report in on_disk["slices"].values():
        assert report["train"]["bytes"] + report["heldout"]["bytes"] <= 60_000
        assert report["available"]["documents"] > report["train"]["documents"]


# -- sampling and the split ------------------------------------------------------------
def test_the_cap_takes_a_seeded_random_sample_not_a_prefix(tmp_path, synthetic):
    manifest = build_corpus(tmp_path, slices=("synthetic",), max_bytes=30_000, seed=0)
    rows = read(tmp_path, "train") + read(tmp_path, "heldout")
    numbers = sorted(int(r["file"][3:]) for r in rows)
    assert len(rows) == 30 and sum(r["bytes"] for r in rows) == 30_000
    assert numbers != list(range(30)) and numbers[-1] > 150  # spread over all 200
    assert manifest.slices["synthetic"].available.documents == 200
    other = build_corpus(tmp_path / "seed1", slices=("synthetic",), max_bytes=30_000, seed=1)
    assert other.files["train.parquet"]["xxh3_128"] != manifest.files["train.parquet"][
        "xxh3_128"]
    # Rows keep the reading order.
    assert [r["file"] for r in read(tmp_path, "train")] == sorted(
        r["file"] for r in read(tmp_path, "train"))


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_held_out_share_per_slice_and_no_overlap(tmp_path, synthetic, fraction):
    build_corpus(tmp_path, slices=("synthetic",), heldout_fraction=fraction)
    train, heldout = read(tmp_path, "train"), read(tmp_path, "heldout")
    assert len(heldout) == round(200 * fraction) and len(train) + len(heldout) == 200
    assert not {r["id"] for r in train} & {r["id"] for r in heldout}
    held_numbers = sorted(int(r["file"][3:]) for r in heldout)
    assert held_numbers != list(range(len(heldout)))  # random, not the first files


def test_a_capped_builds_held_out_documents_are_held_out_uncapped_too(tmp_path, synthetic):
    build_corpus(tmp_path / "small", slices=("synthetic",), max_bytes=50_000)
    build_corpus(tmp_path / "full", slices=("synthetic",))
    small = {r["id"] for r in read(tmp_path / "small", "heldout")}
    assert small and small <= {r["id"] for r in read(tmp_path / "full", "heldout")}


def test_heldout_count():
    assert [heldout_count(n, 0.1) for n in (0, 1, 2, 9, 10, 14, 15, 200)] == [
        0, 0, 1, 1, 1, 1, 2, 20]
    assert heldout_count(100, 0.0) == 0 and heldout_count(3, 0.9) == 2


@needs_dpkg
def test_same_seed_gives_byte_identical_files(tmp_path, real_build):
    out, _ = real_build
    build_corpus(tmp_path, slices=("copyright", "code"), max_bytes=60_000, seed=0)
    for name in ("train.parquet", "heldout.parquet", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heldout.parquet", "manifest.json",
                                                          "train.parquet"]


# -- missing packages and bad settings ---------------------------------------------------
def test_a_missing_package_is_skipped_or_under_strict_one_line_error(tmp_path, synthetic):
    manifest = build_corpus(tmp_path, slices=("absent", "synthetic"))
    assert "curate-no-such-package not installed" in manifest.skipped["absent"]
    assert "apt-get install --no-install-recommends curate-no-such-package" in \
        json.loads((tmp_path / "manifest.json").read_text())["skipped"]["absent"]
    assert list(manifest.slices) == ["synthetic"]
    with pytest.raises(CurateError) as info:
        build_corpus(tmp_path / "strict", slices=("absent",), strict=True)
    message = str(info.value)
    assert "\n" not in message and "'absent'" in message
    assert "apt-get install --no-install-recommends curate-no-such-package" in message
    assert not (tmp_path / "strict").exists()


def test_cli_reports_errors_as_one_line(tmp_path, synthetic, capsys):
    from curate.cli import main

    with pytest.raises(SystemExit) as info:
        main(["corpus", "build", str(tmp_path), "--slices", "absent", "--strict"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: ") and "curate-no-such-package" in err[0]
    with pytest.raises(SystemExit):
        main(["corpus", "build", str(tmp_path), "--slices", "nonsense"])
    assert "unknown corpus slice 'nonsense'" in capsys.readouterr().err
    main(["corpus", "build", str(tmp_path), "--slices", "synthetic", "--max-mb", "0.01"])
    assert "synthetic: train 9 documents" in capsys.readouterr().out
    main(["corpus", "slices"])
    out = capsys.readouterr().out
    assert all(f"{name}: " in out for name in SLICES)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"slices": ("nope",)}, "unknown corpus slice 'nope'; known slices: prose,"),
    ({"slices": ()}, "no corpus slice given"),
    ({"max_bytes": 0}, "max_bytes must be positive"),
    ({"heldout_fraction": 1.0}, "heldout_fraction must be in [0, 1)"),
    ({"min_chars": -1}, "min_chars must be >= 0"),
])
def test_bad_settings_are_one_line_errors(tmp_path, kwargs, fragment):
    with pytest.raises(CurateError, match=re.escape(fragment)):
        build_corpus(tmp_path, **kwargs)


# -- readers -----------------------------------------------------------------------------
@needs_dpkg
@pytest.mark.parametrize("name", ["man", "changelog", "copyright"])
def test_files_of_every_package_are_listed_once_with_their_owner(name):
    paths = {p: pkg for reader in SLICES[name].readers for p, pkg in reader.paths(DPKG).items()}
    assert paths
    owners = DPKG.owners()
    for path, package in paths.items():
        assert DPKG.installed(package) and owners[path] == package
        assert not Path(path).parent.is_symlink()  # not through a linked /usr/share/doc dir
    if name == "man":
        assert all(p.startswith("/usr/share/man/man") for p in paths)


OPTIONAL = [(sl.name, i, r.package) for sl in SLICES.values() for i, r in enumerate(sl.readers)
            if r.package]


@pytest.mark.parametrize("slice_name, index, package", OPTIONAL,
                         ids=[f"{s}-{p}" for s, _, p in OPTIONAL])
def test_optional_package_readers(slice_name, index, package):
    if not DPKG.installed(package):
        pytest.skip(f"{package} is not installed (benchmarks/install_corpora.sh installs it)")
    reader = SLICES[slice_name].readers[index]
    docs = list(itertools.islice(reader.documents(DPKG), 3))
    assert len(docs) == 3
    for doc in docs:
        assert doc.package == package and doc.version == DPKG.version(package)
        assert len(doc.text) > 100 and "\ufffd" not in doc.text[:200]
        assert doc.file.split("#")[0] in DPKG.files(package)
        assert (doc.lang is not None) == (slice_name == "multilingual")


def test_html_to_text_keeps_blocks_and_drops_code_and_navigation():
    html = ("<html><head><title>T</title><style>p {}</style></head><body>"
            "<div id='banner'>Download</div><ul class='docnav'><li>Prev</li></ul>"
            "<h1>Title</h1><p>One   <b>two</b>\n three.</p><script>x()</script>"
            "<pre>  a\n    b</pre><p>caf&eacute;<br/>next</p></body></html>")
    assert html_to_text(html) == "Title\n\nOne two three.\n\n  a\n    b\n\ncafé\nnext\n"


def test_english_share():
    assert english_share("Hallo Welt\nls -l\n", {"ls -l"}) == pytest.approx(5 / 15)
    assert english_share("", set()) == 1.0


def test_wordnet_gloss_line():
    line = ("00002137 03 n 02 abstraction 0 abstract_entity 0 010 @ 00001740 n 0000 | "
            "a general concept formed by extracting common features  ")
    assert gloss_line(line) == ("abstraction, abstract entity: a general concept formed by "
                                "extracting common features")
    adjective = "00001740 00 a 01 able(a) 0 000 | having the means"
    assert gloss_line(adjective) == "able: having the means"
    assert gloss_line("  1 This software and database is being provided") is None


def test_dictd_entry_spans_skip_headers_and_shared_spans():
    index = "00-database-info\tA\tK\nabc\tK\tF\nAbc\tK\tF\nabd\tQ\tC\n"
    assert entry_spans(index) == [(10, 5), (16, 2)]


def test_glob_regex_and_distinct_files(tmp_path):
    match = glob_regex("/a/**/*.rst.gz").match
    assert match("/a/x.rst.gz") and match("/a/b/c/x.rst.gz") and not match("/a/x.rst")
    assert glob_regex("/m/man*/*").match("/m/man1/ls.1.gz")
    assert not glob_regex("/m/man*/*").match("/m/man1/sub/ls.1.gz")
    (tmp_path / "real").write_text("x")
    os.symlink("real", tmp_path / "alias")
    os.symlink("real", tmp_path / "b_link")
    (tmp_path / "c_only").write_text("y")
    os.symlink("c_only", tmp_path / "a_link_to_c")
    files = [str(tmp_path / n) for n in ("alias", "real", "b_link", "missing", "a_link_to_c")]
    assert distinct_files(files) == [str(tmp_path / "a_link_to_c"), str(tmp_path / "real")]


def test_importing_the_corpus_loads_no_training_experiment_or_cli():
    code = "import sys, curate.corpus; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    for layer in ("curate.train", "curate.experiment", "curate.cli", "torch"):
        assert not any(m == layer or m.startswith(layer + ".") for m in loaded), layer


def test_readers_of_every_slice_describe_themselves():
    for sl in SLICES.values():
        assert sl.readers and sl.summary
        for reader in sl.readers:
            assert reader.describe() and reader.license
        assert sl.packages == tuple(dict.fromkeys(r.package for r in sl.readers if r.package))


def test_files_reader_of_a_package_that_is_not_installed_lists_nothing():
    assert Files("/usr/share/doc/*", package="curate-no-such-package",
                 license="x").paths(DPKG) == {}


# -- the shipped sample -----------------------------------------------------------------
def test_shipped_sample_loads_as_builtin_text_corpus():
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    tables = {split: Source(f"builtin:text_corpus:split={split}").read_all()
              for split in ("train", "heldout")}
    assert Source("builtin:text_corpus").read_all().equals(tables["train"])
    assert set(manifest["slices"]) == set(SLICES)
    for split, table in tables.items():
        entry = manifest["files"][f"{split}.parquet"]
        assert entry["xxh3_128"] == file_hash(SAMPLE / f"{split}.parquet")  # not stale
        assert table.num_rows == entry["documents"]
        assert set(table.column_names) == set(SCHEMA.names)
        assert set(table["slice"].to_pylist()) == set(manifest["slices"])
    assert not set(tables["train"]["id"].to_pylist()) & set(tables["heldout"]["id"].to_pylist())
    rows = pa.concat_tables(tables.values()).select(["slice", "lang"]).to_pylist()
    assert all((r["lang"] is not None) == (r["slice"] == "multilingual") for r in rows)
    for report in manifest["slices"].values():
        assert 100_000 <= report["train"]["bytes"] + report["heldout"]["bytes"] <= 250_000
        assert report["heldout"]["documents"] >= 1
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 1_500_000


def test_unknown_split_of_the_sample_is_an_error():
    with pytest.raises(CurateError, match="no split 'test'"):
        Source("builtin:text_corpus:split=test")
    with pytest.raises(CurateError, match="has no split"):
        Source("builtin:quickstart:split=train")


def test_the_package_corpus_is_a_cached_builtin_dataset_with_per_slice_caps(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path))
    spec = "builtin:packages:slices=code;copyright,max_mb=code=0.1;copyright=0.05"
    train = Source(spec).read_all()
    sizes = {r["slice"]: r["bytes"] for r in
             train.group_by("slice").aggregate([("bytes", "sum")]).rename_columns(
                 ["slice", "bytes"]).to_pylist()}
    assert 0 < sizes["copyright"] <= 50_000 < sizes["code"] <= 100_000
    heldout = Source(spec + ",split=heldout").read_all()
    assert heldout.num_rows and not set(heldout.column("id").to_pylist()) & set(
        train.column("id").to_pylist())
    builds = list((tmp_path / "corpus").iterdir())
    assert len(builds) == 1  # both splits came from one cached build
    Source(spec).read_all()
    assert list((tmp_path / "corpus").iterdir()) == builds
    with pytest.raises(CurateError, match="no split 'test'"):
        Source(spec + ",split=test").read_all()
    with pytest.raises(CurateError, match="max_bytes names slices not built"):
        Source("builtin:packages:slices=code,max_mb=prose=1").read_all()
