"""One trial's path inside a worker: early stopping's restored weights, regression scores."""

import numpy as np
import pytest

from mlpsuite.config import GridSpec, expand
from tests.arrays import to_numpy

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)


def _trial(**training):
    spec = GridSpec.model_validate(
        {
            "name": "training",
            "dataset": {"name": "digits"},
            "model": {"hidden": [64]},
            "optimizer": {"name": "adam", "learning_rate": 0.05},
            "training": {"epochs": 30, "batch_size": 32, **training},
            "backends": ["jax"],
            "seeds": [0],
        }
    )
    return expand(spec)[0]


@pytest.mark.backend
def test_early_stopping_tests_the_best_epochs_weights(backend):
    from mlpsuite.trial.training import run_trial

    def run(trial):
        return run_trial(trial, lambda event: None, threads=1)

    restored = run(_trial(early_stopping={"patience": 2}))
    val_losses = restored.history["val_loss"]
    assert restored.stopped_epoch is not None
    assert restored.stopped_epoch == len(val_losses) < 30  # this lr makes val_loss bounce: it stops
    assert restored.tested_epoch == int(np.argmin(val_losses)) + 1 < restored.stopped_epoch
    # The same trial trained for exactly the best epoch's count holds the same weights.
    best_only = run(_trial(epochs=restored.tested_epoch))
    assert restored.test["loss"] == pytest.approx(best_only.test["loss"], rel=1e-6)
    last = run(_trial(early_stopping={"patience": 2, "restore_best_weights": False}))
    assert last.tested_epoch == last.stopped_epoch == restored.stopped_epoch
    assert last.test["loss"] != pytest.approx(restored.test["loss"], rel=1e-3)


@pytest.mark.backend
def test_regression_scores_match_scikit_learn(backend):
    from sklearn.metrics import mean_absolute_error, r2_score

    from mlpsuite.models import build_mlp
    from mlpsuite.trial.evaluation import regression_scores

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype("float32")
    y = (X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=64)).astype("float32")
    model = build_mlp(3, 1, hidden=(8,), seed=0)
    predicted = to_numpy(model(X)).ravel()
    scores = regression_scores(model, X, y)
    assert scores["r2"] == pytest.approx(r2_score(y, predicted), rel=1e-5)
    assert scores["mae"] == pytest.approx(mean_absolute_error(y, predicted), rel=1e-5)
