"""The lecture's figures (matplotlib, Agg), each drawn from real computations.

- `activations`: every activation layer and its closed-form derivative on [-4, 4].
- `scalers`: the wine features before and after each scaling layer ("the y-axes are different").
- `optimizers`: the paths of Keras optimizers on the Rosenbrock and Beale functions.
- `gradients`: each Dense kernel's gradient norm at initialisation, per activation (vanishing
  gradients); computed on digits, or read from a grid's diagnostics (`experiment=`).
- `dead_units`: the share of dead hidden units per epoch and activation, read from a grid's
  diagnostics (`experiment=`, required).
- `landscape`: 1-D and 2-D slices of the loss around a run's saved model (`run=`, required).

`FIGURES` maps a name to its function; `write_figures` writes them as PNG files (`mlpsuite
figures`). A figure function takes keyword options only and ignores those it does not use, so
`write_figures` can hand every figure the same options (`experiment=` and `tracking_uri=` for
the figures of a grid). Adding a figure is one entry in `FIGURES` plus its name in
`registry.FIGURE_NAMES`, where the CLI finds its choices without importing Keras.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures go to files and to MLflow

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mlpsuite.data import load_dataset  # noqa: E402
from mlpsuite.diagnostics import PROBE_ROWS, LayerProbe, probe_rows  # noqa: E402
from mlpsuite.errors import ConfigError, ReportError  # noqa: E402
from mlpsuite.layers import ACTIVATIONS, SCALERS, get_activation, get_scaler  # noqa: E402
from mlpsuite.models import build_mlp, initialize_dense_weights  # noqa: E402
from mlpsuite.registry import FIGURE_NAMES, lookup  # noqa: E402

# ---------------------------------------------------------------- activations

ACTIVATION_RANGE = (-4.0, 4.0)
# A step of 0.01: the kinks (0 for the ReLU family, ±3 for hard_sigmoid) fall on grid points.
ACTIVATION_POINTS = 801
ACTIVATION_COLUMNS = 5


def activation_curves(x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each registered activation, built with its default parameters: (f(x), f'(x)) at `x`.

    The values come from calling the layer, the slopes from its closed-form `derivative`.
    """
    # One feature per row: PReLU learns one slope per feature, so it gets one slope here.
    inputs = ops.convert_to_tensor(np.asarray(x, dtype="float32").reshape(-1, 1))
    curves = {}
    for name in ACTIVATIONS:
        layer = get_activation(name)
        values = layer(inputs)  # builds the layer (PReLU's slope) before `derivative` reads it
        curves[name] = (ops.convert_to_numpy(values).ravel(),
                        ops.convert_to_numpy(layer.derivative(inputs)).ravel())
    return curves


def activations(**_options: Any) -> Figure:
    """Every registered activation f (solid) and its derivative f' (dashed) on [-4, 4].

    One panel per activation, titled with its registry name; default parameters (leaky_relu
    alpha 0.01, elu alpha 1, prelu's initial slope 0.25, ...). The spare panel holds the legend.
    """
    x = np.linspace(*ACTIVATION_RANGE, ACTIVATION_POINTS)
    curves = activation_curves(x)
    rows = math.ceil((len(curves) + 1) / ACTIVATION_COLUMNS)  # +1: the legend's panel
    figure, grid = plt.subplots(rows, ACTIVATION_COLUMNS, figsize=(3.2 * ACTIVATION_COLUMNS, 2.5 * rows),
                                sharex=True, squeeze=False, layout="constrained")
    panels = list(grid.ravel())
    for axes, (name, (values, slopes)) in zip(panels, curves.items()):
        axes.axhline(0.0, color="0.85", linewidth=0.8, zorder=0)
        axes.axvline(0.0, color="0.85", linewidth=0.8, zorder=0)
        axes.plot(x, values, color="C0", label="f(x)")
        axes.plot(x, slopes, color="C3", linestyle="--", label="f'(x), closed form")
        axes.set_title(name)
    spare = panels[len(curves):]
    spare[0].legend(*panels[0].get_legend_handles_labels(), loc="center", frameon=False,
                    title=f"x in [{ACTIVATION_RANGE[0]:g}, {ACTIVATION_RANGE[1]:g}]")
    for axes in spare:
        axes.set_axis_off()
    figure.suptitle("Activation functions and their derivatives")
    return figure


