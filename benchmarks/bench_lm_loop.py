"""LM training-loop throughput: curate's ``train_lm`` vs a hand-written nanoGPT-style loop,
and what bf16 autocast and ``torch.compile`` buy on this CPU.

Same model (the zoo's ``gpt``, ``size="xs"``: 2 layers x 4 heads x 128, context 256),
same data (Python's own stdlib sources, tests excluded, capped at ``--mb`` MB, packed
with ``ByteTokenizer`` into a temporary cache folder), batch 16, one torch thread, same
process. The arms run alternately, repetition by repetition: those compared with each
other back to back (hand, curate, curate compiled; an fp32 and a bf16 group), the group
order rotating and each group reversed on odd repetitions:

* ``hand``: a nanoGPT-style loop written below: the same GPT class built the same way
  (seed, then ``make_model``), the same AdamW parameter groups (decay on matrices only),
  the same seeded permutation of the pool's sequences read from a memmap re-opened per
  batch (as nanoGPT does), the same warm-up + cosine LR, gradient clipping, bf16
  autocast exactly as curate's, ``loss.item()`` every step;
* ``curate``: ``curate.train.lm.train_lm`` with ``eval_every=None`` and no held-out
  pools, so nothing is evaluated (not even at the final step).

Timing, identical for both: a timestamp (wall and process CPU) after every step, taken
in the hand loop directly and in ``train_lm`` by standing in for its progress bar (the
``_progress`` hook it calls once per step, after the step's loss is read back). The
steady state is the span from the end of step ``--warmup`` to the end of the last step,
so the warm-up steps (and the compile, which happens in step 0) are excluded, as are
model building and the final weight copy. curate's own ``final["tokens_per_second"]``
(which excludes step 0 only) is recorded too. Wall time is the figure; CPU time is kept
because another process may share the machine (it slows CPU time too: shared caches
and memory bandwidth). Ratios are the median of the per-repetition ratios of
back-to-back runs (``paired``: robust to load that drifts between repetitions) and the
ratio of the medians; the target is read on ``paired``. The hand loop's mean training
loss is compared with curate's (``losses_match_hand``: 0.0 means the two loops computed
the same thing).

Also: curate fp32 vs bf16 (the bf16 speed-up), curate eager vs ``compile=True`` (the
warm-up is ``final["first_step_seconds"]``: the first compiled run of each arm starts
from an empty inductor cache; later repetitions reuse the process's compiled graphs),
and, unless ``--no-bpe``, the same curate arms for a 4,096-token BPE (``train_bpe`` on
the same text).

    python benchmarks/bench_lm_loop.py            # ~10 minutes on 2 cores

Target: curate >= 0.95x the hand loop's tokens/s (paired, fp32 and bf16).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

import curate.train.lm.trainer as lm_trainer  # noqa: E402
from curate.train.lm import (  # noqa: E402
    ByteTokenizer,
    LMConfig,
    bf16_supported,
    pack_pool,
    train_bpe,
    train_lm,
)
from curate.train.models import make_model  # noqa: E402

CONTEXT, BATCH, SIZE = 256, 16, "xs"
TARGET = 0.95


def stdlib_texts(cap_mb: float) -> list[str]:
    """The stdlib's ``*.py`` files (no tests, no site-packages), sorted, up to ``cap_mb``."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
    texts, size = [], 0
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p in skip or p.startswith("test_") for p in parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if size + len(text.encode("utf-8")) > cap_mb * 1e6:
            break
        texts.append(text)
        size += len(text.encode("utf-8"))
    return texts


class Clock:
    """A timestamp per finished step; stands in for ``train_lm``'s progress bar."""

    def __init__(self):
        self.wall, self.cpu = [], []

    def update(self, n: int = 1) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def close(self) -> None:
        pass

    def steady(self, warmup: int) -> dict:
        tokens = (len(self.wall) - warmup) * BATCH * CONTEXT
        return {"tokens_per_s": tokens / (self.wall[-1] - self.wall[warmup - 1]),
                "cpu_tokens_per_s": tokens / (self.cpu[-1] - self.cpu[warmup - 1])}


