"""Gradient norms at initialisation and dead units per epoch (figures `gradients`, `dead_units`),
computed on digits or read from a grid's diagnostics in MLflow."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mlpsuite.data import load_dataset
from mlpsuite.errors import ConfigError, ReportError
from mlpsuite.layers import get_scaler
from mlpsuite.models import build_mlp, initialize_dense_weights
from mlpsuite.trial.diagnostics import PROBE_ROWS, LayerProbe, probe_rows

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


def grid_diagnostics(
    experiment: str, prefix: str, tracking_uri: str | None = None
) -> dict[str, dict[str, list[dict[str, dict[int, float]]]]]:
    """The metrics named `prefix...` of `experiment`'s newest grid, by architecture and activation.

    Returns `model.hidden` as logged ("[8, 8, 8]") -> activation ("relu", "leaky_relu(alpha=0.1)")
    -> one `{metric: {step: value}}` per FINISHED trial run that has them (the run that counts
    for its key, as in `mlpsuite compare`). Seeds, backends and every other grid key are pooled.
    Raises ReportError, naming the experiment, when there is nothing to draw.
    """
    # The grid is read back as `mlpsuite compare` reads it: its newest parent, its manifest.
    from mlpsuite.analysis import counted_run, grid_runs
    from mlpsuite.tracking import TAG_KEY, Tracker, resolve_uri

    tracker = Tracker(resolve_uri(tracking_uri, create=False))
    parent, _, grid = grid_runs(tracker, experiment)
    by_key: dict[str, list] = {}
    for run in grid:
        by_key.setdefault(run.data.tags.get(TAG_KEY), []).append(run)
    runs = [
        run
        for run in map(counted_run, by_key.values())
        if run is not None  # None only for no runs; each key has some
        and run.info.status == "FINISHED"
        and any(name.startswith(prefix) for name in run.data.metrics)
    ]
    if not runs:
        raise ReportError(
            f"experiment {experiment!r}: no finished trial of its newest grid (run "
            f"{parent.info.run_id}) has {prefix}* metrics; set diagnostics: true in "
            "its config and run it again"
        )
    histories = tracker.diagnostic_histories(runs, prefix)
    grouped: dict[str, dict[str, list]] = {}
    for run in sorted(
        runs, key=lambda run: _depth_order(run.data.params.get("model.hidden", "[]"))
    ):
        params = run.data.params
        by_activation = grouped.setdefault(params.get("model.hidden", "?"), {})
        by_activation.setdefault(_activation_label(params), []).append(histories[run.info.run_id])
    return {
        hidden: _by_activation_order(by_activation) for hidden, by_activation in grouped.items()
    }


def _activation_label(params: dict[str, str]) -> str:
    """`model.activation` with its logged parameters: "elu", "leaky_relu(alpha=0.1)"."""
    name = params.get("model.activation", "?")
    prefix = "model.activation."
    extras = ",".join(
        f"{key[len(prefix) :]}={value}"
        for key, value in sorted(params.items())
        if key.startswith(prefix)
    )
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
        known = (
            GRADIENT_ACTIVATIONS.index(name)
            if name in GRADIENT_ACTIVATIONS
            else len(GRADIENT_ACTIVATIONS)
        )
        return (known, label)

    return {label: by_activation[label] for label in sorted(by_activation, key=order)}


def _layer_order(metric: str) -> tuple[int, int]:
    """dense_1, dense_2, ..., dense_10, output."""
    layer = metric.split("/", 1)[1]
    return (1, 0) if layer == "output" else (0, int(layer.rsplit("_", 1)[1]))


def _hidden_label(hidden: str | tuple[int, ...]) -> str:
    """A hidden-layer spec in words: "[32, 32, 32]" or (32, 32, 32) -> "3 hidden layers × 32
    units"; otherwise the list."""
    units = _depth_order(hidden)[1] if isinstance(hidden, str) else list(hidden)
    if isinstance(units, list) and units and len(set(units)) == 1:
        return f"{len(units)} hidden layer{'s' if len(units) > 1 else ''} × {units[0]} units"
    return f"hidden {units}"


def _runs_note(panels: Panels) -> str:
    """How many runs each line averages (seeds, backends and other grid values pooled)."""
    counts = sorted(
        {len(rows) for by_activation in panels.values() for rows in by_activation.values()}
    )
    if counts == [1]:
        return "one run per line"
    n = f"n={counts[0]}" if len(counts) == 1 else f"n={counts[0]} to {counts[-1]}"
    return f"mean over {n} runs per line (seeds, backends, other grid values), band: min to max"


