"""The lecture's claims as small real grids, judged by the comparison's own statistics."""

from mlpsuite import cli
from mlpsuite.analysis import compare
from mlpsuite.tracking import Tracker
from tests.grids import ready_store, write_grid


def test_unscaled_wine_ends_with_a_worse_val_loss_than_z_scaled_wine(tmp_path):
    """wine's features live on scales from ~0.1 to ~1000 (proline): with momentum SGD the
    unscaled net does not learn, z-scaling does; 3 seeds, paired t-test."""
    path = write_grid(
        tmp_path,
        "wine_scaling",
        dataset={"name": "wine", "val_size": 0.2},
        model={"hidden": [16], "activation": "relu"},
        optimizer={"name": "momentum", "learning_rate": 0.01, "momentum": 0.9},
        training={"epochs": 20, "batch_size": 16},
        backends=["jax"],
        seeds=[0, 1, 2],
        grid={"model.scaler": ["none", "standard"]},
    )
    uri = ready_store(tmp_path)
    assert cli.main(["run", str(path), "--tracking-uri", uri, "--jobs", "1"]) == 0
    comparison = compare(Tracker(uri), "wine_scaling")
    effect = comparison.effects.set_index("level").loc["none"]
    assert effect["reference"] == "standard" and effect["n_pairs"] == 3
    assert (
        effect["mean_diff"] > 0 and effect["diff_low"] > 0
    )  # unscaled: higher val_loss, interval above 0
    assert effect["p_ttest"] < 0.05
