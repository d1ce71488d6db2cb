"""The loss around a run's saved model, 1-D and 2-D (figure `landscape`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from mlpsuite.errors import ConfigError, ReportError

LANDSCAPE_RANGE = 1.0  # steps along each direction, in units of the weights' own norms
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

    from mlpsuite.tracking import Tracker, resolve_uri
    from mlpsuite.trial.landscape import Landscape
    from mlpsuite.trial.saved_models import load_trained_model
    from mlpsuite.trial.training import make_loss

    tracker = Tracker(tracking_uri or resolve_uri(None, create=False))
    trial = tracker.trial_of_run(run)
    if trial.backend == "sklearn":
        raise ReportError(
            f"run {run}: a scikit-learn model; the landscape needs a Keras backend's run"
        )
    with tempfile.TemporaryDirectory(prefix="mlpsuite-landscape-") as folder:
        model = load_trained_model(str(tracker.download_model(run, folder)))
    data = trial.load_data()
    surface = Landscape(model, make_loss(trial.loss), data.X_train, data.y_train, seed=trial.seed)
    alphas = np.linspace(-LANDSCAPE_RANGE, LANDSCAPE_RANGE, LANDSCAPE_LINE_POINTS)
    plane_alphas = np.linspace(-LANDSCAPE_RANGE, LANDSCAPE_RANGE, LANDSCAPE_PLANE_POINTS)
    return LandscapeSlices(
        f"{trial.experiment}: {trial.label()}",
        alphas,
        surface.line(alphas),
        plane_alphas,
        surface.plane(plane_alphas, plane_alphas),
    )


def landscape(run: str | None = None, tracking_uri: str | None = None, **_options: Any) -> Figure:
    """The loss around a trained model: along one filter-normalised random direction, and on
    the plane of two (Li et al. 2018); the trained weights sit at (0, 0)."""
    if run is None:
        raise ConfigError(
            "landscape: drawn around a run's saved model; name the run with --run RUN_ID "
            "(its grid needs training.save_model: true)"
        )
    slices = landscape_slices(run, tracking_uri)
    figure, (line_axes, plane_axes) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    line_axes.plot(slices.alphas, slices.line, marker=".")
    line_axes.axvline(0.0, color="grey", linewidth=0.8)
    wide = slices.line.max() > 10 * max(
        slices.line.min(), 1e-12
    )  # log scale only where it spans decades
    line_axes.set(
        xlabel="alpha (step along d1, in units of the weights' norms)",
        ylabel="training loss",
        yscale="log" if wide else "linear",
        title="1-D slice: loss(theta + alpha d1)",
    )
    grid_a, grid_b = np.meshgrid(slices.plane_alphas, slices.plane_alphas)
    positive = np.maximum(slices.plane, np.min(slices.plane[slices.plane > 0], initial=1e-12))
    levels = np.geomspace(positive.min(), positive.max(), 20)
    contour = plane_axes.contourf(
        grid_a, grid_b, positive, levels=levels, norm=LogNorm(), cmap="viridis"
    )
    plane_axes.contour(grid_a, grid_b, positive, levels=levels, colors="white", linewidths=0.3)
    plane_axes.plot(0, 0, marker="*", color="red", markersize=12, label="trained weights")
    plane_axes.set(
        xlabel="alpha (d1)", ylabel="beta (d2)", title="2-D slice: loss(theta + alpha d1 + beta d2)"
    )
    plane_axes.legend(loc="upper right", fontsize="small")
    figure.colorbar(contour, ax=plane_axes, label="training loss (log scale)", format="%.3g")
    figure.suptitle(f"Loss landscape around {slices.label} (filter-normalised directions)")
    return figure
