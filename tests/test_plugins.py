"""The README's plugin package, installed and used from the CLI and a recipe, exactly as shown."""

import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from curate.scores import read_sharded

ROOT = Path(__file__).resolve().parent.parent


def _readme_blocks() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {name: body for name, body in re.findall(
        r"<!-- plugin:(\S+) -->\n```\w*\n(.*?)```", text, flags=re.S)}


def test_readme_plugin_package_works_from_the_cli_and_a_recipe(tmp_path):
    blocks = _readme_blocks()
    package = tmp_path / "curate-wordcount"
    package.mkdir()
    (package / "pyproject.toml").write_text(blocks["pyproject.toml"])
    (package / "wordcount.py").write_text(blocks["wordcount.py"])
    assert len(blocks["wordcount.py"].splitlines()) <= 30
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(package)],
                   check=True, capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    (work / "wordcount.yaml").write_text(blocks["wordcount.yaml"])
    env = {"PYTHONPATH": str(site), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
           "HOME": str(tmp_path), "CURATE_CACHE": str(tmp_path / "cache")}
    for line in blocks["commands"].strip().splitlines():
        result = subprocess.run(line.split(), cwd=work, env=env, capture_output=True, text=True)
        assert result.returncode == 0, (line, result.stderr)
    words = read_sharded(work / "wc" / "word_count").column("word_count_words")
    selection = pq.read_table(work / "sel.parquet")
    kept = selection.column("keep").to_pylist()
    assert sum(kept) == sum(w >= 100 for w in words.to_pylist())
    assert 0 < sum(kept) < len(kept)
    reasons = {r for r, k in zip(selection.column("reason").to_pylist(), kept) if not k}
    assert reasons == {"under 100 words"}
    assert (work / "wc-run" / "kept.jsonl.gz").exists()


def test_a_module_plugin_needs_the_explicit_opt_in(tmp_path):
    (tmp_path / "myplugin.py").write_text(
        "import pyarrow as pa\n"
        "from curate.core.registry import register_scorer\n"
        "from curate.core.scorer import HARDER, Scorer\n\n"
        "@register_scorer\n"
        "class Chars(Scorer):\n"
        "    name, directions, primary = 'chars', {'chars_n': HARDER}, 'chars_n'\n"
        "    def score_batch(self, batch):\n"
        "        return pa.table({'chars_n': [len(t) for t in self.texts(batch)]})\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent) + ":/usr/bin",
           "HOME": str(tmp_path), "CURATE_CACHE": str(tmp_path / "cache")}
    base = ["curate", "score", "builtin:quickstart", "-s", "chars", "-o", str(tmp_path / "o")]
    without = subprocess.run(base, env=env, capture_output=True, text=True)
    assert without.returncode == 2 and "unknown scorer 'chars'" in without.stderr
    with_opt_in = subprocess.run(["curate", "--plugin", "myplugin", *base[1:]], env=env,
                                 capture_output=True, text=True)
    assert with_opt_in.returncode == 0, with_opt_in.stderr
    assert read_sharded(tmp_path / "o" / "chars").num_rows == 2000
    missing = subprocess.run(["curate", "--plugin", "no_such_module", *base[1:]], env=env,
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("error: cannot import plugin module 'no_such_module': "
                                      "No module named 'no_such_module'")
