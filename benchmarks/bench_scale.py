"""Sharded scoring at scale: the local executor and Ray side by side, on real text.

Corpus. Every document of the parity corpus (``benchmarks/data/parity_corpus.jsonl.gz``,
built by ``benchmarks/build_corpus.py`` from Debian packages and files of this machine)
is cut at its blank lines into paragraphs; paragraphs of at least 40 characters are
kept (natural repeats included: boilerplate lines of the HTML docs, repeated verses),
shuffled with ``random.Random(seed)``, and the first ``--docs`` (default 200,000) become
the documents, each with the id ``<parity id>#<paragraph number>``. They are written as
a sharded corpus of 8 Parquet files (``corpus/full/``), as one file (``corpus/single/``)
and, for the memory comparison, the first tenth as 4 files (``corpus/small/``).

Models. ``fasttext_quality`` is fitted on ``builtin:quickstart-good`` against
``builtin:quickstart-bad`` (``epoch=5, dim=16, bucket=50_000, seed=0``), ``perplexity``
(``order=3``) on ``builtin:quickstart-good``.

Measurements (each a part of the JSON; ``--only`` runs some of them):

1. ``identical``: the nine scorers (the four rule sets, exact_dup, minhash, langid,
   fasttext_quality, perplexity) over ``corpus/full`` in 16 shards, once in this process
   (``LocalExecutor(1)``) and once on a local Ray instance (3 CPUs, 2 actors); every
   shard file and commit (``.parquet``, ``.json``; not ``_plan.json``) is compared byte
   for byte. Then ``corpus/single`` in 1, 2 and 7 shards (1 in this process, 2 and 7 on
   ``LocalExecutor(2)``): the tables read with ``load_scores`` must be ``Table.equals``
   to each other and to the 16-shard tables.
2. ``throughput``: the four rule sets over ``corpus/full`` (16 shards) on a local Ray
   instance started by ``RayExecutor(local_cpus=3)``, so that the pool rule (CPUs - 1)
   allows 2 actors on this 2-core machine, with ``RayExecutor(workers=1)`` and
   ``workers=2`` (wall clock, actor start included, Ray's own start not). Before each
   attempt the script waits (up to ``--load-wait`` s) for the 1-minute load average to
   fall below ``--max-load`` and for the CPUs to be under 20 % busy over 3 s (the load
   average lags behind a job that just started); an attempt under a higher load, or
   below the 1.7x target, is repeated up to ``--attempts`` times. All attempts are
   reported, with the loads before and after each run, the CPU seconds other jobs used
   meanwhile, the actors' CPU seconds, and a calibration (a pure-Python loop in 1, then
   in 2 processes) before and after. An in-process run (``LocalExecutor(1)``) is the
   single-core baseline.
3. ``memory``: the four rule sets, then exact_dup + minhash, over N and 10N documents
   (``corpus/small``, ``corpus/full``) with the same shard size, in a subprocess on a
   local Ray instance (3 CPUs, 2 actors) and, as the baseline, on ``LocalExecutor(2)``.
   The summed RSS (and PSS) of the subprocess's whole process tree (driver, actors or
   pool workers, and Ray's own processes: GCS, raylet, agents, idle workers) is sampled
   with psutil every 0.1 s; the peak and the 10N / N ratio are reported.
4. ``minhash``: ``bench_minhash.py``'s corpus (real documents with planted near
   duplicates, exact shingle Jaccard >= 0.8) scored with MinHashDup in memory
   (``score_batch`` + ``finalize``, as in bench_minhash.py) and through
   ``score_to_folder`` in 1 and in 8 shards; precision and recall by bench_minhash's
   rule must not change, nor the clusters.
5. ``cluster``: a two-node Ray cluster on this machine (``ray start --head
   --num-cpus=1`` and ``ray start --address=127.0.0.1:PORT --num-cpus=2``), checked with
   ``ray.nodes()``; ``curate score ... --executor ray --address 127.0.0.1:PORT`` runs as
   a subprocess over ``corpus/small`` with the nine scorers and its tables and bytes are
   compared with a local ``curate score`` run; then ``ray stop --force`` and a check that
   no Ray process is left. ``ray stop --force`` kills every Ray process of the machine,
   so the whole sequence runs in a PID namespace of its own (``unshare --pid --fork
   --mount-proc``, where available), where it sees only this cluster. This Ray version
   turns token authentication on for ``ray start --head`` when a token exists
   (``~/.ray/auth_token``, which any local ``ray.init()`` writes) but not for a client
   given an explicit address, so every command runs with ``RAY_AUTH_MODE=token``; one
   probe without it records what a user then sees.

Code. A full run takes about half an hour and others edit the working tree meanwhile, so
the script first copies curate/, scorers/ and filters/ to ``work/scale/snapshot/`` and
runs again from there (``PYTHONPATH`` and the working directory, which Ray workers put
first on ``sys.path``); the JSON records git HEAD, the files modified at the start, the
copy's hash and where a Ray worker imported curate from. ``--no-snapshot`` skips this.

Every Ray process the script starts has ``RAY_TMPDIR`` set to a folder of its own; on
exit (also on an error) Ray is shut down and any process still carrying that
``RAY_TMPDIR`` is killed by its pid and listed in the JSON.

Usage::

    python benchmarks/bench_scale.py            # full run, benchmarks/results/scale.json
    python benchmarks/bench_scale.py --quick    # 20,000 documents, scale_quick.json
    python benchmarks/bench_scale.py --only memory --only minhash
    python benchmarks/bench_scale.py --only throughput --merge-into scale  # re-measure a
                                    # part into scale.json; the old figures stay there,
                                    # under "superseded"

Scratch files go to ``benchmarks/work/scale/`` (git-ignored).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse  # noqa: E402
import collections  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
#: The copy of curate/, scorers/ and filters/ this run imports (see ``snapshot``).
SNAPSHOT = os.environ.get("CURATE_SCALE_SNAPSHOT")
sys.path[:0] = [SNAPSHOT or str(ROOT), str(BENCH)]

from common import write_result  # noqa: E402

WORK = BENCH / "work" / "scale"
PARITY = BENCH / "data" / "parity_corpus.jsonl.gz"
RULES = ["gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"]
DEDUP = ["exact_dup", "minhash"]
MIN_CHARS = 40
FILES = 8
PARTS = ("throughput", "identical", "memory", "minhash", "cluster")
SPEEDUP_TARGET = 1.7


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- processes ------------------------------------------------------------------------------
def ray_tmpdir() -> str:
    """This run's RAY_TMPDIR (short: Ray puts Unix sockets under it)."""
    if "CURATE_SCALE_RAY_TMPDIR" not in os.environ:
        os.environ["CURATE_SCALE_RAY_TMPDIR"] = tempfile.mkdtemp(prefix="curate_scale_",
                                                                 dir="/tmp")
    os.environ["RAY_TMPDIR"] = os.environ["CURATE_SCALE_RAY_TMPDIR"]
    return os.environ["RAY_TMPDIR"]