# ---------------------------------------------------------------- feature scaling

SCALER_DATASET = "wine"
SCALER_CAPTIONS = {
    "none": "none: each feature on its own scale",
    "minmax": "minmax: each feature in [0, 1]",
    "robust": "robust: median 0, interquartile range 1",
    "standard": "standard: mean 0, standard deviation 1",
}


def scaled_features(X: np.ndarray) -> dict[str, np.ndarray]:
    """`X` as it is ("none") and after each scaling layer, adapted on `X` itself."""
    scaled = {"none": np.asarray(X)}
    for name in SCALERS:
        scaler = get_scaler(name)
        scaler.adapt(X)
        scaled[name] = ops.convert_to_numpy(scaler(ops.convert_to_tensor(X)))
    return scaled


def scalers(dataset: str = SCALER_DATASET, **_options: Any) -> Figure:
    """Box plots of every feature of `dataset`'s training split, unscaled and after each scaler.

    One row per scaler (each adapted on the training split); every row keeps its own y-axis,
    so the unscaled row shows what the lecture means by features "living" on different scales.
    """
    data = load_dataset(dataset)
    scaled = scaled_features(data.X_train)
    figure, panels = plt.subplots(len(scaled), 1, figsize=(11, 2.4 * len(scaled)), sharex=True,
                                  layout="constrained")
    positions = np.arange(1, data.input_dim + 1)
    for axes, (name, features) in zip(panels, scaled.items()):
        axes.boxplot(list(features.T), positions=positions, widths=0.6,
                     flierprops={"markersize": 3, "markeredgecolor": "0.4"},
                     medianprops={"color": "C3"})
        axes.set_title(SCALER_CAPTIONS.get(name, name), loc="left", fontsize="medium")
        axes.grid(axis="y", color="0.9")
    panels[-1].set_xticks(positions, data.feature_names, rotation=30, ha="right")
    figure.suptitle(f"{dataset}: the {len(data.X_train)} training rows before and after scaling "
                    "(note the y-axes)")
    return figure


# ---------------------------------------------------------------- optimizers


def rosenbrock(x, y):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2; minimum 0 at (1, 1), at the end of a curved valley."""
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def _rosenbrock_gradient(point):
    """(df/dx, df/dy) = (-2 (1 - x) - 400 x (y - x^2), 200 (y - x^2))."""
    x, y = point[0], point[1]
    return ops.stack([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


def beale(x, y):
    """f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2; minimum 0 at (3, 0.5)."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_gradient(point):
    """With a, b, c the three terms inside the squares:
    df/dx = 2 (a (y - 1) + b (y^2 - 1) + c (y^3 - 1)),  df/dy = 2x (a + 2by + 3cy^2)."""
    x, y = point[0], point[1]
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y * y * y
    return ops.stack([2.0 * (a * (y - 1.0) + b * (y * y - 1.0) + c * (y * y * y - 1.0)),
                      2.0 * x * (a + 2.0 * b * y + 3.0 * c * y * y)])


@dataclasses.dataclass(frozen=True)
class Surface:
    """A 2-D test function and the settings every optimizer runs with on it.

    Args:
        title: the panel's title.
        value: f(x, y) on NumPy arrays (the contours).
        gradient: the closed-form gradient at a `(2,)` tensor, in `keras.ops` (any backend).
        minimum: where f is 0.
        start: the first point of every path.
        steps: optimizer steps per path.
        learning_rates: per optimizer name (`OPTIMIZERS`).
        extent: (x_min, x_max, y_min, y_max) of the panel.
    """

    title: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gradient: Callable[[Any], Any]
    minimum: tuple[float, float]
    start: tuple[float, float]
    steps: int
    learning_rates: dict[str, float]
    extent: tuple[float, float, float, float]


OPTIMIZERS: dict[str, Callable[[float], keras.optimizers.Optimizer]] = {
    "sgd": lambda rate: keras.optimizers.SGD(rate),
    "momentum": lambda rate: keras.optimizers.SGD(rate, momentum=0.9),
    "nesterov": lambda rate: keras.optimizers.SGD(rate, momentum=0.9, nesterov=True),
    "rmsprop": lambda rate: keras.optimizers.RMSprop(rate),
    "adam": lambda rate: keras.optimizers.Adam(rate),
}

