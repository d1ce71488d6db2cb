"""The lecture's figures: what each plots, checked against an independent computation."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from mlpsuite import figures
from mlpsuite.data import load_dataset
from mlpsuite.errors import ReportError
from mlpsuite.layers import ACTIVATIONS
from mlpsuite.registry import FIGURE_NAMES
from tests.grids import cli_in_process, ready_store, run_in_process, run_mlpsuite, write_grid

KINKS = (0.0, -3.0, 3.0)  # the ReLU family's at 0, hard_sigmoid's at ±3


def _title(axes) -> str:
    return "".join(axes.get_title(loc) for loc in ("left", "center", "right"))


def _check_has_finite_data(figure) -> None:
    """Every titled panel draws something, and every plotted coordinate is finite."""
    panels = [axes for axes in figure.axes if _title(axes)]
    assert panels
    for axes in panels:
        assert axes.lines or axes.collections or axes.patches, f"panel {_title(axes)!r} is empty"
        for line in axes.lines:
            assert np.all(np.isfinite(line.get_xydata())), f"{_title(axes)}: {line.get_label()}"
        for collection in axes.collections:
            for path in collection.get_paths():
                assert np.all(np.isfinite(path.vertices)), _title(axes)


def _panel(figure, title: str):
    return next(axes for axes in figure.axes if _title(axes) == title)


def _line(axes, label: str):
    return next(line for line in axes.lines if line.get_label() == label)


# ---------------------------------------------------------------- activations


@pytest.fixture(scope="module")
def activation_figure():
    figure = figures.activations()
    yield figure
    plt.close(figure)


@pytest.mark.check
def test_activations_has_every_activation_with_finite_data(activation_figure):
    _check_has_finite_data(activation_figure)
    assert {_title(axes) for axes in activation_figure.axes} - {""} == set(ACTIVATIONS)


@pytest.mark.check
def test_plotted_derivatives_match_central_differences_of_the_plotted_functions(activation_figure):
    for name in ACTIVATIONS:
        axes = _panel(activation_figure, name)
        x, values = _line(axes, "f(x)").get_data()
        _, slopes = _line(axes, "f'(x), closed form").get_data()
        assert x.min() == -4.0 and x.max() == 4.0
        numerical = (values[2:] - values[:-2]) / (x[2:] - x[:-2])
        inner = x[1:-1]
        smooth = np.all([np.abs(inner - kink) > 0.05 for kink in KINKS], axis=0)
        np.testing.assert_allclose(slopes[1:-1][smooth], numerical[smooth], atol=2e-4, err_msg=name)


# ---------------------------------------------------------------- scalers


@pytest.fixture(scope="module")
def wine_train():
    return load_dataset(figures.SCALER_DATASET).X_train.astype(np.float64)


@pytest.mark.check
def test_scaled_features_match_sklearn(wine_train):
    scaled = figures.scaled_features(wine_train)
    assert list(scaled) == ["none", "minmax", "robust", "standard"]
    np.testing.assert_array_equal(scaled["none"], wine_train)
    standard = scaled["standard"]
    np.testing.assert_allclose(standard.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(standard.std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(standard, StandardScaler().fit_transform(wine_train), atol=1e-5)
    minmax = scaled["minmax"]
    np.testing.assert_allclose(minmax.min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(minmax.max(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(minmax, MinMaxScaler().fit_transform(wine_train), atol=1e-5)
    np.testing.assert_allclose(
        scaled["robust"], RobustScaler().fit_transform(wine_train), atol=1e-5
    )


@pytest.mark.check
def test_scalers_figure_shows_the_raw_scales_apart(wine_train):
    figure = figures.scalers()
    try:
        _check_has_finite_data(figure)
        raw, *scaled_panels = [axes for axes in figure.axes if _title(axes)]
        assert [t.get_text() for t in scaled_panels[-1].get_xticklabels()] == list(
            load_dataset("wine").feature_names
        )
        # Proline lives in the hundreds, hue around 1: the raw panel's axis must reach the largest.
        assert raw.get_ylim()[1] >= wine_train.max()
        low, high = _panel(figure, figures.SCALER_CAPTIONS["standard"]).get_ylim()
        assert -10 < low < 0 < high < 10
    finally:
        plt.close(figure)


# ---------------------------------------------------------------- optimizers


def _rosenbrock_gradient(x: float, y: float) -> np.ndarray:
    return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


def _beale_gradient(x: float, y: float) -> np.ndarray:
    def terms(x, y):
        return np.array([1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3])

    # d/dx and d/dy of each term, then the chain rule through the squares.
    d_dx = np.array([y - 1.0, y**2 - 1.0, y**3 - 1.0])
    d_dy = np.array([x, 2.0 * x * y, 3.0 * x * y**2])
    return np.array([2.0 * terms(x, y) @ d_dx, 2.0 * terms(x, y) @ d_dy])


@pytest.mark.parametrize(
    "function_name, gradient", [("rosenbrock", _rosenbrock_gradient), ("beale", _beale_gradient)]
)
@pytest.mark.check
def test_closed_form_gradients_match_finite_differences(function_name, gradient):
    surface = figures.SURFACES[function_name]
    rng = np.random.default_rng(0)
    for x, y in rng.uniform(-1.5, 1.5, size=(5, 2)):
        h = 1e-6
        numerical = [
            (surface.value(x + h, y) - surface.value(x - h, y)) / (2 * h),
            (surface.value(x, y + h) - surface.value(x, y - h)) / (2 * h),
        ]
        np.testing.assert_allclose(gradient(x, y), numerical, rtol=1e-5, atol=1e-5)
        point = np.array([x, y])
        np.testing.assert_allclose(np.asarray(surface.gradient(point)), gradient(x, y), rtol=1e-6)


@pytest.mark.check
def test_documented_settings_match_the_surfaces():
    doc = figures.optimizers.__doc__
    assert doc is not None
    rows = {
        cells[0]: cells[1:]
        for line in doc.splitlines()
        if (cells := [c.strip() for c in line.strip().strip("|").split("|")])[0] in figures.SURFACES
    }
    header = next(line for line in doc.splitlines() if "| function" in line)
    optimizer_columns = [c.strip() for c in header.strip().strip("|").split("|")][3:]
    assert optimizer_columns == list(figures.OPTIMIZERS)
    for name, surface in figures.SURFACES.items():
        start, steps, *rates = rows[name]
        assert tuple(map(float, re.findall(r"-?[\d.]+", start))) == surface.start
        assert int(steps) == surface.steps
        assert [float(rate) for rate in rates] == [
            surface.learning_rates[o] for o in optimizer_columns
        ]


@pytest.fixture(scope="module")
def rosenbrock_paths():
    return figures.optimizer_paths("rosenbrock")


@pytest.mark.backend("jax")
def test_adam_ends_within_1e_2_of_rosenbrocks_minimum(backend, rosenbrock_paths):
    surface = figures.SURFACES["rosenbrock"]
    for name, path in rosenbrock_paths.items():
        assert path.shape == (surface.steps + 1, 2), name
        assert np.all(np.isfinite(path)), name
    assert np.linalg.norm(rosenbrock_paths["adam"][-1] - np.array([1.0, 1.0])) < 1e-2


@pytest.mark.backend("jax")
def test_sgd_first_step_is_start_minus_rate_times_gradient(backend, rosenbrock_paths):
    surface = figures.SURFACES["rosenbrock"]
    start = np.asarray(surface.start, np.float32).astype(np.float64)  # the optimizer's is float32
    path = rosenbrock_paths["sgd"]
    np.testing.assert_array_equal(path[0], start)
    expected = start - surface.learning_rates["sgd"] * _rosenbrock_gradient(*start)
    np.testing.assert_allclose(path[1], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.backend("jax")
def test_optimizers_figure_draws_every_path_on_both_functions(backend):
    figure = figures.optimizers()
    try:
        _check_has_finite_data(figure)
        panels = [axes for axes in figure.axes if _title(axes)]
        assert len(panels) == len(figures.SURFACES)
        for axes in panels:
            drawn = [str(line.get_label()).split(",")[0] for line in axes.lines]
            assert set(figures.OPTIMIZERS) <= set(drawn)
            assert axes.collections, "no contours"
    finally:
        plt.close(figure)


# ---------------------------------------------------------------- registry, files and CLI


@pytest.mark.check
def test_registry_names_match_the_cli_choices():
    assert tuple(figures.FIGURES) == FIGURE_NAMES


@pytest.mark.check
def test_write_figures_writes_pngs_and_closes_them(tmp_path):
    with pytest.raises(ValueError, match="Expected figure names from .*, got 'nope'"):
        figures.write_figures(["scalers", "nope"], tmp_path)
    assert not list(tmp_path.iterdir())  # refused before drawing anything
    open_before = set(plt.get_fignums())
    written = figures.write_figures(["scalers"], tmp_path / "out", unused_option="ignored")
    assert written == [tmp_path / "out" / "scalers.png"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(plt.get_fignums()) == open_before


def test_cli_writes_the_png(tmp_path):
    done = run_mlpsuite("figures", "activations", "--out", "pictures", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    png = tmp_path / "pictures" / "activations.png"
    assert done.stdout.split() == [str(png.relative_to(tmp_path))]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.check
def test_cli_unknown_figure_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli_in_process(capsys, "figures", "activations", "landscapes")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "invalid choice: 'landscapes'" in err
    assert out == "" and not (tmp_path / "figures").exists()


def test_cli_logs_the_pngs_as_a_figures_run(tmp_path):
    uri = ready_store(tmp_path)
    done = run_in_process(
        "figures",
        "scalers",
        "--out",
        str(tmp_path / "out"),
        "--log",
        "lecture",
        "--tracking-uri",
        uri,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lecture")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'figures'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "figures" and run.info.status == "FINISHED"
    assert run.info.run_id in done.stderr
    assert [artifact.path for artifact in client.list_artifacts(run.info.run_id)] == ["scalers.png"]
    logged = client.download_artifacts(run.info.run_id, "scalers.png", str(tmp_path))
    assert Path(logged).read_bytes() == (tmp_path / "out" / "scalers.png").read_bytes()


# ---------------------------------------------------------------- gradients and dead units


@pytest.mark.backend("jax")
def test_computed_gradients_show_sigmoids_gradient_vanishing(backend):
    figure = figures.gradients()
    try:
        _check_has_finite_data(figure)
        (axes,) = [axes for axes in figure.axes if _title(axes)]
        assert axes.get_yscale() == "log"
        norms = {line.get_label(): np.asarray(line.get_ydata()) for line in axes.lines}
        assert set(figures.GRADIENT_ACTIVATIONS) <= set(norms)
        layers = len(figures.GRADIENT_HIDDEN) + 1
        for name, values in norms.items():
            assert len(values) == layers and np.all(values > 0), name
        # The lecture's claim: sigmoid's first-layer gradient is orders of magnitude below ReLU's.
        assert norms["sigmoid"][0] * 10 <= norms["relu"][0]
    finally:
        plt.close(figure)


EPOCHS = 3


@pytest.fixture(scope="module")
def diagnostics_grid(tmp_path_factory):
    """A real grid with diagnostics (torch, sigmoid and relu, 3 hidden layers);
    (folder, uri, name)."""
    folder = tmp_path_factory.mktemp("diagnostics")
    uri = ready_store(folder)
    path = write_grid(
        folder,
        "diag",
        diagnostics=True,
        backends=["torch"],
        model={"hidden": [8, 8, 8]},
        grid={"model.activation": ["sigmoid", "relu"]},
        training={"epochs": EPOCHS},
    )
    done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder, uri, "diag"


def _logged(uri: str, experiment: str, activation: str, metric: str, step: int) -> float:
    """The metric at `step` in the one trial run of `activation`, read with MLflow's own client."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    experiment_id = found.experiment_id
    (run,) = client.search_runs(
        [experiment_id],
        f"tags.`mlpsuite.kind` = 'trial' and params.`model.activation` = '{activation}'",
    )
    (value,) = [
        m.value for m in client.get_metric_history(run.info.run_id, metric) if m.step == step
    ]
    return value


