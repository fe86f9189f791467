"""Killing a run stops it and every process it started, and leaves no partial output.

Each test starts ``curate score -j 2`` (or a parent running ``map_processes``) as a
subprocess in its own session, waits until its workers exist, signals it, and checks
within a bounded wait that the workers are gone, the exit status and message are right
and the output folder holds neither a score table nor a temporary file. Every wait is
bounded and every process started is killed in a ``finally``.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROOT = Path(__file__).resolve().parent.parent
STARTUP = 180  # seconds a loaded machine may take to start the workers (torch imports)
GONE = 10  # seconds within which a signal must have taken effect

PROSE = ("The committee met on Tuesday to discuss the budget for the coming year, and the "
         "members agreed that the library should have a larger share of the funds. ")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Enough documents that ``gopher_repetition -j 2 --batch-size 50`` runs for many
    seconds: each test stops it long before the end."""
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(40_000):
            text = f"Part {i}. " + PROSE * (i % 5 + 3)
            fh.write(json.dumps({"id": f"doc{i}", "text": text}) + "\n")
    return path


def _start(tmp_path, argv):
    """Start ``argv`` in a new session, stdout and stderr to files (never pipes, which
    an orphaned worker would hold open)."""
    stderr = open(tmp_path / "stderr.txt", "w+", encoding="utf-8")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT,
                            start_new_session=True)
    proc.stderr_file = stderr
    return proc


def _stderr(proc) -> str:
    proc.stderr_file.seek(0)
    return proc.stderr_file.read()


def _descendants(proc) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for(proc, ready, what: str) -> None:
    deadline = time.monotonic() + STARTUP
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"exited ({proc.returncode}) before {what}:\n{_stderr(proc)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {STARTUP} s:\n{_stderr(proc)}")
        time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _still_running(processes, timeout: float = GONE) -> list[int]:
    """The pids of ``processes`` still running after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p.pid for p in processes if _running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _kill_all(proc, processes) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the session it was started in
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=GONE)
    except subprocess.TimeoutExpired:
        pass
    proc.stderr_file.close()


def _signal(proc, signum, group: bool) -> None:
    if group:  # as a terminal sends Ctrl-C: to every process of the foreground group
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)


def _score(corpus, out, *extra):
    return [sys.executable, "-m", "curate.cli", "score", str(corpus), "-s", "gopher_repetition",
            "-j", "2", "--batch-size", "50", "-o", str(out), *extra]


def _leftovers(out: Path) -> list[str]:
    """What a stopped run left that a resumed run could not use: temporary files, or a
    table marked complete (committed shards, their commits, the plan and the lock are
    kept for the resume)."""
    if not out.exists():
        return []
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.name.endswith(".tmp") or p.name == "_table.json")


@pytest.mark.parametrize("signum, group, status", [
    (signal.SIGINT, False, 130),
    (signal.SIGINT, True, 130),
    (signal.SIGTERM, False, 143),
    (signal.SIGKILL, False, -signal.SIGKILL),
], ids=["sigint", "ctrl-c-to-group", "sigterm", "sigkill"])
def test_a_signal_stops_score_and_all_its_workers(tmp_path, corpus, signum, group, status):
    out = tmp_path / "scores"
    proc = _start(tmp_path, _score(corpus, out))
    workers = []
    try:
        _wait_for(proc, lambda: len(_descendants(proc)) >= 2, "two workers")
        time.sleep(0.3)  # let them take batches
        workers = _descendants(proc)
        _signal(proc, signum, group)
        try:
            proc.wait(timeout=GONE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GONE} s after {signum!r}")
        assert proc.returncode == status, _stderr(proc)
        assert _still_running(workers) == [], f"workers outlived the run after {signum!r}"
        if signum != signal.SIGKILL:
            assert _stderr(proc).splitlines() == ["aborted"]
        assert _leftovers(out) == []
    finally:
        _kill_all(proc, workers)


# os.replace is the last step of every atomic write: sleeping there holds the run at the
# moment its temporary file is complete and not yet renamed.
_SLOW_RENAME = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path

    marker = Path(sys.argv.pop(1))
    replace = os.replace

    def slow_replace(src, dst, *args, **kwargs):
        marker.write_text(str(src))
        time.sleep(300)
        return replace(src, dst, *args, **kwargs)

    os.replace = slow_replace
    from curate.cli import main

    main(sys.argv[1:])
""")


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["sigterm", "sigint"])
def test_a_signal_while_writing_removes_the_temporary_file(tmp_path, docs_file, signum,
                                                            status):
    script = tmp_path / "slow_rename.py"
    script.write_text(_SLOW_RENAME)
    marker, out = tmp_path / "renaming", tmp_path / "scores"
    argv = _score(docs_file, out)
    proc = _start(tmp_path, [sys.executable, str(script), str(marker), *argv[3:]])
    try:
        _wait_for(proc, marker.exists, "output being written")
        temporary = Path(marker.read_text())
        assert out in temporary.parents and temporary.exists()  # complete, not renamed
        proc.send_signal(signum)
        try:
            proc.wait(timeout=GONE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GONE} s after {signum!r}")
        assert proc.returncode == status, _stderr(proc)
        assert _stderr(proc).splitlines() == ["aborted"]
        assert _leftovers(out) == []
    finally:
        _kill_all(proc, [])


