"""Helpers shared by the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    """Where a figure was measured."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("curate", "datatrove", "spacy", "datasketch", "fasttext-wheel", "pyarrow",
                 "numpy", "duckdb", "torch", "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "versions": versions}


def write_result(name: str, data: dict) -> Path:
    """Write ``benchmarks/results/<name>.json`` with machine info and a timestamp."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def run_recipe_timed(name: str, reuse: bool) -> tuple[Path, Path, float]:
    """``curate run recipes/<name>.yaml`` into ``benchmarks/work/<name>/`` (``--force``
    unless ``reuse``): ``(recipe, run folder, wall seconds)``. With ``reuse`` the wall time
    is the one the last timed run stored in its results JSON."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    recipe, out = root / "recipes" / f"{name}.yaml", root / "benchmarks" / "work" / name
    start = time.perf_counter()
    command = [sys.executable, "-m", "curate.cli", "run", str(recipe), "--out", str(out)]
    subprocess.run(command + ([] if reuse else ["--force"]), check=True, cwd=root)
    wall = time.perf_counter() - start
    previous = RESULTS / f"{name.replace('-', '_')}.json"
    if reuse and previous.is_file():  # the timed run is the one before
        wall = json.loads(previous.read_text())["wall_seconds"]
    return recipe, out, wall