def lm_config(steps: int, precision: str, compile: bool = False) -> LMConfig:
    return LMConfig(model="gpt", model_params={"size": SIZE}, context=CONTEXT,
                    batch_size=BATCH, tokens=steps * BATCH * CONTEXT, precision=precision,
                    compile=compile, eval_every=None)


def run_curate(pool, config: LMConfig, warmup: int, seed: int) -> dict:
    clock, progress = Clock(), lm_trainer._progress
    lm_trainer._progress = lambda total, enabled: clock
    try:
        run = train_lm(config, pool, seed=seed)  # no held-out pools: no evaluation at all
    finally:
        lm_trainer._progress = progress
    assert len(clock.wall) == config.steps and run.final["precision"] == config.precision
    return {**clock.steady(warmup), "train_loss": run.final["train_loss"],
            "reported_tokens_per_s": run.final["tokens_per_second"],
            "first_step_seconds": run.final["first_step_seconds"]}


def run_hand(pool, config: LMConfig, warmup: int, seed: int) -> dict:
    """nanoGPT's loop, on the same model, data order and settings as ``train_lm``."""
    meta, steps, lr = pool.meta, config.steps, config.lr
    torch.manual_seed(seed)
    model = make_model("gpt", (CONTEXT,), int(meta["vocab_size"]), **config.model_params)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=lr, betas=config.betas)
    warmup_iters = max(1, steps // 50)

    def get_lr(it: int) -> float:
        if it < warmup_iters:
            return lr * (it + 1) / warmup_iters
        ratio = min((it - warmup_iters) / max(steps - warmup_iters, 1), 1.0)
        return lr * (config.min_lr_factor + (1 - config.min_lr_factor)
                     * 0.5 * (1 + math.cos(math.pi * ratio)))

    perm = np.random.default_rng(seed).permutation(pool.n_sequences(CONTEXT))
    assert steps * BATCH <= len(perm)  # one epoch: the same order as train_lm's
    bf16, offsets = config.precision == "bf16", np.arange(CONTEXT + 1)
    clock, losses = Clock(), []
    for it in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it)
        data = np.memmap(pool.path / "tokens.bin", dtype=np.dtype(meta["dtype"]), mode="r")
        starts = perm[it * BATCH:(it + 1) * BATCH, None] * CONTEXT
        batch = torch.from_numpy(data[starts + offsets].astype(np.int64))
        x, y = batch[:, :-1], batch[:, 1:]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        clock.update()
    return {**clock.steady(warmup), "train_loss": float(np.mean(losses))}


def measure(pool, arms: dict, groups: list[list[str]], warmup: int, reps: int,
            label: str) -> dict:
    """Run every arm ``reps`` times, interleaved: the arms compared with each other run
    back to back (a group), the group order rotates each repetition and each group runs
    in reverse on odd repetitions, so neither side always goes first."""
    records = {arm: [] for arm in arms}
    torch._dynamo.reset()  # the first run of each compiled arm compiles from scratch
    for rep in range(reps):
        shift = rep % len(groups)
        for group in groups[shift:] + groups[:shift]:
            for arm in (group[::-1] if rep % 2 else group):
                runner, config = arms[arm]
                rec = runner(pool, config, warmup, seed=rep)
                rec["load_average"] = os.getloadavg()[0]
                records[arm].append(rec)
                print(f"  {label} rep {rep} {arm:>14}: {rec['tokens_per_s']:8,.0f} tok/s "
                      f"(CPU {rec['cpu_tokens_per_s']:8,.0f})"
                      + (f", first step {rec['first_step_seconds']:.1f} s"
                         if "first_step_seconds" in rec else ""), flush=True)
    out = {}
    for arm, recs in records.items():
        row = {key: {"median": statistics.median(r[key] for r in recs),
                     "all": [r[key] for r in recs]}
               for key in ("tokens_per_s", "cpu_tokens_per_s")}
        row["train_loss"] = [r["train_loss"] for r in recs]
        row["load_average"] = [r["load_average"] for r in recs]
        for key in ("reported_tokens_per_s", "first_step_seconds"):
            if key in recs[0]:
                row[key] = [r[key] for r in recs]
        out[arm] = row
    return out


