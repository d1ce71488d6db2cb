"""Every activation layer and its closed-form derivative (figure `activations`)."""

from __future__ import annotations

import math
from typing import Any, cast

import matplotlib.pyplot as plt
import numpy as np
from keras import ops
from matplotlib.figure import Figure

from mlpsuite.layers import ACTIVATIONS, get_activation

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
        # convert_to_numpy's inferred type spans every backend's; it returns np.ndarray.
        curves[name] = (
            cast(np.ndarray, ops.convert_to_numpy(values)).ravel(),
            cast(np.ndarray, ops.convert_to_numpy(layer.derivative(inputs))).ravel(),
        )
    return curves


def activations(**_options: Any) -> Figure:
    """Every registered activation f (solid) and its derivative f' (dashed) on [-4, 4].

    One panel per activation, titled with its registry name; default parameters (leaky_relu
    alpha 0.01, elu alpha 1, prelu's initial slope 0.25, ...). The spare panel holds the legend.
    """
    x = np.linspace(*ACTIVATION_RANGE, ACTIVATION_POINTS)
    curves = activation_curves(x)
    rows = math.ceil((len(curves) + 1) / ACTIVATION_COLUMNS)  # +1: the legend's panel
    figure, grid = plt.subplots(
        rows,
        ACTIVATION_COLUMNS,
        figsize=(3.2 * ACTIVATION_COLUMNS, 2.5 * rows),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    panels = list(grid.ravel())
    # One panel more than curves (the legend's): zip stops at the last curve.
    for axes, (name, (values, slopes)) in zip(panels, curves.items(), strict=False):
        axes.axhline(0.0, color="0.85", linewidth=0.8, zorder=0)
        axes.axvline(0.0, color="0.85", linewidth=0.8, zorder=0)
        axes.plot(x, values, color="C0", label="f(x)")
        axes.plot(x, slopes, color="C3", linestyle="--", label="f'(x), closed form")
        axes.set_title(name)
    spare = panels[len(curves) :]
    spare[0].legend(
        *panels[0].get_legend_handles_labels(),
        loc="center",
        frameon=False,
        title=f"x in [{ACTIVATION_RANGE[0]:g}, {ACTIVATION_RANGE[1]:g}]",
    )
    for axes in spare:
        axes.set_axis_off()
    figure.suptitle("Activation functions and their derivatives")
    return figure
