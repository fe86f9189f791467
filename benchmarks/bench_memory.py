"""Peak memory while scoring a large JSONL with the four rule sets.

Builds a JSONL file of the requested size from the parity corpus (documents are
repeated with a running suffix so that ids stay unique), then runs
``curate score`` with gopher_quality, gopher_repetition, c4_quality and
fineweb_quality in a subprocess and samples the resident memory of its whole
process tree (workers included) every 50 ms.

    python benchmarks/bench_memory.py --size-gb 1 --workers 2

Target: peak RSS under 1.5 GB for a 1 GB file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

RULES = ["gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality"]


def build_big_jsonl(corpus: Path, target: Path, size_bytes: int) -> int:
    with gzip.open(corpus, "rt", encoding="utf-8") as fh:
        docs = [json.loads(line)["text"] for line in fh]
    written = count = 0
    with open(target, "w", encoding="utf-8") as out:
        while written < size_bytes:
            for text in docs:
                line = json.dumps({"id": count, "text": f"{text}\n{count}"},
                                  ensure_ascii=False) + "\n"
                out.write(line)
                written += len(line.encode("utf-8"))
                count += 1
                if written >= size_bytes:
                    break
    return count


def peak_tree_memory(cmd: list[str]) -> tuple[int, int, float, int]:
    """Run ``cmd``; return (peak summed RSS, peak summed PSS of its process tree in bytes,
    seconds, exit code).

    Forked workers share pages with their parent; summed RSS counts shared pages once
    per process (an overestimate), PSS splits them between the processes sharing them.
    """
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        try:
            tree = [p for p in (proc, *proc.children(recursive=True)) if p.is_running()]
            infos = [p.memory_full_info() for p in tree]
            peak_rss = max(peak_rss, sum(i.rss for i in infos))
            peak_pss = max(peak_pss, sum(i.pss for i in infos))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if proc.returncode:
        sys.stderr.write(proc.stderr.read().decode())
    return peak_rss, peak_pss, time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="benchmarks/data/parity_corpus.jsonl.gz")
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="benchmarks") as tmp:
        big = Path(tmp) / "big.jsonl"
        docs = build_big_jsonl(Path(args.corpus), big, int(args.size_gb * 1e9))
        cmd = [sys.executable, "-m", "curate.cli", "score", str(big), "-o", f"{tmp}/scores",
               "-j", str(args.workers), *[a for r in RULES for a in ("-s", r)]]
        rss, pss, seconds, code = peak_tree_memory(cmd)
        result = {"file_bytes": big.stat().st_size, "documents": docs, "workers": args.workers,
                  "scorers": RULES, "peak_rss_sum_gb": round(rss / 1e9, 3),
                  "peak_pss_sum_gb": round(pss / 1e9, 3), "seconds": round(seconds, 1),
                  "docs_per_second": round(docs / seconds, 1), "exit_code": code,
                  "target_peak_gb": 1.5,
                  "meets_target_by_rss_sum": code == 0 and rss < 1.5e9}
    print(json.dumps(result, indent=2))
    write_result("memory", result)


if __name__ == "__main__":
    main()
