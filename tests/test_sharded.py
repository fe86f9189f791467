"""Sharded, resumable scoring: the same tables whatever the shards and the executor, a
killed run resumed, the run lock, and deduplication across shards."""

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.core.errors import CurateError
from curate.executor import LocalExecutor
from curate.io import Source
from curate.scores import load_scores, merge_scores, read_sharded
from curate.sharded import score_to_folder
from tests.conftest import write_jsonl

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
QUICKSTART = "builtin:quickstart"
RULES = ["gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A fastText classifier and a reference language model fitted on the shipped examples."""
    from curate.core.registry import make_scorer
    from curate.io import Source

    folder = tmp_path_factory.mktemp("models")

    def texts(spec):
        return Source(spec).read_all(["text"]).column("text").to_pylist()

    good, bad = texts("builtin:quickstart-good"), texts("builtin:quickstart-bad")
    make_scorer("fasttext_quality").fit(good, bad, epoch=5, dim=16, bucket=50_000,
                                        seed=0).save(folder / "q.bin")
    make_scorer("perplexity").fit(good[:300], order=2).save(folder / "lm.npz")
    return folder


def every_scorer(models):
    from curate.core.registry import make_scorer

    return [make_scorer(n) for n in [*RULES, "exact_dup", "minhash", "langid"]] + [
        make_scorer(f"fasttext_quality:model={models / 'q.bin'}"),
        make_scorer(f"perplexity:model={models / 'lm.npz'}")]


def shard_bytes(folder: Path) -> dict:
    """Every shard file and commit of a score folder, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".parquet", ".json") and p.name != "_plan.json"}


def test_one_two_and_seven_shards_give_the_same_tables(tmp_path, models):
    scorers = every_scorer(models)
    tables, merged = {}, {}
    for shards, rows in ((1, 2000), (2, 1000), (7, 286)):
        out = tmp_path / str(shards)
        report = score_to_folder(scorers, Source(QUICKSTART), out, shard_rows=rows)
        assert report["shards"] == shards and report["rows"] == 2000
        assert len(list((out / "minhash").glob("0*.parquet"))) == shards
        tables[shards] = load_scores(out)
        merged[shards] = merge_scores(out / "minhash", tmp_path / f"minhash{shards}.parquet")
    assert set(tables[1]) == {s.name for s in scorers}
    for name, table in tables[1].items():
        assert tables[2][name].equals(table), name
        assert tables[7][name].equals(table), name
    # Deduplication found clusters that cross shard boundaries, and agrees anyway.
    dup = tables[7]["exact_dup"]
    assert pa.compute.sum(dup.column("exact_dup_duplicate")).as_py() > 0
    cross = [(i, c) for i, c in enumerate(dup.column("exact_dup_cluster").to_pylist())
             if c // 286 != i // 286]
    assert cross, "no cluster crosses a shard boundary: the test would prove nothing"
    assert merged[1].read_bytes() == merged[7].read_bytes()


def test_the_run_resumes_from_committed_shards_and_recomputes_a_damaged_one(tmp_path):
    from curate.core.registry import make_scorer

    scorers = [make_scorer("gopher_quality"), make_scorer("minhash")]
    out = tmp_path / "scores"
    first = score_to_folder(scorers, Source(QUICKSTART), out, shard_rows=500)
    assert first["computed"] == {"gopher_quality": 4, "minhash": 4}
    before = shard_bytes(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    (out / "gopher_quality" / "00002.parquet").write_bytes(b"damaged")
    (out / "minhash" / "_parts" / ".00001.parquet.x1.tmp").write_bytes(b"stray")
    again = score_to_folder(scorers, Source(QUICKSTART), out, shard_rows=500)
    assert again["computed"] == {"gopher_quality": 1, "minhash": 0}
    assert shard_bytes(out) == before
    assert not list(out.rglob("*.tmp"))
    untouched = [p for p in stamps if p.name != "00002.parquet" and "gopher" in str(p)]
    assert all(p.stat().st_mtime_ns == stamps[p] for p in untouched)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    from curate.scores import RunLock

    with RunLock(tmp_path), pytest.raises(CurateError, match="another run is writing"):
        score_to_folder([], Source(QUICKSTART), tmp_path)


def test_an_incomplete_folder_is_not_read_as_scores(tmp_path):
    from curate.core.registry import make_scorer

    out = tmp_path / "scores"
    score_to_folder([make_scorer("gopher_quality")], Source(QUICKSTART), out, shard_rows=700)
    (out / "gopher_quality" / "_table.json").unlink()
    with pytest.raises(CurateError, match="incomplete .*run it again to resume"):
        load_scores(out)
    with pytest.raises(CurateError, match="this table is sharded"):
        load_scores(out / "gopher_quality.parquet")


def test_ids_are_checked_unique_across_shards_and_positions_stay_global(tmp_path):
    from curate.core.registry import make_scorer

    rows = [{"id": f"d{i}", "text": f"text number {i}"} for i in range(10)]
    write_jsonl(tmp_path / "a.jsonl", rows[:6])
    write_jsonl(tmp_path / "b.jsonl", rows[4:])
    with pytest.raises(CurateError, match=r"duplicate id 'd4' \(in .*a.jsonl rows 3-5 and in "
                                          r".*b.jsonl rows 0-2\)"):
        score_to_folder([make_scorer("exact_dup")], Source(str(tmp_path / "*.jsonl")),
                        tmp_path / "out", shard_rows=3)
    # Without ids, ids are positions in the whole source, whichever shard reads them.
    (tmp_path / "c").mkdir()
    write_jsonl(tmp_path / "c" / "1.jsonl", [{"text": "x"}] * 5)
    write_jsonl(tmp_path / "c" / "2.jsonl", [{"text": "x"}] * 4)
    score_to_folder([make_scorer("exact_dup")], Source(str(tmp_path / "c")),
                    tmp_path / "out2", shard_rows=2)
    table = read_sharded(tmp_path / "out2" / "exact_dup")
    assert table.column("id").to_pylist() == list(range(9))
    assert table.column("exact_dup_cluster").to_pylist() == [0] * 9


def test_a_skipped_shard_and_the_skip_report_cover_the_whole_source(tmp_path):
    from curate.core.registry import make_scorer

    rows = [{"id": f"d{i}", "text": "y" * (50 if i < 3 else 5)} for i in range(6)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    lines = []
    source = Source(str(tmp_path / "d.jsonl"), max_doc_bytes=20, on_oversize="skip",
                    report=lines.append)
    report = score_to_folder([make_scorer("exact_dup")], source, tmp_path / "out",
                             shard_rows=3)
    assert report["rows"] == 3 and report["skipped"] == 3
    assert lines == [source.skipped_report()] and "d.jsonl:1" in lines[0]
    assert read_sharded(tmp_path / "out" / "exact_dup").column("id").to_pylist() == \
        ["d3", "d4", "d5"]


def test_local_processes_write_what_one_process_writes(tmp_path):
    from curate.core.registry import make_scorer

    scorers = [make_scorer(n) for n in [*RULES, "minhash"]]
    score_to_folder(scorers, Source(QUICKSTART), tmp_path / "one", shard_rows=400)
    score_to_folder(scorers, Source(QUICKSTART), tmp_path / "two", shard_rows=400,
                    executor=LocalExecutor(2))
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "two")


# -- killed runs ---------------------------------------------------------------------------
def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(ROOT)])}


def _score_cmd(out: Path, *extra: str) -> list[str]:
    return [str(Path(sys.executable).parent / "curate"), "--plugin", "slow_scorer", "score",
            QUICKSTART, "-s", "slow_length:delay=0.4", "-s", "exact_dup", "--shard-rows",
            "250", "--batch-size", "250", "-o", str(out), *extra]


def _kill_after_first_commit(cmd: list[str], out: Path) -> None:
    """Start ``cmd``, SIGKILL its process group once a shard of slow_length is
    committed; assert the run was not finished."""
    proc = subprocess.Popen(cmd, env=_env(), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((out / "slow_length").glob("0*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no shard was committed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list((out / "slow_length").glob("0*.json"))
    assert 0 < len(done) < 8 and not (out / "slow_length" / "_table.json").exists()


def _resume_and_compare(cmd: list[str], out: Path, reference: Path) -> None:
    committed = [*(out / "slow_length").glob("0*.json"),
                 *(out / "exact_dup" / "_parts").glob("0*.json")]
    stamps = {p: p.stat().st_mtime_ns for p in committed}
    finished = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr
    # Only the (scorer, shard) pairs not committed were scored again: 2 scorers x 8 shards.
    assert all(p.stat().st_mtime_ns == stamps[p] for p in stamps)
    assert f"8 shards: {16 - len(committed)} scored, {len(committed)} already done" in \
        finished.stdout
    assert shard_bytes(out) == shard_bytes(reference)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the slow scorer and exact_dup."""
    out = tmp_path_factory.mktemp("reference") / "scores"
    run = subprocess.run(_score_cmd(out), env=_env(), cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return out


def test_a_local_run_killed_with_sigkill_resumes_to_the_same_tables(tmp_path, reference):
    out = tmp_path / "scores"
    cmd = _score_cmd(out, "-j", "2")
    _kill_after_first_commit(cmd, out)
    _resume_and_compare(cmd, out, reference)


def test_a_ray_driver_killed_with_sigkill_resumes_to_the_same_tables(tmp_path, reference,
                                                                     ray_address):
    out = tmp_path / "scores"
    cmd = _score_cmd(out, "--executor", "ray", "--address", ray_address)
    _kill_after_first_commit(cmd, out)
    _resume_and_compare(cmd, out, reference)


# -- Ray -------------------------------------------------------------------------------------
def test_ray_writes_the_bytes_the_local_executor_writes(tmp_path, models, ray_address):
    from curate.ray_executor import RayExecutor

    scorers = every_scorer(models)
    score_to_folder(scorers, Source(QUICKSTART), tmp_path / "local", shard_rows=700)
    with RayExecutor(address=ray_address) as executor:
        report = score_to_folder(scorers, Source(QUICKSTART), tmp_path / "ray",
                                 shard_rows=700, executor=executor)
    assert report["shards"] == 3
    assert shard_bytes(tmp_path / "local") == shard_bytes(tmp_path / "ray")


def test_a_ray_worker_killed_mid_shard_is_replaced_and_its_shard_retried(tmp_path,
                                                                         ray_address,
                                                                         monkeypatch):
    import psutil

    from curate.core.registry import SCORERS, load_plugins, make_scorer
    from curate.ray_executor import RayExecutor

    monkeypatch.syspath_prepend(str(PLUGINS))
    SCORERS.names()  # loads curate's own scorers, so the copy below holds them
    monkeypatch.setattr(SCORERS, "_items", dict(SCORERS._items))  # forget the plugin after
    monkeypatch.delitem(sys.modules, "slow_scorer", raising=False)  # and import it afresh
    load_plugins(["slow_scorer"])
    scorers = [make_scorer("slow_length:delay=0.6")]
    killed = []

    def kill_one_worker():
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for proc in psutil.process_iter(["cmdline"]):
                if any("_Worker" in part for part in (proc.info["cmdline"] or [])):
                    proc.kill()
                    killed.append(proc.pid)
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=kill_one_worker)
    thread.start()
    with RayExecutor(address=ray_address) as executor:
        score_to_folder(scorers, Source(QUICKSTART), tmp_path / "ray", shard_rows=250,
                        batch_size=250, executor=executor)
    thread.join()
    assert killed, "no Ray worker was found to kill"
    score_to_folder(scorers, Source(QUICKSTART), tmp_path / "local", shard_rows=250,
                    batch_size=250)
    assert shard_bytes(tmp_path / "ray") == shard_bytes(tmp_path / "local")


def test_a_bad_document_stops_a_ray_run_with_its_one_line_error(tmp_path, ray_address):
    from curate.core.registry import make_scorer
    from curate.ray_executor import RayExecutor

    (tmp_path / "d.jsonl").write_text('{"id": 1, "text": "fine"}\n{"id": 2, "text": 5}\n')
    with RayExecutor(address=ray_address) as executor, \
            pytest.raises(CurateError, match=r"d.jsonl:2: column 'text' holds an integer"):
        score_to_folder([make_scorer("gopher_quality")], Source(str(tmp_path / "d.jsonl")),
                        tmp_path / "out", executor=executor)


def test_a_failing_worker_setup_is_reported_as_itself(ray_address, monkeypatch):
    from curate.ray_executor import RayExecutor

    monkeypatch.syspath_prepend(str(PLUGINS))
    from slow_scorer import failing_setup

    with RayExecutor(address=ray_address, retries=0) as executor, \
            pytest.raises(FileNotFoundError, match="no such model file: model.bin"):
        list(executor.map_unordered(math.factorial, [1, 2], setup=failing_setup))


def test_seeds_and_cells_run_as_ray_tasks_while_ray_is_the_executor(ray_address,
                                                                      monkeypatch):
    from curate.ray_executor import RayExecutor
    from curate.train.seeds import map_processes

    monkeypatch.syspath_prepend(str(PLUGINS))
    from slow_scorer import process_id

    jobs = [3, 5, 7, 9]
    local = list(map_processes(math.factorial, jobs, 1))
    with RayExecutor(address=ray_address):
        remote = list(map_processes(math.factorial, jobs, 1))
        where = set(map_processes(process_id, jobs, 1))
    assert remote == local == [6, 120, 5040, 362880]
    assert os.getpid() not in where
    assert set(map_processes(process_id, jobs, 1)) == {os.getpid()}  # local again


def test_the_local_executor_needs_no_ray():
    code = ("import sys; import curate.cli, curate.sharded, curate.api; "
            "assert 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_plan_and_commit_files_record_what_they_cover(tmp_path):
    from curate.core.registry import make_scorer

    out = tmp_path / "scores"
    score_to_folder([make_scorer("gopher_quality")], Source(QUICKSTART), out, shard_rows=900)
    plan = json.loads((out / "_plan.json").read_text())
    assert [(s["start"], s["stop"], s["position"]) for s in plan["shards"]] == \
        [(0, 900, 0), (900, 1800, 900), (1800, 2000, 1800)]
    commit = json.loads((out / "gopher_quality" / "00001.json").read_text())
    assert commit["rows"] == 900 and len(commit["sha"]) == 32
    assert pq.read_table(out / "gopher_quality" / "00001.parquet").num_rows == 900