# Chosen so that the paths stay apart and readable, and so that Adam ends within 1e-2 of
# Rosenbrock's minimum (measured: 1e-4 after 1000 steps; 7e-3 after 700). Near (1, 1)
# Rosenbrock's largest curvature is ~1000, so plain SGD needs a rate below 2e-3 to be
# stable; it crawls along the valley, which is the point. 7500 steps in all: ~4 s on JAX (CPU).
SURFACES: dict[str, Surface] = {
    "rosenbrock": Surface(
        title="Rosenbrock  (1 - x)² + 100 (y - x²)²", value=rosenbrock, gradient=_rosenbrock_gradient,
        minimum=(1.0, 1.0), start=(-1.2, 1.0), steps=1000,
        learning_rates={"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "rmsprop": 1e-2, "adam": 0.2},
        extent=(-1.6, 1.6, -0.6, 1.6)),
    "beale": Surface(
        title="Beale  (1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²", value=beale,
        gradient=_beale_gradient, minimum=(3.0, 0.5), start=(1.0, 1.5), steps=500,
        learning_rates={"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "rmsprop": 1e-2, "adam": 0.05},
        extent=(-0.5, 4.5, -1.5, 2.0)),
}


def optimizer_path(surface: Surface, optimizer_name: str) -> np.ndarray:
    """The points a fresh Keras optimizer visits on `surface`: shape (steps + 1, 2), start first."""
    point = keras.Variable(np.asarray(surface.start, dtype="float32"), name="point")
    optimizer = OPTIMIZERS[optimizer_name](surface.learning_rates[optimizer_name])
    path = np.empty((surface.steps + 1, 2))
    path[0] = ops.convert_to_numpy(point.value)  # the float32 start the optimizer sees
    for step in range(1, surface.steps + 1):
        optimizer.apply([surface.gradient(point.value)], [point])
        # A copy each step: torch updates the variable's tensor in place.
        path[step] = ops.convert_to_numpy(point.value)
    return path


def optimizer_paths(function_name: str) -> dict[str, np.ndarray]:
    """Every optimizer's path on "rosenbrock" or "beale" with the settings in `SURFACES`."""
    surface = lookup(SURFACES, function_name, "test function")
    return {name: optimizer_path(surface, name) for name in OPTIMIZERS}


def optimizers(**_options: Any) -> Figure:
    """Paths of SGD, momentum, Nesterov, RMSProp and Adam on Rosenbrock and Beale.

    Real Keras optimizers (Keras' defaults except the rate; momentum and Nesterov with momentum
    0.9) step a `keras.Variable` of shape (2,) along the closed-form gradient, drawn over
    contours of f at log-spaced levels. Settings (`SURFACES`):

    | function   | start      | steps | sgd  | momentum | nesterov | rmsprop | adam |
    |------------|------------|-------|------|----------|----------|---------|------|
    | rosenbrock | (-1.2, 1)  | 1000  | 1e-3 | 1e-3     | 1e-3     | 1e-2    | 0.2  |
    | beale      | (1, 1.5)   | 500   | 1e-3 | 1e-3     | 1e-3     | 1e-2    | 0.05 |

    Adam ends within 1e-2 of Rosenbrock's minimum (1, 1); Beale's minimum is (3, 0.5).
    """
    figure, panels = plt.subplots(1, len(SURFACES), figsize=(7.5 * len(SURFACES), 6), squeeze=False,
                                  layout="constrained")
    for axes, (name, surface) in zip(panels[0], SURFACES.items()):
        _draw_paths(figure, axes, surface, optimizer_paths(name))
    return figure


def _draw_paths(figure: Figure, axes, surface: Surface, paths: dict[str, np.ndarray]) -> None:
    x_min, x_max, y_min, y_max = surface.extent
    x, y = np.meshgrid(np.linspace(x_min, x_max, 400), np.linspace(y_min, y_max, 400))
    heights = surface.value(x, y)
    # Whole half-decades, from just above the minimum (f = 0 there) to the panel's highest f.
    lowest = np.floor(2 * np.log10(max(heights[heights > 0].min(), 1e-3))) / 2
    levels = 10.0 ** np.arange(lowest, np.log10(heights.max()) + 0.5, 0.5)
    filled = axes.contourf(x, y, heights, levels=levels, norm=LogNorm(), cmap="Greys", alpha=0.35)
    axes.contour(x, y, heights, levels=levels, colors="0.55", linewidths=0.4)
    figure.colorbar(filled, ax=axes, label="f(x, y), log scale", shrink=0.8)
    minimum = np.asarray(surface.minimum)
    for index, (name, path) in enumerate(paths.items()):
        distance = np.linalg.norm(path[-1] - minimum)
        label = f"{name}, lr {surface.learning_rates[name]:g}: {distance:.2g}"
        axes.plot(path[:, 0], path[:, 1], color=f"C{index}", linewidth=1.4, label=label)
        axes.plot(*path[-1], "o", color=f"C{index}", markersize=5)
    axes.plot(*surface.start, "ko", markersize=6, label="start")
    axes.plot(*minimum, "k*", markersize=14, label=f"minimum {surface.minimum}")
    axes.set_xlim(x_min, x_max)
    axes.set_ylim(y_min, y_max)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(f"{surface.title}\n{surface.steps} steps", fontsize="medium")
    # Below the panel: inside, it would hide parts of the paths.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, fontsize="small",
                frameon=False, title="optimizer, learning rate: final distance to the minimum",
                title_fontsize="small")


# ---------------------------------------------------------------- a grid's diagnostics (MLflow)

# The activations of the lecture, in its order: the computed `gradients` figure draws these,
# and the figures of a grid list them first.
GRADIENT_ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "leaky_relu", "swish")
GRADIENT_DATASET = "digits"
GRADIENT_HIDDEN = (32,) * 8
GRADIENT_SEEDS = (0, 1, 2)
GRADIENT_INITIALIZER = "glorot_uniform"