def _panel_grid(count: int, width: float, height: float):
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure, grid = plt.subplots(
        rows,
        columns,
        figsize=(width * columns, height * rows),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    panels = list(grid.ravel())
    for axes in panels[count:]:
        axes.set_axis_off()
    return figure, panels[:count]


def _draw_runs(axes, x: np.ndarray, rows: np.ndarray, label: str, style: dict[str, Any]) -> None:
    """The mean over runs (rows) as a line, and the runs' range as a band when there are several."""
    axes.plot(x, np.nanmean(rows, axis=0), markersize=5, label=label, **style)
    if len(rows) > 1:
        axes.fill_between(
            x,
            np.nanmin(rows, axis=0),
            np.nanmax(rows, axis=0),
            color=style["color"],
            alpha=0.12,
            linewidth=0,
        )


def _activation_styles(panels: Panels) -> dict[str, dict[str, Any]]:
    """One colour, marker and dash per activation, the same in every panel: relu and leaky_relu
    (tanh and elu) nearly coincide, and must stay told apart where they do."""
    labels = _by_activation_order(
        {label: None for by_activation in panels.values() for label in by_activation}
    )
    markers, dashes = "osD^vPX*", ("-", "--", ":")
    return {
        label: {
            "color": f"C{index % 10}",
            "marker": markers[index % len(markers)],
            "linestyle": dashes[index % len(dashes)],
            "markerfacecolor": f"C{index % 10}" if index % 2 == 0 else "none",
        }
        for index, label in enumerate(labels)
    }


# ---------------------------------------------------------------- gradients


def initial_gradient_norms(
    activations: Iterable[str] = GRADIENT_ACTIVATIONS,
    hidden: tuple[int, ...] = GRADIENT_HIDDEN,
    seeds: Iterable[int] = GRADIENT_SEEDS,
) -> dict[str, np.ndarray]:
    """The gradient norms by activation: ||dL/dW||_F of each Dense kernel (dense_1 ... output)
    at initialisation.

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
        model = build_mlp(
            data.input_dim,
            data.output_dim,
            hidden=hidden,
            activation=activation,
            scaler=scaler,
            initializer=GRADIENT_INITIALIZER,
            seed=seeds[0],
        )
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
            panels[hidden][activation] = np.array(
                [[run.get(name, {}).get(0, np.nan) for name in layers] for run in runs]
            )
    return panels


def gradients(
    experiment: str | None = None, tracking_uri: str | None = None, **_options: Any
) -> Figure:
    """Gradient norm of each Dense kernel at initialisation, one line per activation, log scale.

    Without `experiment`: computed here (`initial_gradient_norms`), 8 hidden layers of 32 units
    on digits, the mean of 3 seeds. With `experiment`: `grad_norm/*` at epoch 0 of that
    experiment's newest grid (`diagnostics: true`), one panel per `model.hidden`, since the
    layers of different depths are different x-axes; everything else is pooled.
    The lecture's claim: sigmoid's gradient shrinks layer by layer towards the input.
    """
    if experiment is None:
        norms = initial_gradient_norms()
        panels = {
            f"{GRADIENT_DATASET} ({PROBE_ROWS} training rows), {_hidden_label(GRADIENT_HIDDEN)}, "
            f"{GRADIENT_INITIALIZER}, standard scaler\nmean of {len(GRADIENT_SEEDS)} seeds, "
            "band: min to max; leaky_relu (alpha 0.01) lies on relu": norms
        }
        title = "Vanishing gradients: ||dL/dW|| of each Dense kernel at initialisation"
    else:
        grid = grid_gradient_norms(experiment, tracking_uri)
        panels = {_hidden_label(hidden): by_activation for hidden, by_activation in grid.items()}
        title = (
            f"{experiment}: ||dL/dW|| of each Dense kernel at initialisation (epoch 0)\n"
            f"{_runs_note(panels)}"
        )
    styles = _activation_styles(panels)
    widest = max(
        rows.shape[1] for by_activation in panels.values() for rows in by_activation.values()
    )
    figure, axes_list = _panel_grid(len(panels), width=max(5.0, 0.75 * widest + 2), height=4.8)
    for axes, (panel, by_activation) in zip(axes_list, panels.items(), strict=True):
        layers = max(rows.shape[1] for rows in by_activation.values())
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
    for hidden, by_activation in grid_diagnostics(
        experiment, "dead_fraction/", tracking_uri
    ).items():
        panels[hidden] = {}
        for activation, runs in by_activation.items():
            epochs = 1 + max(step for run in runs for steps in run.values() for step in steps)
            rows = np.full((len(runs), epochs), np.nan)
            for row, run in zip(rows, runs, strict=True):
                for epoch in range(epochs):
                    layers = [steps[epoch] for steps in run.values() if epoch in steps]
                    if layers:
                        row[epoch] = np.mean(layers)
            panels[hidden][activation] = rows
    return panels


def dead_units(
    experiment: str | None = None, tracking_uri: str | None = None, **_options: Any
) -> Figure:
    """The share of dead hidden units (0 on every probe row) per epoch, one line per activation.

    Read from `experiment`'s newest grid (`diagnostics: true`): per run, the mean over its hidden
    layers of `dead_fraction/dense_*` at each epoch (0 = before training); the line is the mean
    over runs, one panel per `model.hidden`. ReLU units can die; leaky_relu, elu, swish cannot.
    """
    if experiment is None:
        raise ConfigError(
            "dead_units draws a grid's diagnostics from MLflow: pass experiment=NAME "
            "(mlpsuite figures dead_units --experiment NAME)"
        )
    grid = grid_dead_fractions(experiment, tracking_uri)
    panels = {_hidden_label(hidden): by_activation for hidden, by_activation in grid.items()}
    styles = _activation_styles(panels)
    figure, axes_list = _panel_grid(len(panels), width=6.0, height=4.5)
    for axes, (panel, by_activation) in zip(axes_list, panels.items(), strict=True):
        for activation, rows in by_activation.items():
            _draw_runs(axes, np.arange(rows.shape[1]), rows, activation, styles[activation])
        axes.set_ylim(-0.03, 1.03)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_xlabel("epoch (0 = at initialisation)")
        axes.grid(color="0.9")
        axes.set_title(panel, fontsize="medium")
    axes_list[0].set_ylabel(f"dead hidden units (share, 0 on all {PROBE_ROWS} probe rows)")
    axes_list[-1].legend(title="activation", fontsize="small", loc="best")
    figure.suptitle(
        f"{experiment}: dead hidden units per epoch, mean over hidden layers\n{_runs_note(panels)}"
    )
    return figure
