"""The Python API (`mlpsuite.run`, `mlpsuite.compare`) on a real grid in a real SQLite store:
a dict and a YAML path are one grid, errors are `ConfigError`s that write nothing, the
DataFrames hold what MLflow holds, and a notebook gets HTML, figures and Markdown."""

from __future__ import annotations

import base64
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from matplotlib.figure import Figure
from mlflow import MlflowClient

import mlpsuite
from tests.grids import clean_env, ready_store, run_in_process, sqlite_uri

QUESTION = "Does ReLU beat the identity on iris?"


def _config(name: str = "api") -> dict:
    return {
        "name": name,
        "description": QUESTION,
        "dataset": {"name": "iris", "test_size": 0.2, "val_size": 0.2},
        "model": {"hidden": [8], "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "training": {"epochs": 4, "batch_size": 16},
        "backends": ["jax"],
        "seeds": [0, 1],
        "grid": {"model.activation": ["identity", "relu"]},
    }


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One grid run from a dict: (folder, store URI, its GridResult)."""
    folder = tmp_path_factory.mktemp("api")
    uri = ready_store(folder)
    return folder, uri, mlpsuite.run(_config(), tracking_uri=uri, progress=False)


def test_run_from_a_dict_returns_the_grid_as_mlflow_holds_it(grid):
    _, uri, result = grid
    assert (result.n_trials, result.n_run, result.n_failed, result.n_reused) == (4, 4, 0, 0)
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.experiment_id == result.experiment_id
    runs = result.runs
    assert list(runs.columns[:5]) == ["backend", "seed", "status", "failure", "model.activation"]
    assert {"loss", "val_loss", "test_loss", "test_accuracy", "run_id", "key"} <= set(runs.columns)
    assert sorted(zip(runs["model.activation"], runs["seed"], strict=True)) == [
        ("identity", 0),
        ("identity", 1),
        ("relu", 0),
        ("relu", 1),
    ]
    for _, row in runs.iterrows():  # every number is the run's own in MLflow
        run = client.get_run(row["run_id"])
        assert (
            run.data.metrics["test_loss"] == row["test_loss"] and run.info.status == row["status"]
        )
        assert run.data.tags["mlpsuite.trial_key"] == row["key"]
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
        # A short run name saying the cell and the seed; the cell tag stays for Group by.
        activation = row["model.activation"]
        assert run.info.run_name == f"{activation} s{row['seed']} jax"
        assert run.data.tags["mlpsuite.cell"] == f"activation={activation}"
    # The dict is kept on the parent as the YAML it would have been.
    logged = client.download_artifacts(result.parent_run_id, "config.yaml")
    assert yaml.safe_load(Path(logged).read_text())["grid"] == _config()["grid"]


def test_a_yaml_path_of_the_same_grid_reopens_its_parent_and_reuses_every_trial(grid):
    folder, uri, first = grid
    path = folder / "api.yaml"
    path.write_text(yaml.safe_dump(_config()), encoding="utf-8")
    again = mlpsuite.run(path, tracking_uri=uri, progress=False)
    assert again.parent_run_id == first.parent_run_id and again.invocation == 2
    assert (again.n_run, again.n_reused) == (0, 4)
    assert again.runs["run_id"].tolist() == first.runs["run_id"].tolist()


def test_comparison_dataframes_and_best(grid):
    _, _, result = grid
    comparison = result.comparison
    assert isinstance(comparison, mlpsuite.Comparison)
    pooled = comparison.cells[comparison.cells["backend"] == "all"]
    assert {
        "cell",
        "model.activation",
        "n",
        "val_loss_mean",
        "val_loss_low",
        "val_loss_high",
        "val_loss_iqm",
        "val_loss_boot_low",
        "rank",
        "overlaps_best",
    } <= set(comparison.cells.columns)
    # The ranking's mean is the mean of the runs' own values (NumPy over the DataFrame, not the
    # report).
    for _, cell in pooled.iterrows():
        own = result.runs[result.runs["model.activation"] == cell["model.activation"]]["val_loss"]
        assert cell["val_loss_mean"] == pytest.approx(own.mean(), rel=1e-12)
    best = comparison.best()
    assert best is not None
    assert best["cell"] == pooled.sort_values("val_loss_mean").iloc[0]["cell"]
    assert {"key", "level", "reference", "mean_diff", "p_ttest", "p_holm"} <= set(
        comparison.effects.columns
    )
    assert list(comparison.failures.columns) == ["failure", "backend", "trials"]
    assert "step_time_ms" in comparison.speed.columns


def test_notebook_display_markdown_and_figures(grid):
    _, uri, result = grid
    comparison = result.comparison
    page = result._repr_html_()
    assert "<table" in page and comparison.best()["cell"] in page and QUESTION in page
    image = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert image is not None
    assert base64.b64decode(image.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.parent_run_id in page and "workflowType=machine_learning" in result.url
    assert "<table" in comparison._repr_html_()
    figures = comparison.figures()
    assert {"curves", "final_metric"} <= set(figures) and all(
        isinstance(f, Figure) for f in figures.values()
    )
    # to_markdown is the report on the parent run, word for word.
    logged = MlflowClient(uri).download_artifacts(result.parent_run_id, "comparison/report.md")
    assert comparison.to_markdown() == Path(logged).read_text(encoding="utf-8")


def test_compare_reads_the_grid_back_as_the_cli_does(grid):
    folder, uri, result = grid
    comparison = mlpsuite.compare("api", tracking_uri=uri)
    assert comparison.parent_run_id == result.parent_run_id
    cli = run_in_process("compare", "api", "--format", "json", "--tracking-uri", uri, cwd=folder)
    assert cli.returncode == 0, cli.stderr
    shown = json.loads(cli.stdout)
    assert [row["cell"] for row in shown["cells"]] == comparison.cells["cell"].tolist()
    assert [row["val_loss_mean"] for row in shown["cells"]] == pytest.approx(
        comparison.cells["val_loss_mean"].tolist()
    )
    part = mlpsuite.compare("api", tracking_uri=uri, where={"model.activation": "relu"})
    assert part.n_trials == 2 and set(part.frame["model.activation"]) == {"relu"}
    with pytest.raises(mlpsuite.ReportError, match="no experiment 'nope'"):
        mlpsuite.compare("nope", tracking_uri=uri)
    with pytest.raises(mlpsuite.ReportError, match="no experiment 'apii'.*did you mean 'api'?"):
        mlpsuite.compare("apii", tracking_uri=uri)
    # A Python caller is told about its keyword, not the CLI's flag.
    with pytest.raises(mlpsuite.ReportError, match=r"^metric='f1': f1 is not recorded") as raised:
        mlpsuite.compare("api", tracking_uri=uri, metric="f1")
    assert "--" not in str(raised.value)


def test_the_parent_run_page_and_the_experiment_description(grid):
    _, uri, result = grid
    client = MlflowClient(uri)
    parent = client.get_run(result.parent_run_id)
    note = parent.data.tags["mlflow.note.content"]
    best = result.comparison.best()["cell"]
    # The question and the best cell first, then the ranking figure and the curves, as artifacts
    # that exist.
    assert (
        note.index(QUESTION)
        < note.index(best)
        < note.index("final_metric.png")
        < note.index("curves.png")
    )
    logged = {item.path for item in client.list_artifacts(result.parent_run_id, "comparison")}
    for path in re.findall(r"get-artifact\?path=comparison%2F([\w.]+)&run_uuid=(\w+)", note):
        assert f"comparison/{path[0]}" in logged and path[1] == result.parent_run_id
    assert parent.inputs is not None
    assert [i.dataset.name for i in parent.inputs.dataset_inputs] == ["iris"]
    described = client.get_experiment(result.experiment_id).tags["mlflow.note.content"]
    assert QUESTION in described and best in described
    assert f"#/experiments/{result.experiment_id}/runs/{result.parent_run_id}" in described


@pytest.mark.parametrize(
    "config, says",
    [
        (
            {**_config("bad"), "model": {"activation": "relux"}},
            "<config dict>: model.activation: Unknown activation",
        ),
        (
            {**_config("bad"), "grid": {"model.depth": [1]}},
            "<config dict>: grid.model.depth: no such key",
        ),
        ({**_config("bad"), "seeds": []}, "<config dict>: seeds: no seeds given"),
        ("missing.yaml", "missing.yaml: file not found"),
    ],
)
@pytest.mark.check
def test_config_errors_are_one_line_configerrors_and_write_nothing(config, says, tmp_path):
    uri = sqlite_uri(tmp_path)
    with pytest.raises(mlpsuite.ConfigError) as raised:
        mlpsuite.run(config, tracking_uri=uri, progress=False)
    assert str(raised.value).startswith(says) and "\n" not in str(raised.value)
    assert not (tmp_path / "store").exists()


@pytest.mark.check
def test_wrong_arguments_are_configerrors(tmp_path):
    uri = sqlite_uri(tmp_path)
    with pytest.raises(
        mlpsuite.ConfigError, match="executor: 'slurm' is not an executor; allowed: local, ray"
    ):
        mlpsuite.run(_config(), tracking_uri=uri, executor="slurm")
    with pytest.raises(mlpsuite.ConfigError, match="jobs: expected a positive integer"):
        mlpsuite.run(_config(), tracking_uri=uri, jobs=0)
    for keep in (-1, float("nan"), "5"):
        with pytest.raises(mlpsuite.ConfigError, match="keep_workers: expected seconds >= 0"):
            mlpsuite.run(_config(), tracking_uri=uri, keep_workers=keep)  # pyright: ignore[reportArgumentType]
    assert not (tmp_path / "store").exists()


@pytest.mark.check
def test_reuse_is_a_deprecated_alias_of_reuse_models(tmp_path):
    uri = sqlite_uri(tmp_path)
    with (
        pytest.warns(DeprecationWarning, match=r"reuse=\.\.\.\) is deprecated: it is reuse_models"),
        pytest.raises(mlpsuite.ConfigError, match="jobs: expected"),
    ):
        mlpsuite.run(_config(), tracking_uri=uri, jobs=0, reuse=False)
    assert "reuse_models" in inspect.signature(mlpsuite.run).parameters
    assert not (tmp_path / "store").exists()


@pytest.mark.check
def test_report_errors_name_python_parameters_and_the_cli_names_its_flags():
    from mlpsuite.cli.arguments import in_flag_words

    error = mlpsuite.ReportError("x is not recorded; allowed: loss", "select_on", "x")
    assert str(error) == "select_on='x': x is not recorded; allowed: loss"
    assert in_flag_words(error) == "--select-on x: x is not recorded; allowed: loss"
    bare = mlpsuite.ReportError("no target on 'val_mae'", "target")
    assert (str(bare), in_flag_words(bare)) == (
        "target: no target on 'val_mae'",
        "--target: no target on 'val_mae'",
    )
    plain = mlpsuite.ReportError("no experiment 'nope'")
    assert str(plain) == in_flag_words(plain) == "no experiment 'nope'"


@pytest.mark.check
def test_import_mlpsuite_loads_no_framework_mlflow_or_pandas():
    code = (
        "import sys, mlpsuite; heavy = [m for m in ('mlflow', 'pandas', 'keras', 'jax', 'torch', "
        "'tensorflow', 'matplotlib', 'sklearn') if m in sys.modules]; print(heavy); mlpsuite.run; "
        "print('mlpsuite.api' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=True
    )
    assert shown.stdout.split() == ["[]", "True"]