# What the figures below draw: panel title -> activation -> one row per run (a seed, a backend)
# and one column per layer or epoch.
Panels = dict[str, dict[str, np.ndarray]]


def grid_diagnostics(experiment: str, prefix: str, tracking_uri: str | None = None
                     ) -> dict[str, dict[str, list[dict[str, dict[int, float]]]]]:
    """The metrics named `prefix...` of `experiment`'s newest grid, by architecture and activation.

    Returns `model.hidden` as logged ("[8, 8, 8]") -> activation ("relu", "leaky_relu(alpha=0.1)")
    -> one `{metric: {step: value}}` per FINISHED trial run that has them (the run that counts
    for its key, as in `mlpsuite compare`). Seeds, backends and every other grid key are pooled.
    Raises ReportError, naming the experiment, when there is nothing to draw.
    """
    # The grid is read back as `mlpsuite compare` reads it: its newest parent, its manifest.
    from mlpsuite.analysis import _manifest, _parent, counted_run
    from mlpsuite.tracking import TAG_KEY, Tracker, resolve_uri

    tracker = Tracker(resolve_uri(tracking_uri, create=False))
    experiment_id = tracker.find_experiment(experiment)
    if experiment_id is None:
        names = ", ".join(tracker.experiment_names()) or "(none)"
        raise ReportError(f"no experiment {experiment!r} in {tracker.uri}; experiments: {names}")
    parent = _parent(tracker, experiment, experiment_id, None)
    keys = {trial["key"] for trial in _manifest(tracker, parent.info.run_id)["trials"]}
    by_key: dict[str, list] = {}
    for run in tracker.trial_runs(experiment_id, keys):
        by_key.setdefault(run.data.tags.get(TAG_KEY), []).append(run)
    runs = [run for run in map(counted_run, by_key.values()) if run.info.status == "FINISHED"
            and any(name.startswith(prefix) for name in run.data.metrics)]
    if not runs:
        raise ReportError(f"experiment {experiment!r}: no finished trial of its newest grid (run "
                          f"{parent.info.run_id}) has {prefix}* metrics; set diagnostics: true in "
                          "its config and run it again")
    histories = tracker.diagnostic_histories(runs, prefix)
    grouped: dict[str, dict[str, list]] = {}
    for run in sorted(runs, key=lambda run: _depth_order(run.data.params.get("model.hidden", "[]"))):
        params = run.data.params
        by_activation = grouped.setdefault(params.get("model.hidden", "?"), {})
        by_activation.setdefault(_activation_label(params), []).append(histories[run.info.run_id])
    return {hidden: _by_activation_order(by_activation) for hidden, by_activation in grouped.items()}


