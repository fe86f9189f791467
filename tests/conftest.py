"""Shared fixtures: small real-looking corpora written to temporary files."""

import gzip
import json

import pytest

PROSE = ("The committee met on Tuesday to discuss the budget for the coming year, and the "
         "members agreed that the library should have a larger share of the funds. ")


def write_jsonl(path, rows, gz=False):
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def docs():
    """Twelve documents: prose, a duplicate, short junk, code and French."""
    rows = [{"id": f"doc{i}", "text": f"Part {i}. " + PROSE * (i % 3 + 2)} for i in range(6)]
    rows.append({"id": "dup", "text": rows[0]["text"]})
    rows.append({"id": "junk", "text": "click here | home | login"})
    rows.append({"id": "code", "text": "def f(x):\n    return {x: x * 2}\n" * 5})
    rows.append({"id": "fr", "text": "Le comité s'est réuni mardi pour discuter du budget. " * 4})
    rows.append({"id": "empty", "text": ""})
    rows.append({"id": "list", "text": "\n".join(f"- item {i}" for i in range(30))})
    return rows


@pytest.fixture
def docs_file(tmp_path, docs):
    return write_jsonl(tmp_path / "docs.jsonl", docs)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train fastest on one thread (far faster on a busy machine), and runs in
    worker processes (one thread each) then match runs in this process bit for bit."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance (2 CPUs) shared by every test that needs Ray; its workers
    can import the test plugins. Skipped where Ray is not installed."""
    import os
    from pathlib import Path

    ray = pytest.importorskip("ray")
    here = Path(__file__).resolve().parent
    paths = [str(here / "plugins"), str(here.parent), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                       configure_logging=False)
    yield context.address_info["address"]
    ray.shutdown()
