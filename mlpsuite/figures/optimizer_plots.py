"""Keras optimizers' paths on the Rosenbrock and Beale functions (figure `optimizers`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import ops
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from mlpsuite.registry import lookup


def rosenbrock(x, y):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2; minimum 0 at (1, 1), at the end of a curved valley."""
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def _rosenbrock_gradient(point):
    """(df/dx, df/dy) = (-2 (1 - x) - 400 x (y - x^2), 200 (y - x^2))."""
    x, y = point[0], point[1]
    return ops.stack([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


def beale(x, y):
    """f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2;
    minimum 0 at (3, 0.5)."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_gradient(point):
    """With a, b, c the three terms inside the squares:
    df/dx = 2 (a (y - 1) + b (y^2 - 1) + c (y^3 - 1)),  df/dy = 2x (a + 2by + 3cy^2)."""
    x, y = point[0], point[1]
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y * y * y
    return ops.stack(
        [
            2.0 * (a * (y - 1.0) + b * (y * y - 1.0) + c * (y * y * y - 1.0)),
            2.0 * x * (a + 2.0 * b * y + 3.0 * c * y * y),
        ]
    )


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
        title="Rosenbrock  (1 - x)² + 100 (y - x²)²",
        value=rosenbrock,
        gradient=_rosenbrock_gradient,
        minimum=(1.0, 1.0),
        start=(-1.2, 1.0),
        steps=1000,
        learning_rates={
            "sgd": 1e-3,
            "momentum": 1e-3,
            "nesterov": 1e-3,
            "rmsprop": 1e-2,
            "adam": 0.2,
        },
        extent=(-1.6, 1.6, -0.6, 1.6),
    ),
    "beale": Surface(
        title="Beale  (1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²",
        value=beale,
        gradient=_beale_gradient,
        minimum=(3.0, 0.5),
        start=(1.0, 1.5),
        steps=500,
        learning_rates={
            "sgd": 1e-3,
            "momentum": 1e-3,
            "nesterov": 1e-3,
            "rmsprop": 1e-2,
            "adam": 0.05,
        },
        extent=(-0.5, 4.5, -1.5, 2.0),
    ),
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
    figure, panels = plt.subplots(
        1, len(SURFACES), figsize=(7.5 * len(SURFACES), 6), squeeze=False, layout="constrained"
    )
    for axes, (name, surface) in zip(panels[0], SURFACES.items(), strict=True):
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
    axes.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncols=2,
        fontsize="small",
        frameon=False,
        title="optimizer, learning rate: final distance to the minimum",
        title_fontsize="small",
    )