def ratio(arms: dict, a: str, b: str) -> dict:
    """``a / b``: ``paired`` is the median over repetitions of the ratio of the two runs
    of one repetition (back to back when ``a`` and ``b`` share a group), robust to load
    that drifts between repetitions; ``wall`` and ``cpu`` are ratios of the medians."""
    per_rep = [x / y for x, y in zip(arms[a]["tokens_per_s"]["all"],
                                     arms[b]["tokens_per_s"]["all"])]
    return {"paired": statistics.median(per_rep),
            "wall": arms[a]["tokens_per_s"]["median"] / arms[b]["tokens_per_s"]["median"],
            "cpu": (arms[a]["cpu_tokens_per_s"]["median"]
                    / arms[b]["cpu_tokens_per_s"]["median"]),
            "per_rep_wall": per_rep}


def curate_arms(steps: int) -> dict:
    return {"curate_fp32": (run_curate, lm_config(steps, "fp32")),
            "curate_bf16": (run_curate, lm_config(steps, "bf16")),
            "compiled_fp32": (run_curate, lm_config(steps, "fp32", compile=True)),
            "compiled_bf16": (run_curate, lm_config(steps, "bf16", compile=True))}


def speedups(arms: dict) -> dict:
    out = {"bf16_vs_fp32": ratio(arms, "curate_bf16", "curate_fp32"),
           "compiled_vs_eager_fp32": ratio(arms, "compiled_fp32", "curate_fp32"),
           "compiled_vs_eager_bf16": ratio(arms, "compiled_bf16", "curate_bf16"),
           "compiled_bf16_vs_eager_fp32": ratio(arms, "compiled_bf16", "curate_fp32")}
    out["compile_warmup_seconds"] = {
        prec: {"cold": arms[f"compiled_{prec}"]["first_step_seconds"][0],
               "cached_in_process": arms[f"compiled_{prec}"]["first_step_seconds"][1:],
               "eager_first_step": arms[f"curate_{prec}"]["first_step_seconds"]}
        for prec in ("fp32", "bf16")}
    return out


def cpu_flags() -> dict:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    return {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16",
                                    "avx512_fp16")}