_MAP_PROCESSES = textwrap.dedent("""
    import faulthandler
    import signal
    import sys

    if __name__ == "__main__":  # spawned children import this module again
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # where a stuck run waits
        # Ctrl-C raises KeyboardInterrupt, as in a Python started from a terminal (a test
        # run started in the background inherits SIGINT ignored, and so would this).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, sys.argv[1])
        import sleepy_job
        from curate.train.seeds import map_processes

        markers = [f"{sys.argv[1]}/started-{i}" for i in range(2)]
        for _ in map_processes(sleepy_job.job, markers, workers=2):
            pass
""")

_SLEEPY_JOB = textwrap.dedent("""
    import time
    from pathlib import Path

    def job(marker):
        Path(marker).touch()
        time.sleep(300)
""")


@pytest.mark.parametrize("signum, group", [(signal.SIGKILL, False), (signal.SIGINT, True)],
                         ids=["sigkill-parent", "ctrl-c-to-group"])
def test_map_processes_children_die_with_their_parent(tmp_path, signum, group):
    (tmp_path / "sleepy_job.py").write_text(_SLEEPY_JOB)
    script = tmp_path / "parent.py"
    script.write_text(_MAP_PROCESSES)
    proc = _start(tmp_path, [sys.executable, str(script), str(tmp_path)])
    children = []
    try:
        _wait_for(proc, lambda: all((tmp_path / f"started-{i}").exists() for i in range(2)),
                  "both jobs running")
        children = _descendants(proc)  # the two workers (and a resource tracker)
        assert len(children) >= 2
        _signal(proc, signum, group)
        try:
            proc.wait(timeout=GONE)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(1)
            pytest.fail(f"parent still running {GONE} s after {signum!r}; its threads:\n"
                        f"{_stderr(proc)}")
        assert _still_running(children) == [], f"children outlived the parent ({signum!r})"
    finally:
        _kill_all(proc, children)


def _sleep_or_fail(batch):
    folder, n = batch
    (Path(folder) / f"worker-{os.getpid()}").touch()
    if n == 0:
        raise ValueError("bad batch")
    time.sleep(60)
    return n


def test_a_failed_map_stops_the_batches_in_flight(tmp_path):
    """An error in the first batch does not wait for the batches in flight (they would
    take a minute or two)."""
    from curate.executor import LocalExecutor

    started = time.monotonic()
    try:
        with pytest.raises(ValueError, match="bad batch"):
            list(LocalExecutor(2).map_batches(_sleep_or_fail,
                                              [(str(tmp_path), n) for n in range(4)]))
        assert time.monotonic() - started < 50
    finally:
        pids = [int(path.name.split("-")[1]) for path in tmp_path.glob("worker-*")]
        workers = []
        for pid in pids:
            try:
                workers.append(psutil.Process(pid))
            except psutil.NoSuchProcess:  # stopped and reaped
                pass
        alive = _still_running(workers)
        for process in workers:
            if process.pid in alive:
                process.kill()
    assert pids and alive == []
