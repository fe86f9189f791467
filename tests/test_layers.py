"""The package import graph: layers import only downward, and there is no cycle."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    return set(out.split())


@pytest.mark.parametrize("statement, forbidden", [
    ("import filters", ("curate.train", "curate.cli", "curate.recipe", "curate.experiment",
                        "torch")),
    ("import scorers", ("curate.train", "curate.cli", "curate.recipe", "curate.experiment",
                        "filters")),
    ("import curate.train", ("filters", "scorers", "curate.cli", "curate.recipe",
                             "curate.experiment", "curate.io")),
    ("import curate.core.registry, curate.core.tables, curate.core.filter, "
     "curate.core.scorer, curate.core.cache, curate.core.validate",
     ("curate.io", "curate.train", "filters", "scorers", "duckdb", "datasets", "torch")),
])
def test_importing_a_layer_loads_nothing_above_it(statement, forbidden):
    loaded = _modules_after(statement)
    for name in forbidden:
        assert not any(m == name or m.startswith(name + ".") for m in loaded), (statement, name)


def _layer(module: str) -> str | None:
    for prefix, layer in (("curate.core", "core"), ("curate.train", "train"),
                          ("curate.experiment", "experiment"), ("scorers.dynamics", "dynamics"),
                          ("scorers", "scorers"), ("filters", "filters"), ("curate", "top")):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


#: What each layer may import at module level (import time).
ALLOWED = {"core": {"core"}, "filters": {"core", "filters"}, "scorers": {"core", "scorers"},
           "train": {"core", "train"}, "dynamics": {"core", "scorers", "dynamics", "train"},
           "experiment": {"core", "filters", "scorers", "dynamics", "train", "experiment",
                          "top"},
           "top": {"core", "filters", "scorers", "dynamics", "train", "experiment", "top"}}


def _module_level_imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:  # module level only: lazy imports inside functions are deliberate
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def test_module_level_imports_go_only_downward_and_form_no_cycle():
    graph: dict[str, set[str]] = {}
    problems = []
    for path in sorted([*ROOT.glob("curate/**/*.py"), *ROOT.glob("scorers/**/*.py"),
                        *ROOT.glob("filters/**/*.py")]):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
            ".__init__")
        source = _layer(module)
        for target, line in _module_level_imports(path):
            layer = _layer(target)
            if layer is None:
                continue
            graph.setdefault(source, set()).add(layer)
            if layer not in ALLOWED[source]:
                problems.append(f"{path.relative_to(ROOT)}:{line} ({source}) imports {target}")
    assert not problems, "\n".join(problems)
    # No cycle between distinct layers (experiment and top may share code both ways).
    for a, targets in graph.items():
        for b in targets - {a}:
            if a in graph.get(b, set()):
                assert {a, b} == {"experiment", "top"}, f"cycle between {a} and {b}"
