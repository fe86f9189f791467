"""Agreement and speed of curate's rule-set scorers against DataTrove 0.10.1.

For each rule set (Gopher quality, Gopher repetition, C4, FineWeb) this runs DataTrove's
filter (``.filter(Document(...))``, spaCy tokenization) and curate's scorer on the same
documents and reports:

* agreement: share of documents with the same keep/drop decision, and with the same
  reason; for C4 also the share of documents kept by both whose cleaned text is equal;
  every disagreement is listed (document id, both decisions and reasons);
* speed on one core, in documents per CPU-second, each rule set alone and the four
  together. Every measurement is a fresh Python process (``python bench_rules.py
  --child ...``) that imports only the system it measures, so nothing is cached from an
  earlier measurement, and the clock (:data:`CLOCK`) includes its start-up: interpreter
  start, imports, building the filters or scorers; only reading the documents (each
  system's own input form: dicts for DataTrove, Arrow record batches for curate) is left
  out. DataTrove applies the four filters in sequence to each document (C4 rewrites the
  text FineWeb then sees); curate runs the four scorers on each batch of ``BATCH``
  documents, sharing one tokenization per batch. Each measurement runs ``--repeats``
  times per system (default 3), the two systems alternating; the fastest run of each
  counts, since other work on the machine only ever adds CPU time, and every run's
  seconds are written out with the range of speed-ups they allow;
* Gopher repetition and FineWeb once more with ``all_signals=True``, alone and in the
  four together: their costly signals (Gopher's n-gram signals, FineWeb's list ratio)
  for every document, where by default, as in DataTrove, they are computed only for the
  documents that reach their check;
* curate's four scorers in a process pool of 2 versus a pool of 1 (same batches, workers
  start with empty caches); this one is wall-clock time, so the load average is recorded.

Usage::

    python benchmarks/bench_rules.py [--corpus PATH] [--limit N] [--sample N] [--repeats K]
    python benchmarks/bench_rules.py --sample 6000 --repeat-all-four   # into an existing --out

The default corpus is the whole parity corpus built by ``benchmarks/build_corpus.py``
(8,686 real documents); the speed targets (``TARGETS``) are stated for at least 6,000 of
them, e.g. ``--sample 6000``. ``--sample N`` draws N documents with ``random.Random(seed)``
(the JSON states it); ``--limit N`` takes the first N (quick runs). Writes
``benchmarks/results/rules.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RULE_SETS = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality")
#: the rule sets whose costly signals are computed only where they decide, unless
#: ``all_signals=True``
LAZY = ("gopher_repetition", "fineweb_quality")
BATCH = 500
POOL_BATCH = 100  # smaller batches keep two workers evenly busy
TARGETS = {"agreement": 1.0, "speedup_per_rule_set": 8.0, "speedup_all_four": 20.0,
           "speedup_2_processes": 1.8}

CLOCK = ("CPU time (user + system) of a fresh Python process, from its start to the end of "
         "the run: interpreter start-up, importing the measured system (DataTrove and spaCy, "
         "or pyarrow and curate), building its filters or scorers, and filtering or scoring "
         "every document. Only reading the documents is measured and subtracted: each system "
         "reads its own input form from a temporary file written by the benchmark, DataTrove "
         "a pickled list of {id, text} dicts (it then makes a Document of each, which is "
         "timed), curate an Arrow IPC file of record batches of BATCH rows (read into memory, "
         "not memory-mapped)")


def load_corpus(path: Path, limit: int | None, sample: int | None, seed: int) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        docs = [{"id": str(d.get("id", i)), "text": d["text"]}
                for i, line in enumerate(fh) for d in [json.loads(line)]]
    if limit:
        docs = docs[:limit]
    if sample and sample < len(docs):
        keep = sorted(random.Random(seed).sample(range(len(docs)), sample))
        docs = [docs[i] for i in keep]
    return docs


# ---------------------------------------------------------------------------------------
# The measured runs (in the child process; each imports only its own system)
# ---------------------------------------------------------------------------------------


def run_datatrove(names: list[str], docs: list[dict]) -> list[list[tuple]]:
    """Per document, each filter's (keep, reason, text after it if C4 rewrote it), the
    filters applied in sequence to the same ``Document``."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    kinds = {"gopher_quality": GopherQualityFilter, "gopher_repetition": GopherRepetitionFilter,
             "c4_quality": C4QualityFilter, "fineweb_quality": FineWebQualityFilter}
    order = [kinds[name]() for name in names]
    out = []
    for d in docs:
        doc = Document(text=d["text"], id=d["id"])
        results = []
        for flt in order:
            res = flt.filter(doc)
            keep, reason = (res, None) if not isinstance(res, tuple) else res
            results.append((bool(keep), reason, doc.text if flt is order[-1] and
                            names[-1] == "c4_quality" else None))
        out.append(results)
    return out