def test_grid_figures_plot_the_logged_diagnostics(diagnostics_grid):
    _, uri, experiment = diagnostics_grid
    dead = figures.dead_units(experiment=experiment, tracking_uri=uri)
    norms = figures.gradients(experiment=experiment, tracking_uri=uri)
    try:
        for figure in (dead, norms):
            _check_has_finite_data(figure)
        (axes,) = [axes for axes in dead.axes if _title(axes)]
        for activation in ("sigmoid", "relu"):
            epochs, shares = map(np.asarray, _line(axes, activation).get_data())
            assert list(epochs) == list(range(EPOCHS + 1))
            for epoch in (0, EPOCHS):
                expected = np.mean(
                    [
                        _logged(uri, experiment, activation, f"dead_fraction/dense_{layer}", epoch)
                        for layer in (1, 2, 3)
                    ]
                )
                assert shares[epoch] == pytest.approx(expected, abs=1e-12), (activation, epoch)
        (axes,) = [axes for axes in norms.axes if _title(axes)]
        assert axes.get_yscale() == "log"
        for activation in ("sigmoid", "relu"):
            logged = [
                _logged(uri, experiment, activation, f"grad_norm/{layer}", 0)
                for layer in ("dense_1", "dense_2", "dense_3", "output")
            ]
            plotted = np.asarray(_line(axes, activation).get_ydata())
            np.testing.assert_allclose(plotted, logged, rtol=1e-12)
    finally:
        plt.close(dead)
        plt.close(norms)


