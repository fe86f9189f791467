"""`curate ticket imp` and the recipe `lottery` experiment, on builtin:digits."""

import pyarrow as pa
import pyarrow.parquet as pq

from curate.io import Source, write_table
from curate.recipe import run_recipe
from tests.test_cli import assert_one_line_error, curate

TRAIN = ["--model", "mlp", "--optimizer", "adam", "--lr", "0.01", "--batch-size", "64",
         "--steps", "12", "--seeds", "2"]


def test_ticket_imp_trains_a_data_diet_rewind_point(tmp_path):
    ids = Source("builtin:digits").read_all(["id"]).column("id").to_pylist()
    selection = tmp_path / "easy.parquet"
    write_table(pa.table({"id": ids, "keep": [i < 100 for i in range(len(ids))]}), selection)
    out = tmp_path / "tickets"
    result = curate("ticket", "imp", "builtin:digits", "--test", "builtin:digits:split=test",
                    *TRAIN, "--levels", "1", "--rewind-step", "3", "--no-controls",
                    "--pretrain", selection, "-o", out)
    assert result.returncode == 0, result.stderr
    runs = pq.read_table(out / "runs.parquet").to_pylist()
    assert sorted((r["level"], r["kind"]) for r in runs) == [(0, "dense")] * 2 + [(1, "ticket")] * 2
    assert "rewinds to step 3" in (out / "report.md").read_text()

    write_table(pa.table({"id": [99999], "keep": [True]}), selection)
    bad = curate("ticket", "imp", "builtin:digits", "--test", "builtin:digits:split=test",
                 *TRAIN, "--levels", "1", "--rewind-step", "3", "--pretrain", selection,
                 "-o", tmp_path / "bad")
    assert_one_line_error(bad, "easy.parquet", "is not in the data")
    bad = curate("ticket", "imp", "builtin:digits", "--test", "builtin:digits:split=test",
                 *TRAIN, "--levels", "1", "--rewind-step", "12", "-o", tmp_path / "bad")
    assert_one_line_error(bad, "rewind_step must be an integer in [0, 12)")


def test_lottery_recipe_step_is_reused_on_a_rerun(tmp_path):
    recipe = tmp_path / "lottery.yaml"
    recipe.write_text(
        "source: builtin:digits\nsteps:\n  - experiment:\n      kind: lottery\n"
        "      test: builtin:digits:split=test\n"
        "      train: {model: mlp, optimizer: adam, lr: 0.01, batch_size: 64, steps: 10}\n"
        "      seeds: 2\n      levels: 1\n      controls: [reinit]\n      output: tickets\n")
    first = run_recipe(recipe, tmp_path / "run", log=lambda s: None)["steps"][0]
    assert first["reused"] is False and first["runs"]["trained"] == 2 * 3
    assert (tmp_path / "run" / "tickets" / "accuracy_vs_sparsity.png").exists()
    again = run_recipe(recipe, tmp_path / "run", log=lambda s: None)["steps"][0]
    assert again["reused"] is True


def test_ticket_sharpness_predicts_and_observes_per_seed(tmp_path, monkeypatch):
    import pyarrow.csv as pcsv

    from curate.experiment.prunability import PREDICTED_PLOT

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = ["ticket", "sharpness", "builtin:digits", "--test", "builtin:digits:split=test",
            "--optimizer", "adam", "--lr", "0.01", "--batch-size", "64", "--steps", "20",
            "--rewind-step", "2", "--seeds", "2", "--top-k", "3", "--hessian-examples", "100",
            "--fraction", "0.5", "--fraction", "0.9"]
    out = tmp_path / "sharpness"
    run = curate(*args, "-o", out)
    assert run.returncode == 0, run.stderr
    assert "seed 0 predicted" in run.stdout and "seed 1 predicted" in run.stdout
    fractions = pcsv.read_csv(out / "fractions.csv")
    assert fractions.column("fraction").to_pylist() == [0.5, 0.9, 0.5, 0.9]
    assert (out / PREDICTED_PLOT).exists() and (out / "report.md").exists()

    bad = curate(*args[:-4], "--fraction", "0.9", "--fraction", "0.5", "-o", tmp_path / "bad")
    assert_one_line_error(bad, "fractions must be increasing numbers in (0, 1]")
    assert not (tmp_path / "bad").exists()
