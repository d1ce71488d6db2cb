"""What a new user met when workers could not run: a folder named `mlpsuite` in the current
folder (the clone, seen from the folder that holds it) shadowed the package in every worker,
and a grid where every trial failed exited 0 with a line that blamed a metric.

Real worker processes, the console script as a user types it, a real SQLite store.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from mlpsuite.trial.worker import WRONG_PACKAGE
from tests.grids import clean_env, ready_store, run_in_process, write_grid

CONSOLE_SCRIPT = Path(sys.executable).with_name("mlpsuite")


def test_a_folder_named_mlpsuite_where_the_user_stands_shadows_nothing(tmp_path):
    clone = tmp_path / "mlpsuite"  # the clone's own folder, as its parent folder sees it
    (clone / "mlpsuite").mkdir(parents=True)
    (clone / "mlpsuite" / "__init__.py").write_text("", encoding="utf-8")
    (clone / "README.md").write_text("a clone\n", encoding="utf-8")
    path = write_grid(tmp_path, "shadowed", backends=["sklearn"], seeds=[0, 1])
    ran = subprocess.run(
        [str(CONSOLE_SCRIPT), "run", path.name, "--tracking-uri", ready_store(tmp_path)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "2 run, 0 failed" in ran.stdout


def test_a_worker_that_imports_another_mlpsuite_says_so_in_one_line(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from mlpsuite.trial.worker import start; start({str(elsewhere)!r})",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == WRONG_PACKAGE
    (line,) = started.stderr.strip().splitlines()
    assert str(elsewhere) in line and "shadows" in line


def test_a_grid_where_no_trial_finished_says_why_and_exits_1(tmp_path, monkeypatch):
    """Every worker dies on its first request (a setting it cannot read): each distinct
    reason once, with its count and the worker's last error line; no comparison, no word of
    a metric; the parent run FAILED."""
    monkeypatch.setenv("MLPSUITE_MAX_GROWTH", "lots")
    path = write_grid(tmp_path, "doomed", backends=["sklearn"], seeds=[0, 1])
    uri = ready_store(tmp_path)
    ran = run_in_process("run", str(path), "--tracking-uri", uri, "--jobs", "1", cwd=tmp_path)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    said = ran.stdout + ran.stderr
    closing = "2 run, 2 failed, 0 reused: no trial finished, so there is no comparison."
    assert closing in said
    after = said.split(closing, 1)[1].splitlines()[1:]
    reasons = [line.strip() for line in after if line.startswith("  ")]
    assert reasons == [
        "2 worker died (sklearn): ValueError: could not convert string to float: 'lots'"
    ], said
    assert "select_on" not in said and "not recorded" not in said and "comparison is on" not in said
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("doomed")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert parent.info.status == "FAILED"
    assert parent.data.tags["mlpsuite.report_error"].startswith("no trial finished: 2 worker died")