def test_diagnostics_reach_mlflow_per_layer_from_epoch_zero(diagnostics_grid):
    _, uri, experiment = diagnostics_grid
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    for run in client.search_runs([found.experiment_id], "tags.`mlpsuite.kind` = 'trial'"):
        for name in (
            "grad_norm/dense_1",
            "dead_fraction/dense_2",
            "act_std/dense_3",
            "weight_norm/output",
        ):
            history = client.get_metric_history(run.info.run_id, name)
            assert sorted(m.step for m in history) == list(range(EPOCHS + 1)), name
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == list(
            range(1, EPOCHS + 1)
        )


def test_cli_draws_both_grid_figures(diagnostics_grid):
    folder, uri, experiment = diagnostics_grid
    done = run_in_process(
        "figures",
        "gradients",
        "dead_units",
        "--experiment",
        experiment,
        "--tracking-uri",
        uri,
        "--out",
        "out",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    for name in ("gradients", "dead_units"):
        assert (folder / "out" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_unknown_experiment_is_one_line_exit_2(diagnostics_grid):
    folder, uri, _ = diagnostics_grid
    done = run_in_process(
        "figures",
        "gradients",
        "--experiment",
        "nope",
        "--tracking-uri",
        uri,
        "--out",
        "refused",
        cwd=folder,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "nope" in done.stderr and "diag" in done.stderr  # names it and the experiments there
    assert not (folder / "refused").exists()


@pytest.mark.check
def test_cli_dead_units_without_experiment_is_one_line_exit_2(tmp_path):
    done = run_in_process("figures", "dead_units", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "--experiment NAME" in done.stderr
    assert not (tmp_path / "figures").exists()


def test_grid_without_diagnostics_is_refused_in_one_line(diagnostics_grid):
    folder, uri, _ = diagnostics_grid
    path = write_grid(folder, "plain", backends=["sklearn"], training={"epochs": 2})
    assert run_in_process("run", str(path), "--tracking-uri", uri, cwd=folder).returncode == 0
    for figure in (figures.gradients, figures.dead_units):
        with pytest.raises(
            ReportError,
            match=r"^experiment 'plain': no finished trial .* set "
            r"diagnostics: true in its config and run it again$",
        ):
            figure(experiment="plain", tracking_uri=uri)
