"""The language-model experiments as shipped: run a recipe, collect its tables, check
determinism.

    python benchmarks/bench_lm_experiments.py text-ablation
    python benchmarks/bench_lm_experiments.py conditional-training

Runs ``curate run recipes/<name>.yaml`` into ``benchmarks/work/<name>/`` (wall time
timed, set-up included; a cached run is recomputed with ``--force`` unless ``--reuse``),
then copies the summary, paired and per-run tables into
``benchmarks/results/<name>.json``. Determinism: one arm at seed 0 is trained again from
scratch in a fresh folder through the Python API, and its result rows must equal the
recipe's bit for bit. The packages the corpus reads must be installed
(``bash benchmarks/install_corpora.sh``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pyarrow.csv as pacsv
import yaml
from common import run_recipe_timed, write_result

#: Per recipe: its experiment's tables to report, and the arm re-trained for determinism.
TABLES = {"text-ablation": ("summary.csv", "paired.csv", "pools.csv", "results.csv"),
          "conditional-training": ("rate_summary.csv", "rate_paired.csv", "summary.csv",
                                   "paired.csv", "rates.csv", "segments.csv", "results.csv")}
RECHECK = {"text-ablation": {"pools": ["all"]}, "conditional-training": {"arms": ["plain"]}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe", choices=sorted(TABLES))
    parser.add_argument("--reuse", action="store_true", help="Reuse a finished run.")
    args = parser.parse_args()
    recipe, out, wall = run_recipe_timed(args.recipe, args.reuse)
    spec = yaml.safe_load(recipe.read_text())
    step = next(s["experiment"] for s in spec["steps"] if "experiment" in s)
    folder = out / step["output"]
    tables = {name.removesuffix(".csv"): pacsv.read_csv(folder / name).to_pylist()
              for name in TABLES[args.recipe]}
    deterministic = recheck(args.recipe, spec, step, tables["results"])
    write_result(args.recipe.replace("-", "_"), {
        "recipe": f"recipes/{args.recipe}.yaml", "wall_seconds": wall,
        "load_average_after": os.getloadavg(), "settings": {k: v for k, v in step.items()
                                                            if k != "kind"},
        "deterministic_rerun": deterministic, **tables})
    print(f"{args.recipe}: {wall:.0f} s; deterministic re-run: {deterministic}")


def recheck(kind: str, spec: dict, step: dict, rows: list[dict]) -> bool:
    """Train one arm at seed 0 again, from scratch, and compare its rows bit for bit (on
    one torch thread, as the recipe's worker processes train: results are reproducible
    per thread count)."""
    import torch

    from curate.core.registry import EXPERIMENTS

    torch.set_num_threads(1)
    own = {k: v for k, v in step.items() if k not in ("kind", "test", "train", "seeds",
                                                      "output")}
    own.update(RECHECK[kind])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CURATE_CACHE"] = tmp  # a fresh corpus build and fresh token pools too
        result = EXPERIMENTS.get(kind)(spec["source"], step["test"], train_config=step["train"],
                                       seeds=[0], out_dir=Path(tmp) / "again", workers=1,
                                       **own)
    arm = "pool" if kind == "text-ablation" else "arm"
    name = next(iter(RECHECK[kind].values()))[0]
    mine = [r for r in rows if r[arm] == name and r["seed"] == 0]
    again = result.results.to_pylist()
    keys = ("slice", "loss", "bpb", "epochs", "tokens")
    mine, again = ([tuple(r[k] for k in keys) for r in rs] for rs in (mine, again))
    if mine != again:
        print(f"recipe: {mine}\nagain:  {again}")
    return mine == again


if __name__ == "__main__":
    main()
