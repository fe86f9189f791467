"""Near-duplicate detection: curate's MinHashDup against datasketch, on real text.

Corpus: documents of 150-600 words cut from text on this machine (Vim's help files
split at their section rules, and the docstrings of the Python standard library
and installed packages, packed per source file), exact duplicates removed. Into
it we plant near-duplicate pairs: a copy of a document edited by random word
substitutions, deletions and insertions until the exact Jaccard similarity of the
two documents' 5-word shingle sets reaches a target drawn uniformly from
[0.8, 1.0) (every planted pair has exact Jaccard >= 0.8; its value is recorded).
The rows are shuffled with a fixed seed.

Both methods use the same shingles (lowercased words = runs of Unicode letters,
marks, digits and ``_``; 5-word shingles), 128 permutations, LSH with 16 bands x
8 rows, verification of candidates by estimated Jaccard >= curate's cutoff, and
the first document of each connected component as representative.

* curate: ``MinHashDup.score_batch`` over batches of 2,000, then ``finalize``.
* datasketch: Python tokenisation and shingle strings, ``MinHash.update_batch``,
  ``MinHashLSH(params=(16, 8))`` insert (insertion session) and query of every
  document, verification with ``MinHash.jaccard`` and a union-find.

Scoring rule. Recall: the fraction of planted pairs whose two documents end in
one cluster. Precision: every pair of documents in a common cluster is a found
pair; it is correct if it is planted or if the exact Jaccard of its shingle sets
is >= 0.5 (a near duplicate already in the source text), and false otherwise.
We also report the strict variant (correct only if planted or exact Jaccard >= 0.8).

Run: ``python benchmarks/bench_minhash.py [--docs 20000] [--pairs 2000]``; writes
``benchmarks/results/minhash.json``.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import platform
import random
import sys
import sysconfig
import time
import warnings
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow as pa
import regex
from datasketch import MinHash, MinHashLSH

from scorers.dedup import MinHashDup
from scorers.dedup.shingles import WORD_PATTERN

NGRAM, NUM_PERM, BANDS, THRESHOLD, SEED = 5, 128, 16, 0.8, 1
MIN_WORDS, MAX_WORDS = 150, 600
FALSE_BELOW, STRICT = 0.5, 0.8
WORD = regex.compile(WORD_PATTERN)
RESULTS = Path(__file__).parent / "results" / "minhash.json"


# ---------------------------------------------------------------- corpus


def _pack(paragraphs: list[str]) -> list[str]:
    """Join consecutive paragraphs into documents of MIN_WORDS..MAX_WORDS words."""
    docs, current, words = [], [], 0
    for para in paragraphs:
        n = len(para.split())
        if current and words + n > MAX_WORDS:
            if words >= MIN_WORDS:
                docs.append("\n\n".join(current))
            current, words = [], 0
        current.append(para)
        words += n
        if words >= MIN_WORDS:
            docs.append("\n\n".join(current))
            current, words = [], 0
    return [d for d in docs if len(d.split()) <= MAX_WORDS]


def vim_documents() -> list[str]:
    """Vim help files cut at their ``====`` / ``----`` section rules, then packed."""
    docs = []
    for path in sorted(glob.glob("/usr/share/vim/vim*/doc/*.txt")):
        text = Path(path).read_text(errors="replace")
        for section in regex.split(r"\n[=-]{20,}\n", text):
            docs.extend(_pack([p for p in regex.split(r"\n\s*\n", section) if p.strip()]))
    return docs


def docstring_documents(limit: int) -> list[str]:
    """Docstrings of Python files (stdlib, then site-packages), packed per file."""
    roots = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]]
    docs: list[str] = []
    for root in roots:
        for path in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tree = ast.parse(Path(path).read_bytes())
            except (SyntaxError, ValueError, OSError):
                continue
            paragraphs = []
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        paragraphs.extend(p for p in regex.split(r"\n\s*\n", doc) if p.strip())
            docs.extend(_pack(paragraphs))
            if len(docs) >= limit:
                return docs
    return docs


def tokens(text: str) -> list[str]:
    return WORD.findall(text.lower())


def shingle_set(words: list[str]) -> set[str]:
    if len(words) < NGRAM:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def edited_copy(text: str, target: float, vocab: list[str], rng: random.Random
                ) -> tuple[str, float]:
    """Edit random words of ``text`` while the shingle Jaccard stays >= ``target``.

    The first edit is kept whenever it stays >= 0.8, so every copy differs from its original.
    """
    original = shingle_set(tokens(text))
    current, value = text, 1.0
    for _ in range(200):
        spans = [m.span() for m in WORD.finditer(current)]
        start, end = spans[rng.randrange(len(spans))]
        op = rng.choice(("substitute", "delete", "insert"))
        word = rng.choice(vocab)
        if op == "substitute":
            candidate = current[:start] + word + current[end:]
        elif op == "delete":
            candidate = current[:start] + current[end:]
        else:
            candidate = current[:end] + " " + word + current[end:]
        score = jaccard(original, shingle_set(tokens(candidate)))
        if score < (target if current != text else STRICT):
            break
        current, value = candidate, score
    return current, value


def build_corpus(n_docs: int, n_pairs: int, seed: int):
    """Shuffled texts, planted pairs (row positions), their exact Jaccard, and sources."""
    base = vim_documents()
    n_vim = len(base)
    base += docstring_documents(n_docs - len(base) + 2000)
    seen, unique = set(), []
    for doc in base:
        key = " ".join(tokens(doc))
        if key not in seen:
            seen.add(key)
            unique.append(doc)
    rng = random.Random(seed)
    unique = unique[:n_docs]
    vocab = sorted({w for doc in unique[:2000] for w in tokens(doc)})
    originals = rng.sample(range(len(unique)), n_pairs)
    texts, planted, values = list(unique), [], []
    for i in originals:
        copy, value = edited_copy(unique[i], rng.uniform(STRICT, 1.0), vocab, rng)
        planted.append((i, len(texts)))
        values.append(value)
        texts.append(copy)
    order = list(range(len(texts)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    texts = [texts[old] for old in order]
    planted = [(position[a], position[b]) for a, b in planted]
    return texts, planted, values, {"vim_sections": min(n_vim, len(unique)),
                                    "python_docstrings": max(0, len(unique) - n_vim)}


# ---------------------------------------------------------------- methods


def run_curate(texts: list[str]) -> tuple[np.ndarray, float]:
    scorer = MinHashDup(ngram=NGRAM, num_perm=NUM_PERM, bands=BANDS, threshold=THRESHOLD,
                        seed=SEED)
    table = pa.table({"text": texts})
    start = time.perf_counter()
    parts = [scorer.score_batch(table.slice(i, scorer.batch_size))
             for i in range(0, len(texts), scorer.batch_size)]
    scores = pa.concat_tables(parts).combine_chunks()
    scores = scores.add_column(0, "id", pa.array(np.arange(len(texts))))
    out = scorer.finalize(scores)
    elapsed = time.perf_counter() - start
    return out.column("minhash_cluster").to_numpy(), elapsed


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def run_datasketch(texts: list[str], cutoff: float) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    sketches = []
    for text in texts:
        shingles = shingle_set(tokens(text))
        if shingles:
            m = MinHash(num_perm=NUM_PERM, seed=SEED)
            m.update_batch([s.encode("utf-8") for s in shingles])
            sketches.append(m)
        else:
            sketches.append(None)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=(BANDS, NUM_PERM // BANDS))
    with lsh.insertion_session() as session:
        for i, m in enumerate(sketches):
            if m is not None:
                session.insert(i, m, check_duplication=False)
    parent = list(range(len(texts)))
    for i, m in enumerate(sketches):
        if m is None:
            continue
        for j in lsh.query(m):
            if j != i and m.jaccard(sketches[j]) >= cutoff:
                a, b = _find(parent, i), _find(parent, j)
                if a != b:  # the smaller root wins, so the root is the first document
                    parent[max(a, b)] = min(a, b)
    clusters = np.array([_find(parent, i) for i in range(len(texts))])
    return clusters, time.perf_counter() - start


# ---------------------------------------------------------------- scoring


def evaluate(clusters: np.ndarray, planted: list[tuple[int, int]], values: list[float],
             shingles: list[set]) -> dict:
    """Precision and recall of the clustering under the rule in the module docstring."""
    found = np.array([clusters[a] == clusters[b] for a, b in planted])
    planted_set = {tuple(sorted(p)) for p in planted}
    members: dict[int, list[int]] = {}
    for row, cluster in enumerate(clusters):
        members.setdefault(int(cluster), []).append(row)
    counts = {"planted": 0, "natural_ge_0.8": 0, "grey_0.5_0.8": 0, "false_lt_0.5": 0}
    for rows in members.values():
        for x in range(len(rows)):
            for y in range(x + 1, len(rows)):
                if (rows[x], rows[y]) in planted_set:
                    counts["planted"] += 1
                    continue
                j = jaccard(shingles[rows[x]], shingles[rows[y]])
                key = ("natural_ge_0.8" if j >= STRICT else
                       "grey_0.5_0.8" if j >= FALSE_BELOW else "false_lt_0.5")
                counts[key] += 1
    total = sum(counts.values())
    values = np.array(values)
    bins = [0.8, 0.85, 0.9, 0.95, 1.0001]
    recall_by_bin = {}
    for lo, hi in zip(bins[:-1], bins[1:]):
        mask = (values >= lo) & (values < hi)
        recall_by_bin[f"{lo:.2f}-{min(hi, 1.0):.2f}"] = (
            round(float(found[mask].mean()), 4) if mask.any() else None)
    return {
        "recall": round(float(found.mean()), 4),
        "precision": round(1 - counts["false_lt_0.5"] / total, 4) if total else 1.0,
        "precision_strict": round((counts["planted"] + counts["natural_ge_0.8"]) / total, 4)
        if total else 1.0,
        "found_pairs": total,
        "found_pairs_by_kind": counts,
        "recall_by_planted_jaccard": recall_by_bin,
        "duplicates_flagged": int((clusters != np.arange(len(clusters))).sum()),
    }


def machine() -> dict:
    packages = ["numpy", "pyarrow", "xxhash", "scipy", "datasketch", "regex"]
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
            "packages": {p: version(p) for p in packages}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000, help="unrelated source documents")
    parser.add_argument("--pairs", type=int, default=2_000, help="planted near-duplicate pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t0 = time.perf_counter()
    texts, planted, values, sources = build_corpus(args.docs, args.pairs, args.seed)
    words = [len(tokens(t)) for t in texts]
    print(f"corpus: {len(texts)} documents ({sources}), {sum(words)} words, "
          f"{len(planted)} planted pairs, built in {time.perf_counter() - t0:.1f}s", flush=True)

    cutoff = MinHashDup(num_perm=NUM_PERM, threshold=THRESHOLD).verify_cutoff
    curate_clusters, curate_s = run_curate(texts)
    print(f"curate: {curate_s:.2f}s", flush=True)
    ds_clusters, ds_s = run_datasketch(texts, cutoff)
    print(f"datasketch: {ds_s:.2f}s", flush=True)

    shingles = [shingle_set(tokens(t)) for t in texts]
    curate_eval = evaluate(curate_clusters, planted, values, shingles)
    ds_eval = evaluate(ds_clusters, planted, values, shingles)
    vals = np.array(values)
    result = {
        "benchmark": "minhash near-duplicate detection",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "corpus": {
            "documents": len(texts), "sources": sources, "words": int(sum(words)),
            "words_per_document_mean": round(float(np.mean(words)), 1),
            "planted_pairs": len(planted),
            "planted_exact_jaccard": {
                "min": round(float(vals.min()), 4), "mean": round(float(vals.mean()), 4),
                "max": round(float(vals.max()), 4),
                "histogram": dict(zip([f"{x:.2f}" for x in np.arange(0.8, 1.0, 0.05)],
                                      np.histogram(vals, bins=[0.8, 0.85, 0.9, 0.95, 1.0001]
                                                   )[0].tolist()))},
            "seed": args.seed,
        },
        "parameters": {"ngram": NGRAM, "num_perm": NUM_PERM, "bands": BANDS,
                       "rows": NUM_PERM // BANDS, "threshold": THRESHOLD,
                       "verify_cutoff": round(cutoff, 4), "seed": SEED},
        "rule": (f"recall = planted pairs in one cluster / planted pairs; a found pair (two "
                 f"documents in one cluster) is false when not planted and its exact shingle "
                 f"Jaccard < {FALSE_BELOW}; precision_strict also counts "
                 f"{FALSE_BELOW} <= J < {STRICT} as false"),
        "curate": {"seconds": round(curate_s, 3),
                   "docs_per_second": round(len(texts) / curate_s, 1), **curate_eval},
        "datasketch": {"seconds": round(ds_s, 3),
                       "docs_per_second": round(len(texts) / ds_s, 1), **ds_eval},
        "speedup_vs_datasketch": round(ds_s / curate_s, 2),
        "targets": {"precision_recall_min": 0.95, "speedup_min": 2.0},
    }
    result["targets_met"] = {
        "precision": curate_eval["precision"] >= 0.95,
        "recall": curate_eval["recall"] >= 0.95,
        "speedup": result["speedup_vs_datasketch"] >= 2.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps({k: result[k] for k in ("curate", "datasketch", "speedup_vs_datasketch")},
                     indent=2))


if __name__ == "__main__":
    main()