def our_ray_processes() -> list[psutil.Process]:
    """Live processes (not this one) that carry this run's RAY_TMPDIR: every process of
    a Ray instance or cluster this script started, idle workers included."""
    mine = os.environ.get("CURATE_SCALE_RAY_TMPDIR")
    if not mine:
        return []
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get("CURATE_SCALE_RAY_TMPDIR") == mine and \
                    _is_ray(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _is_ray(cmdline: list[str]) -> bool:
    text = " ".join(cmdline)
    return "ray::" in text or "/ray/" in text or text.startswith("ray ")


def describe(procs) -> list[dict]:
    out = []
    for p in procs:
        try:
            out.append({"pid": p.pid, "name": p.name(), "cmdline": " ".join(p.cmdline())[:160]})
        except psutil.Error:
            pass
    return out


def leftovers(wait: float = 10.0) -> list[dict]:
    """Ray processes of this run still alive after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        procs = our_ray_processes()
        if not procs or time.monotonic() > deadline:
            return describe(procs)
        time.sleep(0.5)


def kill_ours() -> list[dict]:
    """Kill, by pid, the Ray processes of this run that are still alive."""
    procs = our_ray_processes()
    killed = describe(procs)
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)
    return killed


def classify(proc: psutil.Process, root: int) -> str:
    try:
        if proc.pid == root:
            return "driver"
        text = " ".join(proc.cmdline())
    except psutil.Error:
        return "gone"
    if "_Worker" in text:
        return "ray_actors"
    if "ray::IDLE" in text or "default_worker.py" in text:
        return "ray_idle_workers"
    if _is_ray(proc.cmdline()):
        return "ray_system"
    return "pool_workers"


class TreeSampler(threading.Thread):
    """Peak summed RSS and PSS of a process and all its descendants, every ``interval`` s."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = self.samples = self.max_processes = 0
        self.at_peak: dict = {}
        self.kinds: set = set()
        self.done = threading.Event()

    def run(self):
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            rss = pss = 0
            by_kind: dict = collections.defaultdict(lambda: [0, 0])
            for p in procs:
                try:
                    info = p.memory_full_info()
                except psutil.Error:
                    continue
                rss += info.rss
                pss += getattr(info, "pss", 0)
                kind = classify(p, self.pid)
                by_kind[kind][0] += 1
                by_kind[kind][1] += info.rss
            self.samples += 1
            self.max_processes = max(self.max_processes, len(procs))
            self.kinds.update(by_kind)
            self.peak_pss = max(self.peak_pss, pss)
            if rss > self.peak_rss:
                self.peak_rss = rss
                self.at_peak = {k: {"processes": n, "rss_mb": round(b / 1e6, 1)}
                                for k, (n, b) in sorted(by_kind.items())}
            self.done.wait(self.interval)


class ActorWatch(threading.Thread):
    """The Ray actor processes (``_Worker``) seen while a run goes on: their CPU seconds
    and the raylet (node) each ran under."""

    def __init__(self, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval = interval
        self.cpu: dict[int, float] = {}
        self.node: dict[int, str] = {}
        self.max_alive = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            alive = 0
            for proc in psutil.process_iter(["pid", "cmdline"]):
                cmd = proc.info["cmdline"] or []
                if not any("_Worker" in part for part in cmd):
                    continue
                try:
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                    if proc.pid not in self.node:
                        parent = " ".join(proc.parent().cmdline())
                        found = re.search(r"--node_id=(\w+)", parent)
                        self.node[proc.pid] = found.group(1)[:12] if found else "?"
                    alive += 1
                except psutil.Error:
                    pass
            self.max_alive = max(self.max_alive, alive)
            self.done.wait(self.interval)

    def stop(self) -> dict:
        self.done.set()
        self.join()
        per_node = collections.Counter(self.node.values())
        return {"actor_processes_seen": len(self.cpu), "max_alive_at_once": self.max_alive,
                "actor_cpu_seconds": sorted(round(c, 1) for c in self.cpu.values()),
                "actors_per_node": dict(per_node)}


def snapshot_and_reexec() -> None:
    """Copy curate/, scorers/ and filters/ to ``work/scale/snapshot/`` and run again from
    it (PYTHONPATH and working directory, inherited by every subprocess, Ray worker and
    cluster node), so that a long run measures one version of the code even while the
    working tree is edited."""
    import hashlib

    target = WORK / "snapshot"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    digest = hashlib.sha256()
    for package in ("curate", "scorers", "filters"):
        shutil.copytree(ROOT / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in sorted(target.rglob("*.py")):
        digest.update(str(path.relative_to(target)).encode() + b"\0" + path.read_bytes())
    env = {**os.environ, "CURATE_SCALE_SNAPSHOT": str(target),
           "CURATE_SCALE_SNAPSHOT_SHA": digest.hexdigest(),
           "PYTHONPATH": os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH"))
                                         if p)}
    os.chdir(target)  # Ray workers put their driver's working directory first on sys.path
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]], env)