def table(title: str, arms: dict) -> None:
    print(f"\n{title}\n{'arm':>14} {'tok/s median':>13} {'CPU tok/s':>10}  all (wall)")
    for arm, row in arms.items():
        print(f"{arm:>14} {row['tokens_per_s']['median']:13,.0f} "
              f"{row['cpu_tokens_per_s']['median']:10,.0f}  "
              + ", ".join(f"{v:,.0f}" for v in row["tokens_per_s"]["all"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=65, help="steps per byte-level run")
    parser.add_argument("--bpe-steps", type=int, default=30, help="steps per BPE run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--bpe-reps", type=int, default=3)
    parser.add_argument("--mb", type=float, default=4.0, help="MB of stdlib source")
    parser.add_argument("--no-bpe", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    began, load_before = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_lm_loop_") as tmp:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")  # cold compiles
        texts = stdlib_texts(args.mb)
        batches = [texts[i:i + 64] for i in range(0, len(texts), 64)]
        pool = pack_pool(lambda: iter(batches), ByteTokenizer(), cache=tmp, name="stdlib")
        data = {"files": len(texts), "bytes": pool.n_bytes, "byte_tokens": pool.n_tokens}
        print(f"pool: {len(texts)} files, {pool.n_bytes / 1e6:.2f} MB, "
              f"{pool.n_tokens:,} byte tokens", flush=True)
        byte_arms = {"hand_fp32": (run_hand, lm_config(args.steps, "fp32")),
                     "hand_bf16": (run_hand, lm_config(args.steps, "bf16")),
                     **curate_arms(args.steps)}
        byte = measure(pool, byte_arms, [["hand_fp32", "curate_fp32", "compiled_fp32"],
                                         ["hand_bf16", "curate_bf16", "compiled_bf16"]],
                       args.warmup, args.reps, "bytes")
        results = {"bytes": {"arms": byte,
                             "ratios": {"curate_vs_hand_fp32": ratio(byte, "curate_fp32",
                                                                     "hand_fp32"),
                                        "curate_vs_hand_bf16": ratio(byte, "curate_bf16",
                                                                     "hand_bf16"),
                                        **speedups(byte)},
                             "losses_match_hand": {
                                 prec: max(abs(a - b) for a, b in
                                           zip(byte[f"curate_{prec}"]["train_loss"],
                                               byte[f"hand_{prec}"]["train_loss"]))
                                 for prec in ("fp32", "bf16")}}}
        bpe_info = None
        if not args.no_bpe:
            t0 = time.perf_counter()
            tok = train_bpe(iter(batches), vocab_size=4096)
            bpe_pool = pack_pool(lambda: iter(batches), tok, cache=tmp, name="stdlib-bpe")
            bpe_info = {"vocab_size": tok.vocab_size, "tokens": bpe_pool.n_tokens,
                        "bytes_per_token": bpe_pool.n_bytes / bpe_pool.n_tokens,
                        "train_and_pack_seconds": time.perf_counter() - t0}
            print(f"BPE pool: {bpe_pool.n_tokens:,} tokens "
                  f"({bpe_info['bytes_per_token']:.2f} bytes/token)", flush=True)
            bpe = measure(bpe_pool, curate_arms(args.bpe_steps),
                          [["curate_fp32", "compiled_fp32"], ["curate_bf16", "compiled_bf16"]],
                          args.warmup, args.bpe_reps, "bpe")
            results["bpe_4096"] = {"arms": bpe, "ratios": speedups(bpe)}
    r = results["bytes"]["ratios"]
    met = {prec: r[f"curate_vs_hand_{prec}"]["paired"] >= TARGET for prec in ("fp32", "bf16")}
    path = write_result("lm_loop", {
        "setup": {"model": f"gpt size={SIZE} (2 layers x 4 heads x 128)", "context": CONTEXT,
                  "batch_size": BATCH, "threads": torch.get_num_threads(),
                  "optimizer": "AdamW lr 2e-3 betas (0.9, 0.95), wd 0.1 on matrices, "
                               "warm-up max(1, steps // 50) then cosine to 0.1x, clip 1.0",
                  "data": {"source": "stdlib *.py, no tests, sorted by path", **data},
                  "bpe": bpe_info, "steps": args.steps, "bpe_steps": args.bpe_steps,
                  "warmup_steps_excluded": args.warmup, "reps": args.reps,
                  "bpe_reps": args.bpe_reps,
                  "statistic": "median tokens/s, wall (steady state: end of the warm-up steps "
                  "to end of the last step); ratios: median of per-repetition ratios "
                  "(paired, the target's) and ratio of medians",
                  "load_average_before": load_before, "load_average_after": os.getloadavg(),
                  "benchmark_seconds": time.perf_counter() - began},
        "cpu_flags": cpu_flags(),
        "bf16_auto": bf16_supported(torch.device("cpu")),
        "torch": torch.__version__,
        "target": f"curate >= {TARGET}x hand loop tokens/s",
        "target_met": all(met.values()),
        "target_met_by_precision": met,
        "results": results,
    })
    table("byte-level (vocab 257)", results["bytes"]["arms"])
    if "bpe_4096" in results:
        table("BPE 4,096", results["bpe_4096"]["arms"])
    print(f"\ncurate/hand (paired median; ratio of medians): fp32 "
          f"{r['curate_vs_hand_fp32']['paired']:.3f}; {r['curate_vs_hand_fp32']['wall']:.3f}, "
          f"bf16 {r['curate_vs_hand_bf16']['paired']:.3f}; "
          f"{r['curate_vs_hand_bf16']['wall']:.3f} (target >= {TARGET}: "
          f"{'met' if all(met.values()) else 'NOT met'})")
    for name, res in results.items():
        s = res["ratios"]
        w = s["compile_warmup_seconds"]
        print(f"{name} (paired): bf16/fp32 {s['bf16_vs_fp32']['paired']:.2f}x, compiled/eager "
              f"fp32 {s['compiled_vs_eager_fp32']['paired']:.2f}x, bf16 "
              f"{s['compiled_vs_eager_bf16']['paired']:.2f}x; compile warm-up "
              f"{w['fp32']['cold']:.1f} s fp32, {w['bf16']['cold']:.1f} s bf16")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