def _activation_label(params: dict[str, str]) -> str:
    """`model.activation` with its logged parameters: "elu", "leaky_relu(alpha=0.1)"."""
    name = params.get("model.activation", "?")
    prefix = "model.activation."
    extras = ",".join(f"{key[len(prefix):]}={value}" for key, value in sorted(params.items())
                      if key.startswith(prefix))
    return f"{name}({extras})" if extras else name


def _depth_order(hidden: str) -> tuple:
    try:
        units = json.loads(hidden)
    except ValueError:
        return (math.inf, hidden)
    return (len(units), units) if isinstance(units, list) else (math.inf, hidden)


def _by_activation_order(by_activation: dict[str, Any]) -> dict[str, Any]:
    """The lecture's order (GRADIENT_ACTIVATIONS), then the others by name."""
    def order(label: str) -> tuple:
        name = label.split("(")[0]
        known = GRADIENT_ACTIVATIONS.index(name) if name in GRADIENT_ACTIVATIONS else len(GRADIENT_ACTIVATIONS)
        return (known, label)
    return {label: by_activation[label] for label in sorted(by_activation, key=order)}


def _layer_order(metric: str) -> tuple[int, int]:
    """dense_1, dense_2, ..., dense_10, output."""
    layer = metric.split("/", 1)[1]
    return (1, 0) if layer == "output" else (0, int(layer.rsplit("_", 1)[1]))


def _hidden_label(hidden: str | tuple[int, ...]) -> str:
    """ "[32, 32, 32]" or (32, 32, 32) -> "3 hidden layers × 32 units"; otherwise the list."""
    units = _depth_order(hidden)[1] if isinstance(hidden, str) else list(hidden)
    if isinstance(units, list) and units and len(set(units)) == 1:
        return f"{len(units)} hidden layer{'s' if len(units) > 1 else ''} × {units[0]} units"
    return f"hidden {units}"


def _runs_note(panels: Panels) -> str:
    """How many runs each line averages (seeds, backends and other grid values pooled)."""
    counts = sorted({len(rows) for by_activation in panels.values() for rows in by_activation.values()})
    if counts == [1]:
        return "one run per line"
    n = f"n={counts[0]}" if len(counts) == 1 else f"n={counts[0]} to {counts[-1]}"
    return f"mean over {n} runs per line (seeds, backends, other grid values), band: min to max"


def _panel_grid(count: int, width: float, height: float):
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False,
                                sharey=True, layout="constrained")
    panels = list(grid.ravel())
    for axes in panels[count:]:
        axes.set_axis_off()
    return figure, panels[:count]


def _draw_runs(axes, x: np.ndarray, rows: np.ndarray, label: str, style: dict[str, Any]) -> None:
    """The mean over runs (rows) as a line, and the runs' range as a band when there are several."""
    axes.plot(x, np.nanmean(rows, axis=0), markersize=5, label=label, **style)
    if len(rows) > 1:
        axes.fill_between(x, np.nanmin(rows, axis=0), np.nanmax(rows, axis=0), color=style["color"],
                          alpha=0.12, linewidth=0)


def _activation_styles(panels: Panels) -> dict[str, dict[str, Any]]:
    """One colour, marker and dash per activation, the same in every panel: relu and leaky_relu
    (tanh and elu) nearly coincide, and must stay told apart where they do."""
    labels = _by_activation_order({label: None for by_activation in panels.values() for label in by_activation})
    markers, dashes = "osD^vPX*", ("-", "--", ":")
    return {label: {"color": f"C{index % 10}", "marker": markers[index % len(markers)],
                    "linestyle": dashes[index % len(dashes)],
                    "markerfacecolor": f"C{index % 10}" if index % 2 == 0 else "none"}
            for index, label in enumerate(labels)}


# ---------------------------------------------------------------- gradients


