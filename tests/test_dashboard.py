"""The MLflow UI as mlpsuite leaves it, in a real browser: a small real grid, `mlpsuite ui` (the
`mlflow ui` it starts, on the store a run leaves in mlruns/) and `mlpsuite server`
(`mlflow server --serve-artifacts`, the grid logged through it), each page opened in headless
Chromium. The parent run's description must name
the best cell and show the comparison's figures, loaded (natural width > 0)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import mlpsuite
from mlpsuite.tracking.store import _sqlite_path
from tests.browser import chromium, click_all, loaded_images, page_text, wait_until
from tests.grids import clean_env, mlpsuite_command, ready_store
from tests.servers import free_port, start_suite_server, stop, wait_for_http

QUESTION = "Which activation separates the circles?"
VIEW = "workflowType=machine_learning"


def _grid(name: str) -> dict:
    """scikit-learn's MLP: a real grid whose workers start in a second (no framework import)."""
    return {
        "name": name,
        "description": QUESTION,
        "dataset": {"name": "circles"},
        "model": {"hidden": [8], "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "training": {"epochs": 4, "batch_size": 32},
        "backends": ["sklearn"],
        "seeds": [0, 1],
        "grid": {"model.activation": ["identity", "tanh"]},
    }


@pytest.fixture(scope="module")
def browser():
    with chromium() as session:
        yield session


def _start_ui(folder: Path, experiment: str) -> tuple[subprocess.Popen, str]:
    """`mlpsuite ui EXPERIMENT --open` in `folder`, on the store a run there leaves by default
    (mlruns/): the process and the experiment page it printed. The "browser" it opens (Python's
    webbrowser reads $BROWSER) writes the address it was given into `opened.txt`."""
    port, log = free_port(), folder / "ui.log"
    browser = (
        f"{sys.executable} -c \"import sys; open('{folder / 'opened.txt'}', 'w')"
        '.write(sys.argv[1])" %s'
    )
    with open(log, "w", encoding="utf-8") as output:
        process = subprocess.Popen(
            mlpsuite_command("ui", experiment, "--port", str(port), "--open"),
            cwd=folder,
            env={**clean_env(), "BROWSER": browser},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_http(f"http://127.0.0.1:{port}/health", process, log=log)
    # "Open LINK" comes from a process beside the UI once it answers: a moment after /health.
    printed = wait_until(
        lambda: re.search(r"Open (http://\S+)", log.read_text(encoding="utf-8")),
        timeout=30,
        what=f"`mlpsuite ui`'s Open line in {log}",
    )
    return process, printed.group(1)


def _parent_page_shows_the_answer(browser, address: str, result, screenshot: Path) -> list[dict]:
    """Open the parent run's page, expand its description; the figures that loaded."""
    browser.get(
        f"{address}/#/experiments/{result.experiment_id}/runs/{result.parent_run_id}?{VIEW}"
    )
    best = result.comparison.best()["cell"]
    wait_until(lambda: QUESTION in page_text(browser), what="the parent run's description")
    wait_until(
        lambda: click_all(browser, "Show more") or "Show less" in page_text(browser),
        what="the description's Show more",
    )
    # The ranking and the curves at the top, the speed figure below the tables: each loaded.
    figures = wait_until(
        lambda: (
            [image for image in loaded_images(browser, "get-artifact") if image["width"] > 0]
            if all(image["complete"] for image in loaded_images(browser, "get-artifact"))
            else None
        ),
        what="the comparison figures, loaded",
    )
    browser.save_screenshot(str(screenshot))
    text = page_text(browser)
    assert f"Best: {best}" in text, text[:2000]
    assert "comparison of 4 trials" in text
    return figures


def test_mlflow_ui_shows_the_figures_and_the_best_cell(tmp_path, browser):
    (tmp_path / "mlruns").mkdir()
    store = _sqlite_path(ready_store(tmp_path))
    assert store is not None
    shutil.copyfile(store, tmp_path / "mlruns" / "mlflow.db")  # where a run leaves it
    result = mlpsuite.run(
        _grid("dashboard"),
        tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        progress=False,
    )
    ui, experiment_page = _start_ui(tmp_path, "dashboard")
    try:
        assert experiment_page.endswith(f"/#/experiments/{result.experiment_id}?{VIEW}")
        address = experiment_page.split("/#/")[0]
        # MLflow's API answers on localhost, from the store in the folder's mlruns/.
        request = urllib.request.Request(
            f"{address}/api/2.0/mlflow/experiments/search",
            data=b'{"max_results": 10}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert {e["name"] for e in json.load(response)["experiments"]} == {
                "Default",
                "dashboard",
            }
        opened = wait_until(
            lambda: (tmp_path / "opened.txt").read_text(), timeout=30, what="--open's browser"
        )
        assert opened == experiment_page
        browser.get(experiment_page)
        # The experiment's description: the latest grid's question and its best cell.
        wait_until(lambda: QUESTION in page_text(browser), what="the experiment's description")
        assert "Best:" in page_text(browser) and "Traces 0" not in page_text(browser)
        figures = _parent_page_shows_the_answer(
            browser, address, result, tmp_path / "ui-parent-run.png"
        )
    finally:
        stop(ui)
    names = set()
    for image in figures:
        name = re.search(r"comparison%2F(\w+)\.png", image["src"])
        assert name is not None, image["src"]
        names.add(name.group(1))
    assert {"final_metric", "curves"} <= names
    assert (tmp_path / "ui-parent-run.png").stat().st_size > 10_000


def test_a_server_with_served_artifacts_shows_them_too(tmp_path, browser):
    port = free_port()
    server = start_suite_server(tmp_path, port, ready_store(tmp_path), tmp_path / "artifacts")
    address = f"http://127.0.0.1:{port}"
    try:
        result = mlpsuite.run(_grid("dashboard-server"), tracking_uri=address, progress=False)
        assert result.url.startswith(f"{address}/#/experiments/")
        figures = _parent_page_shows_the_answer(
            browser, address, result, tmp_path / "server-parent-run.png"
        )
    finally:
        stop(server)
    assert any("final_metric" in image["src"] for image in figures)
    # The server kept the figures in its own artifact folder: the browser got them through it.
    assert list((tmp_path / "artifacts").rglob("final_metric.png"))
