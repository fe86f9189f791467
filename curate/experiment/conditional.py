"""Tag, don't drop: conditional training with control tokens (Korbak et al. 2023).

Every training document is cut into segments (paragraphs, lines, or whole documents).
A registered scorer scores each segment and curate's ``tag`` filter turns the scores into
tags by its rules (e.g. ``good`` when ``langid_language = 'en'``, else ``bad``). Three
arms train the same GPT for the same number of tokens:

- ``conditional``: every document, each segment prefixed with its control token
  ``<|tag|>`` (a random ``untagged`` share of segments, default 1%, left without one);
- ``plain``: every document as it is;
- ``filtered``: only the segments tagged ``good`` (documents left empty are dropped).

Each trained model writes ``samples`` texts from a new document (the conditional arm
prompted with ``<|good|>``; every control token banned from sampling). The same scorer
and rules score the generations: the **unwanted rate** is the share of non-empty
generations not tagged ``good``. Held-out bits per byte are measured on untagged text.
Rates and bits per byte are compared with ``plain``, paired by seed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.hashing import table_hash
from curate.experiment.cells import Scores, as_train_config, seed_list, summarize_rows
from curate.experiment.outputs import ExperimentResult, write_result
from curate.experiment.text import (
    LMCell,
    batches_of,
    curve_rows,
    curves_figure,
    describe,
    generation_rows,
    heldout_pools,
    paired_differences,
    read_text_table,
    run_lm_cells,
    slice_rows,
    slice_table,
    timing,
    tokenizer_for,
)
from curate.reporting import interval_text, markdown_table

ARMS = ("conditional", "plain", "filtered")
SEGMENTS = ("paragraph", "line", "document")
PLOT = "curves.png"


@dataclass(kw_only=True)
class ConditionalResult(ExperimentResult):
    """``results`` (arm, seed, slice, loss, bpb, ...), ``rates`` (per run: samples, empty,
    unwanted, rate), ``rate_summary``/``rate_paired`` and ``bpb_summary``/``bpb_paired``
    (over seeds, against ``plain``), ``generations`` (every sample with its tag),
    ``segments`` (tag counts of the training segments), ``curves``, ``timing``,
    ``settings``."""

    results: pa.Table
    rates: pa.Table
    rate_summary: pa.Table
    rate_paired: pa.Table
    bpb_summary: pa.Table
    bpb_paired: pa.Table
    generations: pa.Table
    segments: pa.Table
    curves: pa.Table
    timing: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def tables(self) -> dict:
        return {"results.csv": self.results, "rates.csv": self.rates,
                "rate_summary.csv": self.rate_summary, "rate_paired.csv": self.rate_paired,
                "summary.csv": self.bpb_summary, "paired.csv": self.bpb_paired,
                "generations.parquet": self.generations, "segments.csv": self.segments,
                "curves.csv": self.curves, "timing.csv": pa.Table.from_pylist(self.timing)}

    def figures(self) -> dict:
        return {PLOT: curves_figure(self.curves, "arm")}

    def markdown(self) -> str:
        return report_markdown(self)


def split_segments(text: str, how: str, min_chars: int) -> list[str]:
    """``text`` cut into segments whose concatenation is ``text``: at blank lines
    (``paragraph``) or line ends (``line``), consecutive pieces merged until each holds
    at least ``min_chars`` characters; ``document`` keeps it whole."""
    if how == "document" or not text:
        return [text]
    pattern = r"(?<=\n)(?=\s*\n)" if how == "paragraph" else r"(?<=\n)"
    pieces = [p for p in re.split(pattern, text) if p]
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) < min_chars:
            out[-1] += piece
        else:
            out.append(piece)
    if len(out) > 1 and len(out[-1]) < min_chars:
        last = out.pop()
        out[-1] += last
    return out


def conditional_training(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
                         progress: bool = False, scores: dict | None = None, selection=None,
                         score, tags, default: str = "bad", good: str = "good",
                         segment: str = "paragraph", min_segment_chars: int = 200,
                         untagged: float = 0.01, arms=ARMS, samples: int = 64,
                         max_new_tokens: int = 256, temperature: float = 1.0,
                         top_k: int | None = None, prompt: str = "",
                         tokenizer: str = "bytes", text_column: str = "text",
                         slice_column: str = "slice") -> ConditionalResult:
    """Train the ``arms`` (see the module notes) for every seed; write the tables,
    ``curves.png`` and ``report.md`` to ``out_dir``.

    ``score``: the scorer of segments and generations (a name, ``"name:k=v"`` or a
    mapping with ``name``); ``tags``: the ``tag`` filter's rules
    (``[{"when": SQL, "tag": NAME}]``), ``default`` the tag when none matches and
    ``good`` the wanted tag. ``scores`` and ``selection`` are not used (segments are
    scored here).
    """
    from curate.experiment import _score_spec
    from curate.train.lm import LMConfig, pack_pool

    start = time.perf_counter()
    config = as_train_config(train_config, LMConfig)
    seeds = seed_list(seeds)
    _check(segment, arms, untagged, samples, good, tags, default)
    score_name, score_params = _score_spec(score)
    tagger = _tagger(tags, default)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = read_text_table(data, text_column, "training data")
    test = read_text_table(test_data, text_column, "held-out data")

    docs = table.column(text_column).to_pylist()
    pieces = [split_segments(t or "", segment, min_segment_chars) for t in docs]
    owner = np.repeat(np.arange(len(docs)), [len(p) for p in pieces])
    flat = [s for p in pieces for s in p]
    seg_table = pa.table({"id": [f"s{i}" for i in range(len(flat))],
                          text_column: flat})
    scored = _TextScores(Cache(out / "scores"), score_name, score_params, tagger, text_column)
    seg_tags = scored.tags(seg_table)
    names = sorted((set(seg_tags) | {good, default}) - {None})
    control = [f"<|{t}|>" for t in names]
    leave = np.random.default_rng(0).random(len(flat)) < untagged
    arm_texts = {"plain": docs,
                 "conditional": _joined(pieces, owner, [
                     s if (leave[i] or seg_tags[i] is None) else f"<|{seg_tags[i]}|>{s}"
                     for i, s in enumerate(flat)]),
                 "filtered": [d for d in _joined(pieces, owner, [
                     s if seg_tags[i] == good else "" for i, s in enumerate(flat)]) if d]}

    tok = tokenizer_for(tokenizer, table.column(text_column), out, control=control)
    cache = out / "tokens"
    heldout = heldout_pools(test, text_column, slice_column, tok, cache)
    cells = []
    for arm in arms:
        pool = pack_pool(batches_of(arm_texts[arm]), tok, cache=cache, name=arm)
        first = f"<|{good}|>" if arm == "conditional" else ""
        spec = {"tokenizer": str(out / "tokenizer.json"), "prompts": [first + prompt] * samples,
                "max_new_tokens": max_new_tokens, "temperature": temperature,
                "top_k": top_k, "banned": control}
        for seed in seeds:
            cells.append(LMCell(stub={"arm": arm, "seed": seed}, pool=pool,
                                generate={**spec, "seed": seed}))
    records = run_lm_cells(cells, config, heldout, out / "cells", workers=workers,
                           progress=progress)
    generations = _generations(records, scored, text_column, good)
    rates = _rates(generations, records)
    rows = slice_rows(records, heldout, ("arm",))
    counts = {t: int(sum(1 for x in seg_tags if x == t)) for t in names}
    result = ConditionalResult(
        results=pa.Table.from_pylist(rows),
        rates=pa.Table.from_pylist(rates),
        rate_summary=summarize_rows(rates, ("arm",), value="rate"),
        rate_paired=paired_differences(rates, "arm", "plain", "rate")
        if "plain" in arms else pa.table({}),
        bpb_summary=summarize_rows(rows, ("arm", "slice"), value="bpb"),
        bpb_paired=paired_differences(rows, "arm", "plain", "bpb", by=("slice",))
        if "plain" in arms else pa.table({}),
        generations=generations,
        segments=pa.table({"tag": list(counts), "segments": list(counts.values()),
                           "share": [v / len(flat) for v in counts.values()]}),
        curves=pa.Table.from_pylist(curve_rows(records, heldout, ("arm",))),
        timing=timing(records, ("arm",)),
        settings={"data": describe(data), "test_data": describe(test_data),
                  "score": score, "tags": tags, "default": default, "good": good,
                  "segment": segment, "untagged": untagged, "samples": samples,
                  "max_new_tokens": max_new_tokens, "temperature": temperature,
                  "top_k": top_k, "tokenizer": tokenizer, "config": config.as_dict(),
                  "seeds": seeds, "segments": len(flat), "untagged_segments": int(leave.sum()),
                  "documents": {a: len(arm_texts[a]) for a in arms},
                  "parameters": records[0]["final"]["parameters"],
                  "precision": records[0]["final"]["precision"]},
        trained=sum(not r["reused"] for r in records),
        reused=sum(r["reused"] for r in records),
        scores_computed=scored.computed, scores_reused=scored.reused)
    result.seconds = time.perf_counter() - start
    write_result(result, out)
    return result


def check_conditional_params(params: dict, *, selection: bool = False) -> None:
    """Check conditional-training's own parameters before anything is read: the segment
    kind, arms, shares, tags (built as a ``tag`` filter) and the scorer's name and
    parameters."""
    from curate.core.registry import make_scorer
    from curate.experiment import _score_spec

    _check(params.get("segment", "paragraph"), params.get("arms", ARMS),
           params.get("untagged", 0.01), params.get("samples", 64), params.get("good", "good"),
           params.get("tags"), params.get("default", "bad"))
    _tagger(params["tags"], params.get("default", "bad"))
    name, score_params = _score_spec(params["score"])
    try:
        make_scorer(name, score_params)
    except CurateError as exc:
        raise CurateError(f"conditional-training: score: {exc}") from None


def _check(segment, arms, untagged, samples, good, tags, default) -> None:
    if segment not in SEGMENTS:
        raise CurateError(f"conditional-training: segment must be one of "
                          f"{', '.join(SEGMENTS)}, got {segment!r}")
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms or len(set(arms)) != len(arms):
        raise CurateError(f"conditional-training: arms must be distinct names among "
                          f"{', '.join(ARMS)}, got {list(arms)}")
    if not 0 <= untagged < 1:
        raise CurateError(f"conditional-training: untagged must be in [0, 1), got {untagged}")
    if not isinstance(samples, int) or samples < 1:
        raise CurateError(f"conditional-training: samples must be a positive integer, got "
                          f"{samples!r}")
    if good == default:
        raise CurateError(f"conditional-training: the default tag {default!r} must differ "
                          f"from the good tag")
    if not isinstance(tags, (list, tuple)) or not tags:
        raise CurateError("conditional-training: tags must be a non-empty list of rules "
                          "({when: SQL, tag: NAME})")


def _tagger(tags, default):
    from curate.core.registry import FILTERS, build

    try:
        return build(FILTERS, "tag", {"rules": list(tags), "default": default})
    except CurateError as exc:
        raise CurateError(f"conditional-training: {exc}") from None


class _TextScores:
    """Tags of text tables by one scorer and the tag rules, each table's scores cached in
    ``cache`` under its own content hash; ``computed``/``reused`` count the tables."""

    def __init__(self, cache: Cache, name: str, params: dict, tagger, text_column: str):
        self.cache, self.name, self.tagger = cache, name, tagger
        self.params = params if text_column == "text" else {**params,
                                                            "text_column": text_column}
        self.computed = self.reused = 0

    def tags(self, texts: pa.Table) -> list:
        """The tag of every row of ``texts`` (``id`` and the text column)."""
        scores = Scores(self.cache, {"data": table_hash(texts), "curate": _version()})
        table = scores.get(self.name, self.params, texts)
        self.computed += scores.computed
        self.reused += scores.reused
        return self.tagger.decide(table).tag.to_pylist()


def _joined(pieces: list[list[str]], owner: np.ndarray, segments: list[str]) -> list[str]:
    """One text per document: its ``segments`` (flat, in order; ``owner`` their document)
    joined."""
    parts: list[list[str]] = [[] for _ in pieces]
    for doc, seg in zip(owner.tolist(), segments):
        parts[doc].append(seg)
    return ["".join(p) for p in parts]


def _generations(records, scored: _TextScores, text_column, good) -> pa.Table:
    rows = generation_rows(records, "arm")
    texts = pa.table({"id": [r["id"] for r in rows], text_column: [r["text"] for r in rows]})
    nonempty = [bool(r["text"].strip()) for r in rows]
    tags = scored.tags(texts) if rows else []
    for row, tag, full in zip(rows, tags, nonempty):
        row["tag"] = tag if full else None
        row["unwanted"] = bool(full and tag != good)
    return pa.Table.from_pylist(rows)


def _rates(generations: pa.Table, records) -> list[dict]:
    rows = generations.to_pylist()
    out = []
    for r in records:
        mine = [g for g in rows if (g["arm"], g["seed"]) == (r["arm"], r["seed"])]
        full = [g for g in mine if g["text"].strip()]
        unwanted = sum(g["unwanted"] for g in full)
        out.append({"arm": r["arm"], "seed": r["seed"], "samples": len(mine),
                    "empty": len(mine) - len(full), "unwanted": unwanted,
                    "rate": unwanted / len(full) if full else float("nan")})
    return out


def _version() -> str:
    import curate

    return curate.__version__


def report_markdown(result: ConditionalResult) -> str:
    """Tagging, the arms, unwanted rates and bits per byte with intervals, paired against
    plain training, and sample generations."""
    from curate.experiment.cells import runs_footer
    from curate.experiment.text_ablation import model_text

    s = result.settings
    c = s["config"]
    lines = ["# Conditional training (tag, don't drop)", "",
             f"Training data: `{s['data']}`; held-out data: `{s['test_data']}`; seeds: "
             f"{s['seeds']}; tokenizer: `{s['tokenizer']}`.", "",
             f"Segments: {s['segments']:,} ({s['segment']}s), scored by `{s['score']}` and "
             f"tagged by the rules {s['tags']} (default `{s['default']}`); "
             f"{s['untagged_segments']:,} ({s['untagged']:.0%}) left without a control "
             "token:", ""]
    lines += markdown_table(["tag", "segments", "share"],
                            [[r["tag"], f"{r['segments']:,}", f"{r['share']:.1%}"]
                             for r in result.segments.to_pylist()])
    lines += ["", f"Every arm trains the same model ({model_text(s)}) from scratch on "
              f"exactly {c['tokens']:,} tokens. Documents per arm: "
              + ", ".join(f"{a} {n:,}" for a, n in s["documents"].items()) + ".", "",
              f"Generations: {s['samples']} per run, up to {s['max_new_tokens']} tokens, "
              f"temperature {s['temperature']}, top-k {s['top_k']}, from a new document "
              f"(the conditional arm prompted with `<|{s['good']}|>`), control tokens "
              f"banned. Unwanted: a non-empty generation not tagged `{s['good']}` by the "
              "same scorer and rules.", "", "Unwanted rate in generations:", ""]
    lines += markdown_table(["arm", "n", "rate", "95% CI"],
                            [[r["arm"], r["n"], f"{r['mean']:.4f}", interval_text(r)]
                             for r in result.rate_summary.to_pylist()])
    if result.rate_paired.num_rows:
        lines += ["", "Rate minus plain training's, paired by seed:", ""]
        lines += markdown_table(["arm", "n", "difference", "95% CI"],
                                [[r["arm"], r["n"], f"{r['mean']:+.4f}", interval_text(r)]
                                 for r in result.rate_paired.to_pylist()])
    lines += ["", "Held-out bits per byte (untagged text):", ""]
    lines += slice_table(result.bpb_summary, "arm", "bits per byte")
    if result.bpb_paired.num_rows:
        lines += ["", "Bits per byte minus plain training's, paired by seed:", ""]
        lines += slice_table(result.bpb_paired, "arm", "difference", sign="+")
    lines += ["", f"![held-out bits per byte during training]({PLOT})", "",
              "First generations of seed " + str(s["seeds"][0]) + " (tag in brackets):", ""]
    for g in result.generations.to_pylist():
        if g["seed"] == s["seeds"][0] and g["sample"] < 3:
            text = " ".join(g["text"].split())[:160].replace("|", "\\|")
            lines.append(f"- {g['arm']} [{g['tag']}]: {text}")
    lines += ["", runs_footer(result), ""]
    return "\n".join(lines)
