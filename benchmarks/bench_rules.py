"""Agreement and speed of curate's rule-set scorers against DataTrove 0.10.1.

For each rule set (Gopher quality, Gopher repetition, C4, FineWeb) this runs DataTrove's
filter (``.filter(Document(...))``, spaCy tokenization) and curate's scorer on the same
documents, in the same process, and reports:

* agreement: share of documents with the same keep/drop decision, and with the same
  reason; for C4 also the share of documents kept by both whose cleaned text is equal;
  every disagreement is listed (document id, both decisions and reasons);
* speed on one core, documents per CPU-second of this process (``time.process_time``,
  which other jobs on a shared machine do not inflate): each rule set alone, and the four
  together
  (DataTrove: the four filters in sequence on each document; curate: the four scorers on
  each batch, sharing one tokenization per text through ``scorers.text.tokenize``'s
  per-text memo). curate's caches are emptied before every timed run;
* curate's four scorers in a process pool of 2 versus a pool of 1 (same batches, workers
  start with empty caches); this one is wall-clock time, so the load average is recorded.

Usage::

    python benchmarks/bench_rules.py [--corpus PATH] [--limit N] [--sample N]

``--sample N`` draws N documents with ``random.Random(seed)`` (the JSON states it);
``--limit N`` takes the first N (quick runs). Writes ``benchmarks/results/rules.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scorers.text import tokenize  # noqa: E402
from scorers.text.c4 import C4Quality  # noqa: E402
from scorers.text.fineweb import FineWebQuality  # noqa: E402
from scorers.text.gopher import GopherQuality, GopherRepetition  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

RULE_SETS = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality")
BATCH = 500
POOL_BATCH = 100  # smaller batches keep two workers evenly busy


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


def datatrove_filters() -> dict:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    return {"gopher_quality": GopherQualityFilter(),
            "gopher_repetition": GopherRepetitionFilter(),
            "c4_quality": C4QualityFilter(),
            "fineweb_quality": FineWebQualityFilter()}


def curate_scorers() -> dict:
    return {"gopher_quality": GopherQuality(), "gopher_repetition": GopherRepetition(),
            "c4_quality": C4Quality(), "fineweb_quality": FineWebQuality()}


def run_datatrove(flt, docs: list[dict]) -> tuple[list[tuple], float]:
    """[(keep, reason, text after the filter)] and the CPU seconds spent inside ``filter``."""
    from datatrove.data import Document
    out, spent = [], 0.0
    for d in docs:
        doc = Document(text=d["text"], id=d["id"])
        start = time.process_time()
        res = flt.filter(doc)
        spent += time.process_time() - start
        keep, reason = (res, None) if not isinstance(res, tuple) else res
        out.append((bool(keep), reason, doc.text))
    return out, spent


def batches(docs: list[dict], size: int = BATCH) -> list[pa.Table]:
    return [pa.table({"text": [d["text"] for d in docs[i:i + size]]})
            for i in range(0, len(docs), size)]


def run_curate(scorers: list, tables: list[pa.Table]) -> tuple[dict, float]:
    """Scores of each scorer (concatenated) and the CPU seconds spent, from empty caches."""
    tokenize.clear_caches()
    parts: dict[str, list] = {s.name: [] for s in scorers}
    start = time.process_time()
    for table in tables:
        for s in scorers:
            parts[s.name].append(s.score_batch(table))
    spent = time.process_time() - start
    return {k: pa.concat_tables(v) for k, v in parts.items()}, spent


CLOCK = ("process CPU time, each measurement in a freshly spawned process so that neither "
         "spaCy's nor curate's tokenization caches carry over between measurements")


def _timed_run(system: str, names: list[str], docs: list[dict]) -> float:
    """CPU seconds for ``system`` to apply rule sets ``names`` to ``docs`` (run in a child)."""
    if system == "datatrove":
        from datatrove.data import Document

        order = [datatrove_filters()[k] for k in names]
        start = time.process_time()
        for d in docs:
            doc = Document(text=d["text"], id=d["id"])
            for flt in order:
                flt.filter(doc)
        return time.process_time() - start
    all_scorers = curate_scorers()
    _, spent = run_curate([all_scorers[k] for k in names], batches(docs))
    return spent


def fresh_process_seconds(system: str, names: list[str], docs: list[dict]) -> float:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_timed_run, (system, list(names), docs))


def _score_four(table: pa.Table) -> int:
    for s in curate_scorers().values():
        s.score_batch(table)
    return table.num_rows


def pool_seconds(tables: list[pa.Table], processes: int) -> float:
    ctx = mp.get_context("fork")
    with ctx.Pool(processes, initializer=tokenize.clear_caches) as pool:
        pool.map(abs, range(processes))  # start the workers before timing
        start = time.perf_counter()
        done = sum(pool.imap_unordered(_score_four, tables, chunksize=1))
        spent = time.perf_counter() - start
    assert done == sum(t.num_rows for t in tables)
    return spent


def compare(name: str, docs: list[dict], dt: list[tuple], scores: pa.Table,
            cleaned: list[str] | None) -> dict:
    keep = scores.column(f"{name}_keep").to_pylist()
    reason = scores.column(f"{name}_reason").to_pylist()
    n = len(docs)
    same_keep = sum(k == d[0] for k, d in zip(keep, dt))
    same_reason = sum(r == d[1] for r, d in zip(reason, dt))
    disagreements = [{"id": doc["id"], "datatrove": {"keep": d[0], "reason": d[1]},
                      "curate": {"keep": k, "reason": r}}
                     for doc, d, k, r in zip(docs, dt, keep, reason) if d[0] != k or d[1] != r]
    out = {"documents": n, "kept_datatrove": sum(d[0] for d in dt), "kept_curate": sum(keep),
           "keep_agreement": same_keep / n, "reason_agreement": same_reason / n,
           "disagreements": disagreements}
    if cleaned is not None:
        both = [i for i in range(n) if dt[i][0] and keep[i]]
        equal = sum(dt[i][2] == cleaned[i] for i in both)
        out["cleaned_text_equal_rate"] = equal / len(both) if both else None
        out["cleaned_text_compared"] = len(both)
        out["cleaned_text_differences"] = [docs[i]["id"] for i in both
                                           if dt[i][2] != cleaned[i]]
    return out


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


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path,
                    default=ROOT / "benchmarks/data/parity_corpus.jsonl.gz")
    ap.add_argument("--limit", type=int, default=None, help="first N documents only")
    ap.add_argument("--sample", type=int, default=None, help="N documents drawn at random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/rules.json")
    ap.add_argument("--processes-only", action="store_true",
                    help="re-measure only the 1-vs-2-process scaling into an existing --out")
    args = ap.parse_args(argv)

    docs = load_corpus(args.corpus, args.limit, args.sample, args.seed)
    if args.processes_only:
        result = json.loads(args.out.read_text())
        result["processes"] = process_scaling(docs)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return result
    n = len(docs)
    chars = sum(len(d["text"]) for d in docs)
    print(f"{n} documents, {chars} characters", flush=True)
    tables = batches(docs)
    filters = datatrove_filters()
    scorers = curate_scorers()

    result = {"rule_sets": {}}
    for name in RULE_SETS:
        dt, _ = run_datatrove(filters[name], docs)
        scores, _ = run_curate([scorers[name]], tables)
        cleaned = None
        if name == "c4_quality":
            cleaned = scorers[name].transform([d["text"] for d in docs])
        entry = compare(name, docs, dt, scores[name], cleaned)
        dt_s = fresh_process_seconds("datatrove", [name], docs)
        cur_s = fresh_process_seconds("curate", [name], docs)
        entry["speed"] = {"datatrove_docs_per_s": n / dt_s, "curate_docs_per_s": n / cur_s,
                          "speedup": dt_s / cur_s, "clock": CLOCK}
        result["rule_sets"][name] = entry
        print(f"{name}: keep agreement {entry['keep_agreement']:.4%}, reason agreement "
              f"{entry['reason_agreement']:.4%}, speedup {dt_s / cur_s:.1f}x "
              f"({n / dt_s:.0f} vs {n / cur_s:.0f} docs/s)", flush=True)

    # The four together. DataTrove: the four filters in sequence on each document (its
    # split_into_words lru_cache(5) lets later filters reuse the first tokenization).
    dt_all = fresh_process_seconds("datatrove", RULE_SETS, docs)
    cur_all = fresh_process_seconds("curate", RULE_SETS, docs)
    result["all_four"] = {"datatrove_docs_per_s": n / dt_all, "curate_docs_per_s": n / cur_all,
                          "speedup": dt_all / cur_all, "clock": CLOCK,
                          "sharing": "one tokenization per text, shared by the four scorers "
                                     "through tokenize.text_words' per-text memo"}
    print(f"all four: speedup {dt_all / cur_all:.1f}x", flush=True)

    result["processes"] = process_scaling(docs)

    result["corpus"] = {"path": str(args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(
        ROOT) else args.corpus), "documents": n, "characters": chars, "limit": args.limit,
        "sample": args.sample, "seed": args.seed if args.sample else None}
    result["targets"] = {"agreement": 0.995, "speedup_per_rule_set": 5.0,
                         "speedup_all_four": 10.0, "speedup_2_processes": 1.8}
    result["machine"] = machine()
    result["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