def curate_scorers(names: list[str], variant: str = "default") -> list:
    """curate's scorers for ``names``; variant "all_signals" computes every signal of
    Gopher repetition and FineWeb (``all_signals=True``) where the default computes the
    costly ones only where they decide."""
    from scorers.text.c4 import C4Quality
    from scorers.text.fineweb import FineWebQuality
    from scorers.text.gopher import GopherQuality, GopherRepetition

    kinds = {"gopher_quality": GopherQuality, "gopher_repetition": GopherRepetition,
             "c4_quality": C4Quality, "fineweb_quality": FineWebQuality}
    options = {name: {"all_signals": True} for name in LAZY if variant == "all_signals"}
    return [kinds[name](**options.get(name, {})) for name in names]


def batches(docs: list[dict], size: int = BATCH) -> list:
    import pyarrow as pa

    return [pa.table({"text": [d["text"] for d in docs[i:i + size]]})
            for i in range(0, len(docs), size)]


def write_batches(docs: list[dict], path: Path) -> None:
    """The documents' texts as an Arrow IPC file of record batches of ``BATCH`` rows."""
    import pyarrow as pa

    schema = pa.schema([("text", pa.string())])
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for table in batches(docs):
            writer.write_table(table)


@contextlib.contextmanager
def written_inputs(docs: list[dict]):
    """A temporary folder holding ``docs`` as each system's child process reads them:
    ``docs.pickle`` for DataTrove, ``docs.arrow`` (Arrow batches) for curate."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp)
        with open(inputs / "docs.pickle", "wb") as fh:
            pickle.dump(docs, fh)
        write_batches(docs, inputs / "docs.arrow")
        yield inputs


def read_batches(path: str) -> list:
    """The tables :func:`write_batches` wrote, read into memory."""
    import pyarrow as pa

    with pa.OSFile(path) as source:
        reader = pa.ipc.open_file(source)
        return [pa.Table.from_batches([reader.get_batch(i)])
                for i in range(reader.num_record_batches)]


def run_curate(names: list[str], tables: list, variant: str = "default") -> dict:
    """Each scorer's (keep, reason) per document, the scorers run one after the other on
    each batch."""
    scorers = curate_scorers(names, variant)
    parts: dict[str, list] = {s.name: [] for s in scorers}
    for table in tables:
        for s in scorers:
            parts[s.name].append(s.score_batch(table))
    out = {}
    for name, tables in parts.items():
        keep = [k for t in tables for k in t.column(f"{name}_keep").to_pylist()]
        reason = [r for t in tables for r in t.column(f"{name}_reason").to_pylist()]
        out[name] = list(zip(keep, reason))
    return out


def child(spec: dict) -> None:
    """One measurement: read the documents, run one system, write its CPU seconds and
    decisions to ``spec["out"]``."""
    if spec["system"] == "curate":
        sys.path.insert(0, str(ROOT))
        import pyarrow  # noqa: F401  (curate's start-up, so not in the reading time)
    start = time.process_time()
    if spec["system"] == "datatrove":
        with open(spec["docs"], "rb") as fh:
            docs = pickle.load(fh)
    else:
        tables = read_batches(spec["batches"])
    reading = time.process_time() - start
    if spec["system"] == "datatrove":
        decisions = run_datatrove(spec["names"], docs)
    else:
        decisions = run_curate(spec["names"], tables, spec.get("variant", "default"))
    seconds = time.process_time() - reading
    with open(spec["out"], "wb") as fh:
        pickle.dump({"seconds": seconds, "reading_seconds": reading, "decisions": decisions},
                    fh)


def measure(system: str, names: list[str], inputs: Path, variant: str = "default") -> dict:
    """Run :func:`child` in a fresh interpreter on the documents written in folder
    ``inputs`` and return what it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.pickle"
        spec = {"system": system, "names": list(names), "docs": str(inputs / "docs.pickle"),
                "batches": str(inputs / "docs.arrow"), "out": str(out), "variant": variant}
        subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=True)
        with open(out, "rb") as fh:
            return pickle.load(fh)