def initial_gradient_norms(activations: Iterable[str] = GRADIENT_ACTIVATIONS,
                           hidden: tuple[int, ...] = GRADIENT_HIDDEN,
                           seeds: Iterable[int] = GRADIENT_SEEDS) -> dict[str, np.ndarray]:
    """activation -> ||dL/dW||_F of each Dense kernel (dense_1 ... output) at initialisation.

    `build_mlp(64, 10, hidden, activation, standard scaler adapted on the training split)` on
    digits, kernels drawn by glorot_uniform from each seed, biases 0; the loss (cross-entropy on
    logits, as in training) on the diagnostics' probe batch (the first 256 training rows).
    Each array has one row per seed and one column per Dense layer.
    """
    data = load_dataset(GRADIENT_DATASET, seed=0)
    x, y = probe_rows(data.X_train, data.y_train)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    seeds = list(seeds)
    norms = {}
    for activation in activations:
        scaler = get_scaler("standard")
        scaler.adapt(data.X_train)
        model = build_mlp(data.input_dim, data.output_dim, hidden=hidden, activation=activation,
                          scaler=scaler, initializer=GRADIENT_INITIALIZER, seed=seeds[0])
        # One probe per activation: on JAX each probe is traced and compiled once (~0.25 s).
        probe = LayerProbe(model, loss)
        rows = []
        for seed in seeds:
            initialize_dense_weights(model, GRADIENT_INITIALIZER, seed)  # = build_mlp(seed=seed)
            measured = probe.measure(x, y)
            rows.append([measured[f"grad_norm/{layer.name}"] for layer in probe.dense])
        norms[activation] = np.asarray(rows)
    return norms


def grid_gradient_norms(experiment: str, tracking_uri: str | None = None) -> Panels:
    """`model.hidden` -> activation -> ||dL/dW||_F at epoch 0 (step 0) from `experiment`'s newest
    grid (`grid_diagnostics`): one row per run, one column per Dense layer, dense_1 first."""
    panels = {}
    for hidden, by_activation in grid_diagnostics(experiment, "grad_norm/", tracking_uri).items():
        panels[hidden] = {}
        for activation, runs in by_activation.items():
            layers = sorted({name for run in runs for name in run}, key=_layer_order)
            panels[hidden][activation] = np.array([[run.get(name, {}).get(0, np.nan) for name in layers]
                                                   for run in runs])
    return panels


def gradients(experiment: str | None = None, tracking_uri: str | None = None, **_options: Any) -> Figure:
    """Gradient norm of each Dense kernel at initialisation, one line per activation, log scale.

    Without `experiment`: computed here (`initial_gradient_norms`), 8 hidden layers of 32 units
    on digits, the mean of 3 seeds. With `experiment`: `grad_norm/*` at epoch 0 of that
    experiment's newest grid (`diagnostics: true`), one panel per `model.hidden`, since the
    layers of different depths are different x-axes; everything else is pooled.
    The lecture's claim: sigmoid's gradient shrinks layer by layer towards the input.
    """
    if experiment is None:
        norms = initial_gradient_norms()
        panels = {f"{GRADIENT_DATASET} ({PROBE_ROWS} training rows), {_hidden_label(GRADIENT_HIDDEN)}, "
                  f"{GRADIENT_INITIALIZER}, standard scaler\nmean of {len(GRADIENT_SEEDS)} seeds, "
                  "band: min to max; leaky_relu (alpha 0.01) lies on relu": norms}
        title = "Vanishing gradients: ||dL/dW|| of each Dense kernel at initialisation"
    else:
        grid = grid_gradient_norms(experiment, tracking_uri)
        panels = {_hidden_label(hidden): by_activation for hidden, by_activation in grid.items()}
        title = (f"{experiment}: ||dL/dW|| of each Dense kernel at initialisation (epoch 0)\n"
                 f"{_runs_note(panels)}")
    styles = _activation_styles(panels)
    widest = max(rows.shape[1] for by_activation in panels.values() for rows in by_activation.values())
    figure, axes_list = _panel_grid(len(panels), width=max(5.0, 0.75 * widest + 2), height=4.8)
    for axes, (panel, by_activation) in zip(axes_list, panels.items()):
        layers = max((rows.shape[1] for rows in by_activation.values()))
        names = [f"dense_{i}" for i in range(1, layers)] + ["output"]
        for activation, rows in by_activation.items():
            _draw_runs(axes, np.arange(rows.shape[1]), rows, activation, styles[activation])
        axes.set_yscale("log")
        axes.set_xticks(np.arange(layers), names, rotation=30, ha="right")
        axes.set_xlabel("layer (input side on the left)")
        axes.grid(which="major", color="0.9")
        axes.set_title(panel, fontsize="medium")
    axes_list[0].set_ylabel("||dL/dW||  (Frobenius norm, log scale)")
    axes_list[-1].legend(title="activation", fontsize="small", loc="best")
    figure.suptitle(title)
    return figure


