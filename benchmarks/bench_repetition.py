"""The repetition recipes as shipped: run one, collect its fits, check the seed spread and
determinism.

    python benchmarks/bench_repetition.py repetition-text      # about 25 min here
    python benchmarks/bench_repetition.py repetition-mnist1d   # about 5 min

Runs ``curate run recipes/<name>.yaml`` into ``benchmarks/work/<name>/`` (wall time
timed, set-up included; ``--force`` unless ``--reuse``), then writes
``benchmarks/results/<name>.json`` with, per experiment step: the fits (R* and the
epochs within tolerance, with bootstrap intervals), the comparisons, the summary of every
headline curve, what the repeated data was worth, and the **seed spread**: the standard
deviation over seeds at one epoch against the paired rise at 16 epochs (separated when
that rise's 95% interval excludes 0). Determinism: the first pool's seed-0 runs at 1 and
2 epochs (and the calibration run) are trained again from scratch, in a fresh cache, and
their rows must equal the recipe's bit for bit. The text recipe reads Debian packages
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

RECIPES = ("repetition-text", "repetition-mnist1d")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe", choices=RECIPES)
    parser.add_argument("--reuse", action="store_true", help="Reuse a finished run.")
    args = parser.parse_args()
    recipe, out, wall = run_recipe_timed(args.recipe, args.reuse)
    name = args.recipe.replace("-", "_")
    spec = yaml.safe_load(recipe.read_text())
    steps = {}
    for step in (s["experiment"] for s in spec["steps"] if "experiment" in s):
        folder = out / step["output"]
        tables = {t: read(folder / f"{t}.csv") for t in ("fits", "comparisons", "summary",
                                                          "effective", "results")}
        steps[step["output"]] = {
            "settings": {k: v for k, v in step.items() if k != "kind"},
            "fits": tables["fits"], "comparisons": tables["comparisons"],
            "headline_summary": headline(tables["summary"], tables["fits"]),
            "effective": headline(tables["effective"], tables["fits"]),
            "seed_spread": spread(tables["summary"], tables["fits"]),
            "deterministic_rerun": recheck(spec, step, tables["results"])}
    write_result(name, {"recipe": f"recipes/{args.recipe}.yaml", "wall_seconds": wall,
                        "load_average_after": os.getloadavg(), "steps": steps})
    print(f"{args.recipe}: {wall:.0f} s; deterministic re-runs: "
          f"{[s['deterministic_rerun'] for s in steps.values()]}")


def read(path: Path) -> list[dict]:
    return pacsv.read_csv(path).to_pylist() if path.stat().st_size else []


def headline(rows: list[dict], fits: list[dict]) -> list[dict]:
    """The rows of each pool's headline slice."""
    heads = {(f["pool"], f["slice"]) for f in fits if f["headline"]}
    return [r for r in rows if (r["pool"], r["slice"]) in heads]


def spread(summary: list[dict], fits: list[dict]) -> list[dict]:
    """Per headline curve with a 16-epoch point: the seed standard deviation at one epoch,
    the mean rise at 16 epochs in the metric's units and relative, and whether its paired
    interval excludes 0."""
    out = []
    for row in headline([r for r in summary if r["run"] == "repeated"], fits):
        if row["epochs"] != 16:
            continue
        one = next(r for r in summary if (r["pool"], r["slice"], r["run"], r["epochs"]) ==
                   (row["pool"], row["slice"], "repeated", 1))
        out.append({"pool": row["pool"], "slice": row["slice"], "std_at_1": one["std"],
                    "rise_at_16": row["mean"] - one["mean"], "relative_rise_at_16": row["rise"],
                    "rise_ci95": [row["rise_lo"], row["rise_hi"]],
                    "separated": row["rise_lo"] is not None and (row["rise_lo"] > 0
                                                                 or row["rise_hi"] < 0)})
    return out


def recheck(spec: dict, step: dict, rows: list[dict]) -> bool:
    """Train the first pool's seed-0 runs at 1 and 2 epochs again, from scratch in a fresh
    cache (on one torch thread, as the recipe's worker processes do), and compare rows."""
    import torch

    from curate.core.registry import EXPERIMENTS

    torch.set_num_threads(1)
    own = {k: v for k, v in step.items() if k not in ("kind", "test", "train", "seeds",
                                                      "output", "compare", "epochs", "pools")}
    pools = step.get("pools", ["all"])[:1]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CURATE_CACHE"] = tmp  # a fresh corpus build and fresh token pools too
        result = EXPERIMENTS.get("repetition")(spec["source"], step["test"],
                                               train_config=step["train"], seeds=[0],
                                               out_dir=Path(tmp) / "again", pools=pools,
                                               epochs=[1, 2], bootstrap=0, **own)
    name = pools[0] if isinstance(pools[0], str) else pools[0]["name"]
    keys = ("pool", "run", "epochs", "unique", "slice", "loss", "measured_epochs")
    wanted = {tuple(r[k] for k in keys) for r in result.results.to_pylist()}
    mine = {tuple(r[k] for k in keys) for r in rows
            if r["pool"] == name and r["seed"] == 0 and r["epochs"] in (1, 2)
            and (r["run"] == "repeated" or r["unique"] in {w[3] for w in wanted})}
    if mine != wanted:
        print(f"recipe: {sorted(mine)}\nagain:  {sorted(wanted)}")
    return mine == wanted


if __name__ == "__main__":
    main()