# ---------------------------------------------------------------------------------------
# Agreement, speed and process scaling (in the parent)
# ---------------------------------------------------------------------------------------


def compare(docs: list[dict], dt: list[tuple], cur: list[tuple],
            cleaned: list[str] | None) -> dict:
    n = len(docs)
    same_keep = sum(c[0] == d[0] for c, d in zip(cur, dt))
    same_reason = sum(c[1] == d[1] for c, d in zip(cur, dt))
    disagreements = [{"id": doc["id"], "datatrove": {"keep": d[0], "reason": d[1]},
                      "curate": {"keep": c[0], "reason": c[1]}}
                     for doc, d, c in zip(docs, dt, cur) if d[0] != c[0] or d[1] != c[1]]
    out = {"documents": n, "kept_datatrove": sum(d[0] for d in dt),
           "kept_curate": sum(c[0] for c in cur), "keep_agreement": same_keep / n,
           "reason_agreement": same_reason / n, "disagreements": disagreements}
    if cleaned is not None:
        both = [i for i in range(n) if dt[i][0] and cur[i][0]]
        out["cleaned_text_equal_rate"] = (sum(dt[i][2] == cleaned[i] for i in both) / len(both)
                                          if both else None)
        out["cleaned_text_compared"] = len(both)
        out["cleaned_text_differences"] = [docs[i]["id"] for i in both
                                           if dt[i][2] != cleaned[i]]
    return out


def speed(n: int, dt: dict, cur: dict, target: float | None) -> dict:
    """Docs per second and speed-up from each system's fastest run (noise from other
    processes on the machine only ever adds CPU time), with every run's seconds; no
    ``target`` for a figure reported without one."""
    speedup = dt["seconds"] / cur["seconds"]
    return {"datatrove_docs_per_s": n / dt["seconds"], "curate_docs_per_s": n / cur["seconds"],
            "speedup": speedup, "target": target,
            "meets_target": None if target is None else speedup >= target,
            "datatrove_cpu_s": dt["seconds"], "curate_cpu_s": cur["seconds"],
            "datatrove_runs_cpu_s": dt["runs"], "curate_runs_cpu_s": cur["runs"],
            "speedup_range": [min(dt["runs"]) / max(cur["runs"]),
                              max(dt["runs"]) / min(cur["runs"])]}


def measure_pair(names: list[str], inputs: Path, repeats: int) -> tuple[dict, dict]:
    """DataTrove and curate on ``names``, ``repeats`` times each, alternating, so a slower
    spell of the machine hits both; each result holds its first run's decisions, its
    fastest run's ``seconds`` and every run's seconds (``runs``)."""
    runs: dict[str, list[dict]] = {"datatrove": [], "curate": []}
    for _ in range(repeats):
        for system in runs:
            runs[system].append(measure(system, names, inputs))
    return tuple(fastest(results) for results in runs.values())


def fastest(results: list[dict]) -> dict:
    """The first run's decisions, the fastest run's ``seconds`` and every run's (``runs``)."""
    return {**results[0], "seconds": min(r["seconds"] for r in results),
            "runs": [r["seconds"] for r in results]}


def _score_four(table) -> int:
    for s in curate_scorers(list(RULE_SETS)):
        s.score_batch(table)
    return table.num_rows


def pool_seconds(tables: list, processes: int) -> float:
    import multiprocessing as mp

    from scorers.text import tokenize

    with mp.get_context("fork").Pool(processes, initializer=tokenize.clear_caches) as pool:
        pool.map(abs, range(processes))  # start the workers before timing
        start = time.perf_counter()
        done = sum(pool.imap_unordered(_score_four, tables, chunksize=1))
        spent = time.perf_counter() - start
    assert done == sum(t.num_rows for t in tables)
    return spent


def process_scaling(docs: list[dict]) -> dict:
    """Wall-clock throughput of the four scorers in a pool of 1 and of 2 processes.

    Only meaningful on an otherwise idle machine: the load average is recorded.
    """
    n = len(docs)
    load_before = os.getloadavg()
    pool_tables = batches(docs, POOL_BATCH)
    one = pool_seconds(pool_tables, 1)
    two = pool_seconds(pool_tables, 2)
    print(f"2 processes vs 1: {one / two:.2f}x", flush=True)
    return {"pool_1_docs_per_s": n / one, "pool_2_docs_per_s": n / two,
            "speedup_2_vs_1": one / two, "batch_size": POOL_BATCH, "clock": "wall",
            "load_average_before": load_before, "load_average_after": os.getloadavg()}