# ---------------------------------------------------------------- dead units


def grid_dead_fractions(experiment: str, tracking_uri: str | None = None) -> Panels:
    """`model.hidden` -> activation -> the share of dead units, averaged over the hidden layers,
    at each epoch (step 0 = before training): one row per run, one column per epoch; NaN after
    a run's last epoch (early stopping)."""
    panels = {}
    for hidden, by_activation in grid_diagnostics(experiment, "dead_fraction/", tracking_uri).items():
        panels[hidden] = {}
        for activation, runs in by_activation.items():
            epochs = 1 + max(step for run in runs for steps in run.values() for step in steps)
            rows = np.full((len(runs), epochs), np.nan)
            for row, run in zip(rows, runs):
                for epoch in range(epochs):
                    layers = [steps[epoch] for steps in run.values() if epoch in steps]
                    if layers:
                        row[epoch] = np.mean(layers)
            panels[hidden][activation] = rows
    return panels


def dead_units(experiment: str | None = None, tracking_uri: str | None = None, **_options: Any) -> Figure:
    """The share of dead hidden units (0 on every probe row) per epoch, one line per activation.

    Read from `experiment`'s newest grid (`diagnostics: true`): per run, the mean over its hidden
    layers of `dead_fraction/dense_*` at each epoch (0 = before training); the line is the mean
    over runs, one panel per `model.hidden`. ReLU units can die; leaky_relu, elu, swish cannot.
    """
    if experiment is None:
        raise ConfigError("dead_units draws a grid's diagnostics from MLflow: pass experiment=NAME "
                          "(mlpsuite figures dead_units --experiment NAME)")
    grid = grid_dead_fractions(experiment, tracking_uri)
    panels = {_hidden_label(hidden): by_activation for hidden, by_activation in grid.items()}
    styles = _activation_styles(panels)
    figure, axes_list = _panel_grid(len(panels), width=6.0, height=4.5)
    for axes, (panel, by_activation) in zip(axes_list, panels.items()):
        for activation, rows in by_activation.items():
            _draw_runs(axes, np.arange(rows.shape[1]), rows, activation, styles[activation])
        axes.set_ylim(-0.03, 1.03)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_xlabel("epoch (0 = at initialisation)")
        axes.grid(color="0.9")
        axes.set_title(panel, fontsize="medium")
    axes_list[0].set_ylabel(f"dead hidden units (share, 0 on all {PROBE_ROWS} probe rows)")
    axes_list[-1].legend(title="activation", fontsize="small", loc="best")
    figure.suptitle(f"{experiment}: dead hidden units per epoch, mean over hidden layers\n{_runs_note(panels)}")
    return figure


# ---------------------------------------------------------------- loss landscape

LANDSCAPE_RANGE = 1.0   # steps along each direction, in units of the weights' own norms
LANDSCAPE_LINE_POINTS = 41
LANDSCAPE_PLANE_POINTS = 21


@dataclasses.dataclass(frozen=True)
class LandscapeSlices:
    """The 1-D slice (`line`, one loss per alpha) and the 2-D slice (`plane`, betas x alphas)."""

    label: str
    alphas: np.ndarray
    line: np.ndarray
    plane_alphas: np.ndarray
    plane: np.ndarray


