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

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures go to files and to MLflow

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mlpsuite.figures.activation_plots import activation_curves, activations  # noqa: E402
from mlpsuite.figures.diagnostic_plots import (
    GRADIENT_ACTIVATIONS,
    GRADIENT_HIDDEN,
    dead_units,  # noqa: E402
    gradients,
    grid_dead_fractions,
    grid_diagnostics,
    grid_gradient_norms,
    initial_gradient_norms,
)
from mlpsuite.figures.landscape_plots import LandscapeSlices, landscape, landscape_slices  # noqa: E402
from mlpsuite.figures.optimizer_plots import (
    OPTIMIZERS,
    SURFACES,
    optimizer_path,
    optimizer_paths,
    optimizers,
)  # noqa: E402
from mlpsuite.figures.scaling_plots import SCALER_CAPTIONS, SCALER_DATASET, scaled_features, scalers  # noqa: E402
from mlpsuite.registry import FIGURE_NAMES  # noqa: E402

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


__all__ = [
    "FIGURES",
    "write_figures",
    "activation_curves",
    "activations",
    "SCALER_CAPTIONS",
    "SCALER_DATASET",
    "scaled_features",
    "scalers",
    "OPTIMIZERS",
    "SURFACES",
    "optimizer_path",
    "optimizer_paths",
    "optimizers",
    "GRADIENT_ACTIVATIONS",
    "GRADIENT_HIDDEN",
    "dead_units",
    "grid_dead_fractions",
    "grid_diagnostics",
    "grid_gradient_norms",
    "gradients",
    "initial_gradient_norms",
    "LandscapeSlices",
    "landscape",
    "landscape_slices",
]