def measure_rule_sets(docs: list[dict], inputs: Path, repeats: int) -> dict:
    """Agreement and speed of each rule set alone (those in ``LAZY`` also with every
    signal computed), and the four together."""
    n = len(docs)
    per_rule = TARGETS["speedup_per_rule_set"]
    result: dict = {"rule_sets": {}, "repeats": repeats}
    for name in RULE_SETS:
        dt, cur = measure_pair([name], inputs, repeats)
        dt_decisions = [d[0] for d in dt["decisions"]]
        cleaned = None
        if name == "c4_quality":
            cleaned = curate_scorers([name])[0].transform([d["text"] for d in docs])
        entry = compare(docs, dt_decisions, cur["decisions"][name], cleaned)
        entry["speed"] = speed(n, dt, cur, per_rule)
        if name in LAZY:
            every = fastest([measure("curate", [name], inputs, variant="all_signals")
                             for _ in range(repeats)])
            entry["all_signals"] = {
                "options": {"all_signals": True},
                **{k: v for k, v in compare(docs, dt_decisions, every["decisions"][name],
                                            None).items() if "agreement" in k},
                "speed": speed(n, dt, every, per_rule)}
        result["rule_sets"][name] = entry
        print(f"{name}: keep agreement {entry['keep_agreement']:.4%}, reason agreement "
              f"{entry['reason_agreement']:.4%}, speedup {entry['speed']['speedup']:.1f}x "
              f"({entry['speed']['datatrove_docs_per_s']:.0f} vs "
              f"{entry['speed']['curate_docs_per_s']:.0f} docs/s)", flush=True)
    dt_all, cur_all = measure_pair(list(RULE_SETS), inputs, repeats)
    result["all_four"] = {**speed(n, dt_all, cur_all, TARGETS["speedup_all_four"]),
                          "sharing": "one tokenization per batch, shared by the four scorers "
                                     "(scorers.text.tokenize.batch_tokens)"}
    print(f"all four: speedup {result['all_four']['speedup']:.1f}x", flush=True)
    every = fastest([measure("curate", list(RULE_SETS), inputs, variant="all_signals")
                     for _ in range(repeats)])
    every_speed = speed(n, dt_all, every, None)
    result["all_four"]["all_signals"] = {
        "options": {name: {"all_signals": True} for name in LAZY}, "speed": every_speed}
    print(f"all four, every signal: speedup {every_speed['speedup']:.1f}x", flush=True)
    return result


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path,
                    default=ROOT / "benchmarks/data/parity_corpus.jsonl.gz")
    ap.add_argument("--limit", type=int, default=None, help="first N documents only")
    ap.add_argument("--sample", type=int, default=None, help="N documents drawn at random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each measurement per system (the fastest counts)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/rules.json")
    ap.add_argument("--processes-only", action="store_true",
                    help="re-measure only the 1-vs-2-process scaling into an existing --out")
    ap.add_argument("--repeat-all-four", action="store_true",
                    help="measure the four together once more (all_four_repeats in an "
                         "existing --out); the machine's speed drifts between runs")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).parent))
    from common import machine

    docs = load_corpus(args.corpus, args.limit, args.sample, args.seed)
    if args.processes_only or args.repeat_all_four:
        result = json.loads(args.out.read_text())
        if args.processes_only:
            result["processes"] = process_scaling(docs)
        else:
            with written_inputs(docs) as inputs:
                dt, cur = measure_pair(list(RULE_SETS), inputs, args.repeats)
            repeat = {**speed(len(docs), dt, cur, TARGETS["speedup_all_four"]),
                      "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            result.setdefault("all_four_repeats", []).append(repeat)
            print(f"all four, repeated: speedup {repeat['speedup']:.1f}x", flush=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return result
    n = len(docs)
    chars = sum(len(d["text"]) for d in docs)
    print(f"{n} documents, {chars} characters", flush=True)
    with written_inputs(docs) as inputs:
        result = measure_rule_sets(docs, inputs, args.repeats)
    result["clock"] = CLOCK
    result["processes"] = process_scaling(docs)
    result["corpus"] = {"path": str(args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(
        ROOT) else args.corpus), "documents": n, "characters": chars, "limit": args.limit,
        "sample": args.sample, "seed": args.seed if args.sample else None}
    result["targets"] = TARGETS
    result["machine"] = machine()
    result["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    tmp_out.replace(args.out)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