def lock_work_folder() -> None:
    """One run at a time: runs share the corpus, the snapshot and the output folders. The
    lock is held until the process (after its exec) ends."""
    import fcntl

    WORK.mkdir(parents=True, exist_ok=True)
    fd = os.open(WORK / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another bench_scale.py run is using {WORK}; wait for it to finish")
    os.set_inheritable(fd, True)


def code_info() -> dict:
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    import curate
    import scorers

    return {"git_head": git("rev-parse", "HEAD"),
            "modified_files_at_start": git("status", "--porcelain", "--untracked-files=no")
            .splitlines(),
            "snapshot": str(Path(SNAPSHOT).relative_to(ROOT)) if SNAPSHOT else None,
            "snapshot_py_sha256": os.environ.get("CURATE_SCALE_SNAPSHOT_SHA"),
            "imported": {"curate": str(Path(curate.__file__).parent.relative_to(ROOT)),
                         "scorers": str(Path(scorers.__file__).parent.relative_to(ROOT))},
            "why": "the working tree is edited by others while the benchmark runs; the run "
                   "imports a copy taken when it started"}


def worker_imports() -> dict:
    """Where a Ray worker of the running instance imports curate and scorers from."""
    import ray

    def where():
        import curate
        import scorers

        return {"curate": curate.__file__, "scorers": scorers.__file__}

    return ray.get(ray.remote(num_cpus=1)(where).remote())


# -- corpus and models ----------------------------------------------------------------------
def paragraphs(parity: Path) -> list[tuple[str, str, str]]:
    """(id, text, source) of every paragraph of >= MIN_CHARS characters, in corpus order."""
    out = []
    with gzip.open(parity, "rt", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            for k, para in enumerate(re.split(r"\n\s*\n", doc["text"])):
                para = para.strip()
                if len(para) >= MIN_CHARS:
                    out.append((f"{doc['id']}#{k}", para, doc["source"]))
    return out


def write_files(rows: list[tuple], folder: Path, files: int, row_group: int) -> list[Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    per = math.ceil(len(rows) / files)
    paths = []
    for i in range(files):
        part = rows[i * per:(i + 1) * per]
        table = pa.table({"id": [r[0] for r in part], "text": [r[1] for r in part],
                          "source": [r[2] for r in part]})
        path = folder / f"docs-{i:04d}.parquet"
        pq.write_table(table, path, row_group_size=row_group)
        paths.append(path)
    return paths


def build_corpus(args) -> dict:
    if not PARITY.is_file():
        sys.exit(f"{PARITY} is missing: build it with python benchmarks/build_corpus.py "
                 f"--out {PARITY}")
    start = time.perf_counter()
    rows = paragraphs(PARITY)
    available = len(rows)
    if available < args.docs:
        sys.exit(f"only {available} paragraphs in {PARITY}; ask for --docs <= {available}")
    random.Random(args.seed).shuffle(rows)
    rows = rows[:args.docs]
    small = rows[:args.docs // 10]
    corpus = WORK / "corpus"
    group = max(1, args.docs // 80)
    full = write_files(rows, corpus / "full", FILES, group)
    single = write_files(rows, corpus / "single", 1, group)
    small_files = write_files(small, corpus / "small", 4, group)
    lengths = sorted(len(r[1]) for r in rows)
    texts = collections.Counter(r[1] for r in rows)
    return {
        "how_built": (f"every document of {PARITY.relative_to(ROOT)} (built by "
                      "benchmarks/build_corpus.py from Debian packages and files on this "
                      "machine: Austen, KJV, Gutenberg novels, Python docs HTML and RST, "
                      "man pages, Jargon File, debian-reference in 8 languages, fortunes, "
                      "...) cut at blank lines (regex \\n\\s*\\n) into paragraphs, stripped, "
                      f"kept when >= {MIN_CHARS} characters (natural repeats kept; the "
                      "parity corpus's 'synthetic-repeat' documents, real paragraphs that "
                      "build_corpus.py repeats to plant repetition, are included: see "
                      "by_source), "
                      f"shuffled with random.Random({args.seed}), first {args.docs} taken; "
                      "id = '<parity id>#<paragraph number>', columns id, text, source"),
        "paragraphs_available": available,
        "documents": len(rows),
        "text_bytes_utf8": sum(len(r[1].encode()) for r in rows),
        "chars_median": lengths[len(lengths) // 2],
        "chars_mean": round(sum(lengths) / len(lengths), 1),
        "chars_max": lengths[-1],
        "distinct_texts": len(texts),
        "documents_repeating_an_earlier_text": len(rows) - len(texts),
        "by_source": dict(collections.Counter(r[2] for r in rows).most_common()),
        "files": {
            "full": {"folder": str(full[0].parent.relative_to(ROOT)), "files": len(full),
                     "rows_per_file": math.ceil(len(rows) / FILES),
                     "bytes": sum(p.stat().st_size for p in full)},
            "single": {"folder": str(single[0].parent.relative_to(ROOT)), "files": 1,
                       "bytes": single[0].stat().st_size},
            "small": {"folder": str(small_files[0].parent.relative_to(ROOT)), "files": 4,
                      "documents": len(small), "note": "the first tenth of the documents",
                      "bytes": sum(p.stat().st_size for p in small_files)},
        },
        "parquet_row_group_rows": group,
        "build_seconds": round(time.perf_counter() - start, 1),
    }


def fit_models() -> dict:
    from curate.core.registry import make_scorer
    from curate.io import Source

    folder = WORK / "models"
    folder.mkdir(parents=True, exist_ok=True)

    def texts(spec):
        return Source(spec).read_all(["text"]).column("text").to_pylist()

    good, bad = texts("builtin:quickstart-good"), texts("builtin:quickstart-bad")
    start = time.perf_counter()
    make_scorer("fasttext_quality").fit(good, bad, epoch=5, dim=16, bucket=50_000,
                                        seed=0).save(folder / "quality.bin")
    make_scorer("perplexity").fit(good, order=3).save(folder / "lm.npz")
    return {"fasttext_quality": {"path": str((folder / "quality.bin").relative_to(ROOT)),
                                 "fit": "builtin:quickstart-good vs builtin:quickstart-bad, "
                                        "epoch=5, dim=16, bucket=50000, seed=0",
                                 "good": len(good), "bad": len(bad)},
            "perplexity": {"path": str((folder / "lm.npz").relative_to(ROOT)),
                           "fit": "builtin:quickstart-good, order=3", "texts": len(good)},
            "fit_seconds": round(time.perf_counter() - start, 1)}


def all_specs() -> list[str]:
    models = WORK / "models"
    return [*RULES, *DEDUP, "langid", f"fasttext_quality:model={models / 'quality.bin'}",
            f"perplexity:model={models / 'lm.npz'}"]


# -- scoring helpers --------------------------------------------------------------------------
def score(specs: list[str], data: Path, out: Path, executor, shard_rows: int) -> dict:
    from curate.core.registry import make_scorer
    from curate.io import Source
    from curate.sharded import score_to_folder

    if out.exists():
        shutil.rmtree(out)
    scorers = [make_scorer(s) for s in specs]
    start = time.perf_counter()
    report = score_to_folder(scorers, Source(str(data)), out, executor=executor,
                             shard_rows=shard_rows)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "shards": report["shards"], "rows": report["rows"],
            "docs_per_second": round(report["rows"] / seconds, 1)}


def shard_bytes(folder: Path) -> dict:
    """Every shard file and commit of a score folder, by relative path (as the tests)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in (".parquet", ".json") and p.name != "_plan.json"}


def compare_bytes(a: Path, b: Path) -> dict:
    left, right = shard_bytes(a), shard_bytes(b)
    differ = sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
    per_scorer = collections.defaultdict(lambda: [0, 0])
    for k in left:
        per_scorer[k.split("/")[0]][0] += 1
        per_scorer[k.split("/")[0]][1] += len(left[k])
    return {"identical": not differ, "files_compared": len(set(left) | set(right)),
            "bytes_compared": sum(len(v) for v in left.values()),
            "differing_files": differ[:20],
            "files_per_scorer": {k: {"files": n, "bytes": b}
                                 for k, (n, b) in sorted(per_scorer.items())}}


def compare_tables(ref: dict, other: dict) -> dict:
    out = {}
    for name in sorted(set(ref) | set(other)):
        out[name] = name in ref and name in other and other[name].equals(ref[name])
    return out


def wait_for_load(max_load: float, max_wait: float, max_busy: float = 20.0) -> dict:
    """Wait until the 1-minute load is below ``max_load`` and the CPUs were less than
    ``max_busy`` % busy over 3 s (the load average lags: a job that just started barely
    moves it), or ``max_wait`` seconds passed."""
    start = time.monotonic()
    first = load()
    while True:
        busy = psutil.cpu_percent(interval=3)
        quiet = os.getloadavg()[0] < max_load and busy < max_busy
        if quiet or time.monotonic() - start >= max_wait:
            break
        time.sleep(2)
    return {"load_when_waiting_began": first, "waited_seconds": round(time.monotonic() - start),
            "load_after_wait": load(), "cpu_busy_percent_last_3s": busy,
            "below_max_load": quiet}


def foreign_cpu() -> dict[int, tuple[float, float]]:
    """CPU seconds of every process that is not this one or one of its descendants."""
    ours = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    out = {}
    for proc in psutil.process_iter(["pid", "create_time", "cpu_times"]):
        if proc.info["pid"] in ours or proc.info["cpu_times"] is None:
            continue
        times = proc.info["cpu_times"]
        out[proc.info["pid"]] = (proc.info["create_time"], times.user + times.system)
    return out


def foreign_cpu_since(before: dict) -> float:
    """CPU seconds other jobs used since ``before`` (processes alive at the end)."""
    total = 0.0
    for pid, (created, cpu) in foreign_cpu().items():
        start = before.get(pid)
        total += cpu - start[1] if start and start[0] == created else cpu
    return round(total, 1)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


# -- 2. throughput ----------------------------------------------------------------------------
def _spin(n: int) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - start


def calibrate(n: int = 15_000_000) -> dict:
    """Can this machine give two processes a core each right now? A pure-Python loop in
    one process, then in two at once: 2 x one / two-at-once is ~2 on two free cores."""
    import multiprocessing as mp

    one = _spin(n)
    # spawn, and close rather than terminate: forked from a Ray driver, a pool worker
    # would inherit Ray's signal handlers, which print a stack dump on SIGTERM.
    pool = mp.get_context("spawn").Pool(2)
    try:
        pool.map(_spin, [1, 1])  # both workers started
        start = time.perf_counter()
        pool.map(_spin, [n, n], chunksize=1)
        both = time.perf_counter() - start
    finally:
        pool.close()
        pool.join()
    return {"one_process_s": round(one, 2), "two_processes_wall_s": round(both, 2),
            "parallel_speedup": round(2 * one / both, 2), "load": load()}


def part_throughput(args, sizes) -> dict:
    import ray

    from curate.executor import LocalExecutor
    from curate.ray_executor import RayExecutor

    data, rows = WORK / "corpus" / "full", sizes["shard_rows"]
    out = WORK / "out" / "throughput"
    attempts = []
    with RayExecutor(local_cpus=3, workers=2):  # one local instance (3 CPUs) for all runs
        resources = {k: v for k, v in ray.cluster_resources().items() if k == "CPU"}
        log(f"throughput: Ray instance up ({resources}); warm-up on corpus/small")
        with RayExecutor(workers=2) as executor:
            warm = score(RULES, WORK / "corpus" / "small", out / "warm", executor,
                         sizes["memory_shard_rows"])
        for attempt in range(1, args.attempts + 1):
            waited = wait_for_load(args.max_load, args.load_wait)
            log(f"throughput attempt {attempt}: load {waited['load_after_wait']} "
                f"(waited {waited['waited_seconds']} s)")
            runs = {"calibration_before": calibrate()}
            for workers in (1, 2):
                before, up, others = load(), uptime(), foreign_cpu()
                watch = ActorWatch()
                watch.start()
                with RayExecutor(workers=workers) as executor:
                    run = score(RULES, data, out / f"w{workers}", executor, rows)
                actors = watch.stop()
                run.update({"load_before": before, "uptime_before": up,
                            "load_after": load(),
                            "other_jobs_cpu_seconds": foreign_cpu_since(others), **actors,
                            "actor_cpu_share_of_wall": round(
                                sum(actors["actor_cpu_seconds"]) / run["seconds"], 2)})
                runs[f"workers_{workers}"] = run
                log(f"  workers={workers}: {run['seconds']} s, {run['docs_per_second']} docs/s, "
                    f"load {before} -> {run['load_after']}, other jobs used "
                    f"{run['other_jobs_cpu_seconds']} CPU s meanwhile")
            speedup = round(runs["workers_2"]["docs_per_second"] /
                            runs["workers_1"]["docs_per_second"], 2)
            runs["calibration_after"] = calibrate()
            log("  calibration (2 busy loops vs 1): "
                f"{runs['calibration_before']['parallel_speedup']}x before, "
                f"{runs['calibration_after']['parallel_speedup']}x after")
            cpu = {w: sum(runs[f"workers_{w}"]["actor_cpu_seconds"]) for w in (1, 2)}
            attempts.append({"attempt": attempt, "wait": waited, **runs, "speedup": speedup,
                             "actor_cpu_seconds_total": {"workers_1": round(cpu[1], 1),
                                                         "workers_2": round(cpu[2], 1)},
                             "speedup_estimate_from_cpu_seconds": round(
                                 runs["workers_1"]["seconds"] / max(
                                     runs["workers_2"]["actor_cpu_seconds"]), 2)})
            if waited["below_max_load"] and speedup >= SPEEDUP_TARGET:
                break
    shutdown_left = leftovers()
    log("throughput: in-process baseline (LocalExecutor(1))")
    before = load()
    baseline = score(RULES, data, out / "local1", LocalExecutor(1), rows)
    baseline.update({"load_before": before, "load_after": load()})
    shutil.rmtree(out, ignore_errors=True)
    under_low_load = [a for a in attempts if a["wait"]["below_max_load"]]
    best = min(under_low_load or attempts, key=lambda a: a["workers_1"]["load_before"][0])
    return {
        "what": "the four rule sets over corpus/full, wall clock of score_to_folder (plan, "
                "actor start and setup, scoring, commits); Ray start excluded",
        "ray_instance": {"started_by": "RayExecutor(local_cpus=3)", "cluster_resources": resources,
                         "pool_rule": "actors = min(workers, CPUs - 1)"},
        "calibration": "before and after each attempt: a pure-Python loop in 1 process, then "
                       "in 2 at once; parallel_speedup = 2 x one / both, ~2.0 when two cores "
                       "are free, ~1.0 when other jobs take one",
        "speedup_estimate_from_cpu_seconds": "workers=1 wall seconds / CPU seconds of the "
                                             "busiest actor of workers=2: the speedup had each "
                                             "actor had a core to itself (driver time ignored)",
        "shard_rows": rows, "max_load": args.max_load, "warm_up": warm,
        "attempts": attempts,
        "reported_attempt": best["attempt"],
        "speedup_workers_2_vs_1": best["speedup"],
        "measured_under_load_1min": best["workers_1"]["load_before"][0],
        "target_speedup": SPEEDUP_TARGET,
        "target_met": best["speedup"] >= SPEEDUP_TARGET,
        "load_condition_met": bool(under_low_load),
        "baseline_in_process_local_executor_1": baseline,
        "ray_processes_left_after_shutdown": shutdown_left,
    }


# -- 1. identical tables ----------------------------------------------------------------------
def part_identical(args, sizes) -> dict:
    from curate.executor import LocalExecutor
    from curate.ray_executor import RayExecutor
    from curate.scores import load_scores

    specs, out = all_specs(), WORK / "out" / "identical"
    full, single = WORK / "corpus" / "full", WORK / "corpus" / "single"
    rows, n = sizes["shard_rows"], args.docs
    log(f"identical: local run, {len(specs)} scorers, in this process")
    local = score(specs, full, out / "local", LocalExecutor(1), rows)
    local["load_before_after"] = load()
    log(f"  local: {local}")
    log("identical: Ray run (local instance, 3 CPUs, 2 actors)")
    watch = ActorWatch()
    watch.start()
    with RayExecutor(local_cpus=3, workers=2) as executor:
        ray_run = score(specs, full, out / "ray", executor, rows)
        ray_run["worker_imports"] = worker_imports()
    ray_run.update(watch.stop())
    ray_run["ray_processes_left_after_shutdown"] = leftovers()
    log(f"  ray: {ray_run['seconds']} s")
    bytes_cmp = compare_bytes(out / "local", out / "ray")
    reference = load_scores(out / "local")
    ray_tables = compare_tables(reference, load_scores(out / "ray"))
    shutil.rmtree(out / "ray")
    runs, tables = {}, {}
    for shards, executor, label in ((1, LocalExecutor(1), "LocalExecutor(1)"),
                                    (2, LocalExecutor(2), "LocalExecutor(2)"),
                                    (7, LocalExecutor(2), "LocalExecutor(2)")):
        shard_rows = math.ceil(n / shards)
        log(f"identical: corpus/single in {shards} shard(s) of {shard_rows} rows, {label}")
        run = score(specs, single, out / f"single{shards}", executor, shard_rows)
        run["executor"] = label
        runs[f"{shards}_shards"] = run
        tables[shards] = load_scores(out / f"single{shards}")
        shutil.rmtree(out / f"single{shards}")
        log(f"  {run}")
    equal = {f"{k}_shards_vs_1_shard": compare_tables(tables[1], tables[k]) for k in (2, 7)}
    equal["16_shards_8_files_vs_1_shard"] = compare_tables(tables[1], reference)
    rows_per = {name: t.num_rows for name, t in reference.items()}
    dup = reference["exact_dup"]
    shards_of = [i // rows for i in range(dup.num_rows)]
    cluster = dup.column("exact_dup_cluster").to_pylist()
    cross = sum(1 for i, c in enumerate(cluster) if shards_of[c] != shards_of[i])
    shutil.rmtree(out, ignore_errors=True)
    return {
        "scorers": specs, "shard_rows": rows, "data": str(full.relative_to(ROOT)),
        "local": {**local, "executor": "LocalExecutor(1), in this process"},
        "ray": {**ray_run, "executor": "RayExecutor(local_cpus=3, workers=2)"},
        "ray_vs_local_bytes": bytes_cmp,
        "ray_vs_local_tables": ray_tables,
        "identical": bytes_cmp["identical"] and all(ray_tables.values()),
        "rows_per_table": rows_per,
        "exact_dup_members_whose_representative_is_in_another_shard": cross,
        "exact_dup_duplicates": sum(dup.column("exact_dup_duplicate").to_pylist()),
        "minhash_duplicates": sum(reference["minhash"].column("minhash_duplicate").to_pylist()),
        "shards_1_2_7": {"data": str(single.relative_to(ROOT)), "runs": runs,
                         "tables_equal": equal,
                         "identical": all(v for d in equal.values() for v in d.values()),
                         "note": "on the full corpus, as one Parquet file (a plan never puts "
                                 "two files in one shard); compared with Table.equals after "
                                 "curate.scores.load_scores"},
    }


# -- 3. memory --------------------------------------------------------------------------------
def part_memory(args, sizes) -> dict:
    rows = sizes["memory_shard_rows"]
    results = {}
    for label, specs in (("rules", RULES), ("exact_dup+minhash", DEDUP)):
        for executor in ("ray", "local"):
            entry = {}
            for size, folder in (("N", "small"), ("10N", "full")):
                out = WORK / "out" / "memory" / f"{label}-{executor}-{size}"
                if out.exists():
                    shutil.rmtree(out)
                cmd = [sys.executable, str(Path(__file__).resolve()), "_score",
                       "--data", str(WORK / "corpus" / folder), "--out", str(out),
                       "--executor", executor, "--workers", "2", "--ray-cpus", "3",
                       "--shard-rows", str(rows), *[a for s in specs for a in ("-s", s)]]
                before = load()
                start = time.perf_counter()
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
                sampler = TreeSampler(proc.pid)
                sampler.start()
                stdout, stderr = proc.communicate()
                sampler.done.set()
                sampler.join()
                seconds = time.perf_counter() - start
                if proc.returncode:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
                report = json.loads(stdout.strip().splitlines()[-1])
                entry[size] = {"documents": report["rows"], "shards": report["shards"],
                               "peak_rss_sum_mb": round(sampler.peak_rss / 1e6, 1),
                               "peak_pss_sum_mb": round(sampler.peak_pss / 1e6, 1),
                               "at_peak_rss": sampler.at_peak,
                               "max_processes": sampler.max_processes,
                               "samples": sampler.samples, "seconds": round(seconds, 1),
                               "scoring_seconds": report["seconds"],
                               "load_before": before, "load_after": load(),
                               "ray_processes_left": leftovers() if executor == "ray" else []}
                shutil.rmtree(out, ignore_errors=True)
                log(f"memory {label} {executor} {size}: {entry[size]['peak_rss_sum_mb']} MB RSS "
                    f"({entry[size]['peak_pss_sum_mb']} MB PSS), {seconds:.1f} s")
            entry["rss_ratio_10N_vs_N"] = round(entry["10N"]["peak_rss_sum_mb"] /
                                                entry["N"]["peak_rss_sum_mb"], 3)
            entry["pss_ratio_10N_vs_N"] = round(entry["10N"]["peak_pss_sum_mb"] /
                                                entry["N"]["peak_pss_sum_mb"], 3)
            entry["executor"] = ("RayExecutor(local_cpus=3, workers=2): 2 actors"
                                 if executor == "ray" else "LocalExecutor(2): 2 processes")
            results[f"{label}/{executor}"] = entry
    log("memory: where the rule sets' growth is (one process, tokenizer caches)")
    probe = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_probe",
                            str(WORK / "corpus" / "full"), str(args.docs // 10)],
                           capture_output=True, text=True, check=True)
    probe = json.loads(probe.stdout.strip().splitlines()[-1])
    return {"what": "peak summed RSS (and PSS) of the scoring subprocess's whole process "
                    "tree, sampled with psutil every 0.1 s: the driver, the actors or pool "
                    "workers, and (Ray) GCS, raylet, agents, log monitor and idle workers",
            "shard_rows": rows, "command": "python benchmarks/bench_scale.py _score --data "
            "DIR --out OUT --executor ray|local --workers 2 --ray-cpus 3 --shard-rows "
            f"{rows} -s ...", "runs": results,
            "flat_target": "rules: ratio <= 1.15 (the rule sets hold nothing per document)",
            "rules_flat": all(results[f"rules/{e}"]["rss_ratio_10N_vs_N"] <= 1.15
                              for e in ("ray", "local")),
            "rules_in_one_process": {
                "what": "python benchmarks/bench_scale.py _probe corpus/full N: the four rule "
                        "sets over the corpus in one process; RSS and the entries of "
                        "scorers.text.tokenize's bounded caches (dicts with a max_size, each "
                        "cleared when it reaches cache_limit_entries)", **probe}}


def cmd_probe(argv: list[str]) -> None:
    """``_probe DATA SMALL``: the four rule sets in this one process over DATA, batch by
    batch; RSS and the sizes of scorers.text.tokenize's caches after SMALL documents and at
    the end, then after ``clear_caches()``. Prints JSON."""
    import gc

    import pyarrow.parquet as pq

    from curate.core.registry import make_scorer
    from scorers.text import tokenize

    data, small = Path(argv[0]), int(argv[1])
    scorers = [make_scorer(n) for n in RULES]
    size = min(s.batch_size for s in scorers) or 1000
    proc = psutil.Process()

    # The module's bounded caches: dicts with a max_size (chunks, token flags, ...).
    caches = {name: obj for name, obj in vars(tokenize).items()
              if isinstance(obj, dict) and hasattr(obj, "max_size")}

    def state(docs):
        return {"documents": docs, "rss_mb": round(proc.memory_info().rss / 1e6, 1),
                "cache_entries": {name: len(c) for name, c in caches.items()}}

    points, done = [state(0)], 0
    for path in sorted(data.glob("*.parquet")):
        table = pq.read_table(path, columns=["text"])
        for start in range(0, table.num_rows, size):
            batch = table.slice(start, size)
            for scorer in scorers:
                scorer.score_batch(batch)
            done += batch.num_rows
            if done >= small and len(points) == 1:
                points.append(state(done))
    points.append(state(done))
    tokenize.clear_caches()
    gc.collect()
    print(json.dumps({"points": points, "after_clear_caches_rss_mb":
                      round(proc.memory_info().rss / 1e6, 1),
                      "cache_limit_entries": {n: c.max_size for n, c in caches.items()}}))


def cmd_score(argv: list[str]) -> None:
    """``_score``: one scoring run for the memory measurement; prints its report as JSON."""
    parser = argparse.ArgumentParser(prog="bench_scale.py _score")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ray-cpus", type=int, default=3)
    parser.add_argument("--shard-rows", type=int, required=True)
    parser.add_argument("-s", "--scorer", action="append", required=True)
    args = parser.parse_args(argv)
    if args.executor == "ray":
        from curate.ray_executor import RayExecutor

        with RayExecutor(local_cpus=args.ray_cpus, workers=args.workers) as executor:
            report = score(args.scorer, Path(args.data), Path(args.out), executor,
                           args.shard_rows)
    else:
        from curate.executor import LocalExecutor

        report = score(args.scorer, Path(args.data), Path(args.out),
                       LocalExecutor(args.workers), args.shard_rows)
    print(json.dumps(report))


# -- 4. minhash -------------------------------------------------------------------------------
def part_minhash(args, sizes) -> dict:
    import bench_minhash as bm
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.executor import LocalExecutor
    from curate.io import Source
    from curate.scores import load_scores
    from curate.sharded import score_to_folder
    from scorers.dedup import MinHashDup

    docs, pairs = sizes["minhash_docs"], sizes["minhash_pairs"]
    log(f"minhash: bench_minhash corpus, {docs} documents + {pairs} planted pairs")
    start = time.perf_counter()
    texts, planted, values, sources = bm.build_corpus(docs, pairs, args.seed)
    build = time.perf_counter() - start
    folder = WORK / "minhash"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "docs.parquet"
    pq.write_table(pa.table({"id": pa.array(np.arange(len(texts)), pa.int64()), "text": texts}),
                   data)
    shingles = [bm.shingle_set(bm.tokens(t)) for t in texts]
    params = {"ngram": bm.NGRAM, "num_perm": bm.NUM_PERM, "bands": bm.BANDS,
              "threshold": bm.THRESHOLD, "seed": bm.SEED}
    clusters, timing = bm.run_curate(texts)
    results = {"in_memory": {"how": "bench_minhash.run_curate: score_batch + finalize on one "
                                    "table", "seconds": round(timing["seconds"], 2),
                             **bm.evaluate(clusters, planted, values, shingles)}}
    found = {"in_memory": clusters}
    tables = {}
    for shards in (1, 8):
        out = folder / f"scores{shards}"
        if out.exists():
            shutil.rmtree(out)
        rows = math.ceil(len(texts) / shards)
        t0 = time.perf_counter()
        report = score_to_folder([MinHashDup(**params)], Source(str(data)), out,
                                 executor=LocalExecutor(1), shard_rows=rows)
        seconds = time.perf_counter() - t0
        tables[shards] = load_scores(out)["minhash"]
        shutil.rmtree(out)
        found[shards] = tables[shards].column("minhash_cluster").to_numpy()
        results[f"{shards}_shards"] = {"shards": report["shards"], "shard_rows": rows,
                                       "seconds": round(seconds, 2),
                                       **bm.evaluate(found[shards], planted, values, shingles)}
        log(f"  {shards} shard(s): recall {results[f'{shards}_shards']['recall']}, "
            f"precision {results[f'{shards}_shards']['precision']}")
    keys = ("recall", "precision", "precision_strict", "found_pairs", "duplicates_flagged")
    same = all(results[k][m] == results["in_memory"][m] for k in ("1_shards", "8_shards")
               for m in keys)
    return {"corpus": {"documents": len(texts), "sources": sources, "planted_pairs": len(planted),
                       "build_seconds": round(build, 1), "seed": args.seed,
                       "how": "bench_minhash.build_corpus (Vim help sections and Python "
                              "docstrings, 150-600 words, planted edited copies with exact "
                              "5-shingle Jaccard in [0.8, 1.0))"},
            "parameters": params, "results": results,
            "clusters_equal_1_vs_8_shards": bool(np.array_equal(found[1], found[8])),
            "clusters_equal_in_memory_vs_8_shards": bool(np.array_equal(found["in_memory"],
                                                                        found[8])),
            "tables_equal_1_vs_8_shards": tables[1].equals(tables[8]),
            "precision_recall_unchanged": same,
            "identical": same and bool(np.array_equal(found[1], found[8]))}


# -- 5. cluster -------------------------------------------------------------------------------
def curate_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "curate"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "curate.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def part_cluster(args, sizes) -> dict:
    config = WORK / "cluster" / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    result_file = config.with_name("result.json")
    result_file.unlink(missing_ok=True)
    config.write_text(json.dumps({"shard_rows": sizes["memory_shard_rows"],
                                  "result": str(result_file)}))
    own = [sys.executable, str(Path(__file__).resolve()), "_cluster", str(config)]
    namespace = shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode == 0
    if namespace:
        # bash as the namespace's init reaps the daemons `ray start` leaves behind.
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c",
               '"$0" "$@"; rc=$?; exit $rc', *own]
    else:
        cmd = [*own, "--no-global-stop"]
    log(f"cluster: {'in a PID namespace' if namespace else 'no PID namespace available'}")
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if not result_file.is_file():
        raise RuntimeError(f"the cluster run wrote no result (rc {run.returncode}):\n"
                           f"{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
    result = json.loads(result_file.read_text())
    result["pid_namespace"] = namespace
    result["wrapper"] = " ".join(cmd[:6]) + " ..." if namespace else "none"
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["ray_processes_left_on_host_after_namespace_exit"] = leftovers(wait=3)
    return result


def cmd_cluster(argv: list[str]) -> None:
    """``_cluster CONFIG [--no-global-stop]``: the two-node cluster sequence."""
    from curate.scores import load_scores

    config = json.loads(Path(argv[0]).read_text())
    global_stop = "--no-global-stop" not in argv
    rows = config["shard_rows"]
    ray_tmpdir()
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    token_note = "~/.ray/auth_token (present)"
    if not (Path.home() / ".ray" / "auth_token").exists() and \
            not env.get("RAY_AUTH_TOKEN") and not env.get("RAY_AUTH_TOKEN_PATH"):
        token = WORK / "cluster" / "auth_token"
        token.write_text(os.urandom(16).hex())
        env["RAY_AUTH_TOKEN_PATH"] = str(token)
        token_note = f"RAY_AUTH_TOKEN_PATH={token} (generated: no ~/.ray/auth_token)"
    port = free_port()
    address = f"127.0.0.1:{port}"
    data = WORK / "corpus" / "small"
    out = WORK / "cluster"
    specs = all_specs()
    steps: list[dict] = []
    result: dict = {"address": address, "auth": {"RAY_AUTH_MODE": "token", "token": token_note},
                    "steps": steps}

    def run(cmd, name, environ=None, timeout=600, watch=None):
        start = time.perf_counter()
        if watch is not None:
            watch.start()
        try:
            proc = subprocess.run(cmd, env=environ or env, capture_output=True, text=True,
                                  timeout=timeout, cwd=Path.cwd())
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, stdout, stderr = "timeout", str(exc.stdout or ""), str(exc.stderr or "")
        step = {"step": name, "command": " ".join(cmd), "rc": rc,
                "seconds": round(time.perf_counter() - start, 1),
                "stdout_tail": [line for line in stdout.splitlines() if line.strip()][-4:],
                "stderr_tail": [line[:300] for line in stderr.splitlines()
                                if line.strip() and "gcs_client.cc" not in line][-3:]}
        if watch is not None:
            step["actors"] = watch.stop()
        steps.append(step)
        return step

    try:
        head = run(["ray", "start", "--head", "--num-cpus=1", f"--port={port}",
                    "--include-dashboard=false"], "head")
        if head["rc"] != 0:
            raise RuntimeError("ray start --head failed")
        variants = [[],
                    [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}"],
                    [f"--temp-dir={tempfile.mkdtemp(dir=env['RAY_TMPDIR'])}"]]
        for extra in variants:
            second = run(["ray", "start", f"--address={address}", "--num-cpus=2", *extra],
                         "second node")
            if second["rc"] == 0:
                result["second_node_needed"] = extra or "nothing extra: same host, same temp dir"
                break
        else:
            raise RuntimeError("no second node")
        os.environ.update({k: v for k, v in env.items() if k.startswith("RAY_")})
        import ray

        ray.init(address=address, log_to_driver=False, configure_logging=False)
        nodes = [{"node_id": n["NodeID"][:12], "alive": n["Alive"],
                  "cpus": n["Resources"].get("CPU"), "head": "node:__internal_head__" in
                  n["Resources"], "node_manager_port": n["NodeManagerPort"]} for n in ray.nodes()]
        resources = ray.cluster_resources().get("CPU")
        result["worker_imports"] = worker_imports()
        ray.shutdown()
        result["nodes"] = nodes
        result["alive_nodes"] = sum(n["alive"] for n in nodes)
        result["cluster_cpus"] = resources

        base = [*curate_cmd(), "score", str(data), *[a for s in specs for a in ("-s", s)],
                "--shard-rows", str(rows)]
        # What a user sees who joins the cluster without RAY_AUTH_MODE=token.
        plain = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}
        probe = run([*curate_cmd(), "score", str(data), "-s", "fineweb_quality", "-o",
                     str(out / "probe"), "--executor", "ray", "--address", address],
                    "probe without RAY_AUTH_MODE=token", environ=plain, timeout=300)
        result["without_auth_mode"] = {"rc": probe["rc"], "seconds": probe["seconds"],
                                       "message": (probe["stderr_tail"] or [""])[-1]}
        for folder in ("ray", "local", "probe"):
            shutil.rmtree(out / folder, ignore_errors=True)
        remote = run([*base, "-o", str(out / "ray"), "--executor", "ray", "--address", address,
                      "-j", "2"], "curate score on the cluster", watch=ActorWatch())
        local = run([*base, "-o", str(out / "local")], "curate score, local")
        if remote["rc"] != 0 or local["rc"] != 0:
            raise RuntimeError("a curate score run failed")
        tables = compare_tables(load_scores(out / "local"), load_scores(out / "ray"))
        result["tables_equal"] = tables
        result["bytes"] = compare_bytes(out / "local", out / "ray")
        result["identical"] = all(tables.values()) and result["bytes"]["identical"]
        result["scored_on_nodes"] = remote["actors"]["actors_per_node"]
        for folder in ("ray", "local"):
            shutil.rmtree(out / folder, ignore_errors=True)
    except Exception as exc:  # recorded; the cluster is stopped below either way
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if global_stop:
            stop = run(["ray", "stop", "--force"], "ray stop --force")
        else:
            killed = kill_ours()
            stop = {"step": "stopped by pid (no PID namespace: ray stop --force would kill "
                    "every Ray process of the machine)", "killed": killed}
            steps.append(stop)
        result["ray_processes_left_after_stop"] = leftovers(wait=5)
        result["no_ray_process_left"] = not result["ray_processes_left_after_stop"]
        result["commands"] = [s["command"] for s in steps if "command" in s]
        Path(config["result"]).write_text(json.dumps(result, indent=1, default=str))


# -- main -------------------------------------------------------------------------------------
def sizes_for(args) -> dict:
    return {"shard_rows": math.ceil(args.docs / 16),
            "memory_shard_rows": math.ceil(args.docs / 40),
            "minhash_docs": 2_000 if args.quick else 20_000,
            "minhash_pairs": 200 if args.quick else 2_000}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_score", "_cluster", "_probe"):
        inherited = "CURATE_SCALE_RAY_TMPDIR" in os.environ  # set by the run that called
        ray_tmpdir()
        try:
            return {"_score": cmd_score, "_cluster": cmd_cluster,
                    "_probe": cmd_probe}[sys.argv[1]](sys.argv[2:])
        finally:
            if not inherited:
                shutil.rmtree(os.environ["CURATE_SCALE_RAY_TMPDIR"], ignore_errors=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Measurements: " + ", ".join(PARTS))
    parser.add_argument("--quick", action="store_true",
                        help="20,000 documents (smoke run); writes scale_quick.json")
    parser.add_argument("--docs", type=int, help="documents (default 200,000; quick 20,000)")
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only these measurements (repeatable); writes "
                             "scale_partial.json unless --name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-load", type=float, default=0.7,
                        help="1-minute load average to wait for before timing (default 0.7)")
    parser.add_argument("--load-wait", type=float, default=180,
                        help="seconds to wait for it per attempt (default 180)")
    parser.add_argument("--attempts", type=int, default=3, help="throughput attempts (default 3)")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="import curate from the working tree, not from a copy")
    parser.add_argument("--merge-into", metavar="NAME",
                        help="with --only: replace those parts in results/NAME.json (e.g. "
                             "scale) and record the rerun there")
    parser.add_argument("--name", help="results/<name>.json (default scale, scale_quick, "
                                       "scale_partial)")
    args = parser.parse_args()
    if not SNAPSHOT:
        lock_work_folder()
        if not args.no_snapshot:
            snapshot_and_reexec()
    args.docs = args.docs or (20_000 if args.quick else 200_000)
    parts = args.only or list(PARTS)
    name = args.name or ("scale_partial" if args.only else "scale_quick" if args.quick
                         else "scale")
    ray_tmpdir()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started, sizes = time.perf_counter(), sizes_for(args)
    result: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
                    "quick": args.quick, "parts": parts, "load_at_start": load(),
                    "uptime_at_start": uptime(), "sizes": sizes, "code": code_info()}
    try:
        log(f"building the corpus ({args.docs} documents)")
        result["corpus"] = build_corpus(args)
        result["models"] = fit_models()
        for part in ("throughput", "identical", "memory", "minhash", "cluster"):
            if part in parts:
                t0 = time.perf_counter()
                result[part] = globals()[f"part_{part}"](args, sizes)
                result[part]["part_seconds"] = round(time.perf_counter() - t0, 1)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        result["ray_processes_killed_at_exit"] = kill_ours()
        result["ray_processes_left_at_exit"] = leftovers(wait=2)
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        result["load_at_end"] = load()
        result["summary"] = summary(result)
        if args.merge_into and args.only and "error" not in result:
            path, result = merge_into(args.merge_into, result, parts)
        else:
            path = write_result(name, result)
        shutil.rmtree(os.environ["CURATE_SCALE_RAY_TMPDIR"], ignore_errors=True)
        log(f"wrote {path} ({result['wall_seconds']} s)")
        print(json.dumps(result["summary"], indent=2))


def merge_into(name: str, rerun: dict, parts: list[str]) -> tuple[Path, dict]:
    """Put the parts of ``rerun`` into results/<name>.json; keep what it says of the rerun."""
    from common import RESULTS

    path = RESULTS / f"{name}.json"
    data = json.loads(path.read_text())
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for part in parts:
        if part in data:  # kept: a rerun does not hide what an earlier run measured
            data.setdefault("superseded", []).append(
                {"part": part, "replaced_at": when, "measured": data[part]})
        data[part] = rerun[part]
    data.setdefault("reruns", []).append({
        "parts": parts, "when": when,
        **{k: rerun[k] for k in ("command", "code", "load_at_start", "uptime_at_start",
                                 "wall_seconds", "ray_processes_left_at_exit")},
        "corpus_same": rerun["corpus"]["text_bytes_utf8"] == data["corpus"]["text_bytes_utf8"]
        and rerun["corpus"]["documents"] == data["corpus"]["documents"],
        "code_same": rerun["code"]["snapshot_py_sha256"] == data["code"]["snapshot_py_sha256"]})
    data["summary"] = summary(data)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path, data


def summary(result: dict) -> dict:
    out = {}
    if "identical" in result:
        r = result["identical"]
        out["local_vs_ray_byte_identical"] = r["identical"]
        out["tables_equal_1_2_7_shards"] = r["shards_1_2_7"]["identical"]
    if "throughput" in result:
        r = result["throughput"]
        out["ray_2_vs_1_workers_speedup"] = r["speedup_workers_2_vs_1"]
        out["speedup_target_met"] = r["target_met"]
        out["measured_under_load_1min"] = r["measured_under_load_1min"]
    if "memory" in result:
        out["memory_ratio_10N_vs_N"] = {k: v["rss_ratio_10N_vs_N"]
                                        for k, v in result["memory"]["runs"].items()}
    if "minhash" in result:
        out["minhash_unchanged_1_vs_8_shards"] = result["minhash"]["identical"]
    if "cluster" in result:
        r = result["cluster"]
        out["cluster_alive_nodes"] = r.get("alive_nodes")
        out["cluster_tables_equal_local"] = r.get("identical")
        out["cluster_no_ray_process_left"] = r.get("no_ray_process_left")
    return out


if __name__ == "__main__":
    main()
