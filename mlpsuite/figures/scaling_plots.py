"""A dataset's features before and after each scaling layer (figure `scalers`)."""

from __future__ import annotations

from typing import Any, cast

import matplotlib.pyplot as plt
import numpy as np
from keras import ops
from matplotlib.figure import Figure

from mlpsuite.data import load_dataset
from mlpsuite.layers import SCALERS, get_scaler

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
        # convert_to_numpy's inferred type spans every backend's; it returns np.ndarray.
        scaled[name] = cast(np.ndarray, ops.convert_to_numpy(scaler(ops.convert_to_tensor(X))))
    return scaled


def scalers(dataset: str = SCALER_DATASET, **_options: Any) -> Figure:
    """Box plots of every feature of `dataset`'s training split, unscaled and after each scaler.

    One row per scaler (each adapted on the training split); every row keeps its own y-axis,
    so the unscaled row shows what the lecture means by features "living" on different scales.
    """
    data = load_dataset(dataset)
    scaled = scaled_features(data.X_train)
    figure, panels = plt.subplots(
        len(scaled), 1, figsize=(11, 2.4 * len(scaled)), sharex=True, layout="constrained"
    )
    positions = np.arange(1, data.input_dim + 1)
    for axes, (name, features) in zip(panels, scaled.items(), strict=True):
        axes.boxplot(
            list(features.T),
            positions=positions,
            widths=0.6,
            flierprops={"markersize": 3, "markeredgecolor": "0.4"},
            medianprops={"color": "C3"},
        )
        axes.set_title(SCALER_CAPTIONS.get(name, name), loc="left", fontsize="medium")
        axes.grid(axis="y", color="0.9")
    panels[-1].set_xticks(positions, data.feature_names, rotation=30, ha="right")
    figure.suptitle(
        f"{dataset}: the {len(data.X_train)} training rows before and after scaling "
        "(note the y-axes)"
    )
    return figure