def landscape_slices(run: str, tracking_uri: str | None = None) -> LandscapeSlices:
    """Slices of the training loss around the weights a run saved (`training.save_model`)."""
    import tempfile

    from mlpsuite.landscape import Landscape
    from mlpsuite.saved_models import load_trained_model
    from mlpsuite.tracking import Tracker, resolve_uri
    from mlpsuite.training import make_loss

    tracker = Tracker(tracking_uri or resolve_uri(None, create=False))
    trial, _ = tracker.load_trial(run)
    if trial.backend == "sklearn":
        raise ReportError(f"run {run}: a scikit-learn model; the landscape needs a Keras backend's run")
    with tempfile.TemporaryDirectory(prefix="mlpsuite-landscape-") as folder:
        model = load_trained_model(str(tracker.download_model(run, folder)))
    data = load_dataset(trial.data_path or trial.dataset.name, **trial.dataset.load_options())
    surface = Landscape(model, make_loss(trial.loss), data.X_train, data.y_train, seed=trial.seed)
    alphas = np.linspace(-LANDSCAPE_RANGE, LANDSCAPE_RANGE, LANDSCAPE_LINE_POINTS)
    plane_alphas = np.linspace(-LANDSCAPE_RANGE, LANDSCAPE_RANGE, LANDSCAPE_PLANE_POINTS)
    return LandscapeSlices(f"{trial.experiment}: {trial.label()}", alphas, surface.line(alphas),
                           plane_alphas, surface.plane(plane_alphas, plane_alphas))


def landscape(run: str | None = None, tracking_uri: str | None = None, **_options: Any) -> Figure:
    """The loss around a trained model: along one filter-normalised random direction, and on
    the plane of two (Li et al. 2018); the trained weights sit at (0, 0)."""
    if run is None:
        raise ConfigError("landscape: drawn around a run's saved model; name the run with --run RUN_ID "
                          "(its grid needs training.save_model: true)")
    slices = landscape_slices(run, tracking_uri)
    figure, (line_axes, plane_axes) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    line_axes.plot(slices.alphas, slices.line, marker=".")
    line_axes.axvline(0.0, color="grey", linewidth=0.8)
    wide = slices.line.max() > 10 * max(slices.line.min(), 1e-12)  # log scale only where it spans decades
    line_axes.set(xlabel="alpha (step along d1, in units of the weights' norms)", ylabel="training loss",
                  yscale="log" if wide else "linear", title="1-D slice: loss(theta + alpha d1)")
    grid_a, grid_b = np.meshgrid(slices.plane_alphas, slices.plane_alphas)
    positive = np.maximum(slices.plane, np.min(slices.plane[slices.plane > 0], initial=1e-12))
    levels = np.geomspace(positive.min(), positive.max(), 20)
    contour = plane_axes.contourf(grid_a, grid_b, positive, levels=levels, norm=LogNorm(), cmap="viridis")
    plane_axes.contour(grid_a, grid_b, positive, levels=levels, colors="white", linewidths=0.3)
    plane_axes.plot(0, 0, marker="*", color="red", markersize=12, label="trained weights")
    plane_axes.set(xlabel="alpha (d1)", ylabel="beta (d2)", title="2-D slice: loss(theta + alpha d1 + beta d2)")
    plane_axes.legend(loc="upper right", fontsize="small")
    figure.colorbar(contour, ax=plane_axes, label="training loss (log scale)", format="%.3g")
    figure.suptitle(f"Loss landscape around {slices.label} (filter-normalised directions)")
    return figure


# ---------------------------------------------------------------- the registry

FIGURES: dict[str, Callable[..., Figure]] = {
    "activations": activations,
    "scalers": scalers,
    "optimizers": optimizers,
    "gradients": gradients,
    "dead_units": dead_units,
    "landscape": landscape,
}

assert tuple(FIGURES) == FIGURE_NAMES, "registry.FIGURE_NAMES is out of date"


def write_figures(names: Iterable[str], folder: Path, **options: Any) -> list[Path]:
    """Draw each named figure (passing it `options`), then write each as `folder/<name>.png`.

    Returns the paths written, in the order of `names` (a name given twice is drawn once).
    """
    names = list(dict.fromkeys(names))
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ValueError(f"Expected figure names from {', '.join(FIGURES)}, got {unknown[0]!r}")
    drawn: dict[str, Figure] = {}
    try:
        # Every figure first: one that refuses (no diagnostics in the store) leaves no file.
        for name in names:
            drawn[name] = FIGURES[name](**options)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, figure in drawn.items():
            path = folder / f"{name}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            written.append(path)
        return written
    finally:
        for figure in drawn.values():
            plt.close(figure)
