"""Scaling layers against sklearn's scalers, on every backend."""

import keras
import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from mlpsuite import layers
from tests.arrays import to_numpy

pytestmark = [pytest.mark.backend, pytest.mark.check]

# layer name -> (layer kwargs, sklearn scaler with the same meaning)
PAIRS = {
    "minmax": ({}, lambda: MinMaxScaler()),
    "minmax_range": ({"feature_range": (-1.0, 2.0)}, lambda: MinMaxScaler((-1.0, 2.0))),
    "robust": ({}, lambda: RobustScaler()),
    "robust_10_90": (
        {"quantile_range": (10.0, 90.0)},
        lambda: RobustScaler(quantile_range=(10, 90)),
    ),
    "standard": ({}, lambda: StandardScaler()),
}


def _layer_for(case):
    kwargs, _ = PAIRS[case]
    return layers.get_scaler(case.split("_")[0], **kwargs)


def _awkward_data(rows=200):
    """Outliers, a constant column, negative values and mixed magnitudes."""
    rng = np.random.default_rng(7)
    X = np.column_stack(
        [
            rng.normal(0, 1, rows),
            rng.normal(-50, 10, rows),
            np.full(rows, 3.25),
            rng.exponential(2.0, rows) * 1e3,
        ]
    )
    X[:4, 0] = [40.0, -35.0, 60.0, -80.0]  # outliers
    return X.astype(np.float32)


@pytest.mark.parametrize("case", sorted(PAIRS))
def test_matches_sklearn_on_awkward_data(backend, case):
    X = _awkward_data()
    X_new = _awkward_data(rows=50)[::-1] * 1.5
    layer = _layer_for(case)
    layer.adapt(X)
    expected = PAIRS[case][1]().fit(X.astype(np.float64)).transform(X_new.astype(np.float64))
    out = to_numpy(layer(X_new))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(PAIRS))
def test_single_row_matches_sklearn(backend, case):
    row = np.array([[1.5, -2.0, 0.0]], dtype=np.float32)
    layer = _layer_for(case)
    layer.adapt(row)
    expected = PAIRS[case][1]().fit(row.astype(np.float64)).transform(row)
    np.testing.assert_allclose(to_numpy(layer(row)), expected, atol=1e-6)


def test_adapt_accepts_iterable_of_batches_and_tensors(backend):
    X = _awkward_data()
    whole, batched, tensor = (layers.StandardScaling() for _ in range(3))
    whole.adapt(X)
    batched.adapt(X[i : i + 32] for i in range(0, len(X), 32))
    tensor.adapt(keras.ops.convert_to_tensor(X))
    for other in (batched, tensor):
        np.testing.assert_allclose(other.get_weights()[0], whole.get_weights()[0], rtol=1e-6)
        np.testing.assert_allclose(other.get_weights()[1], whole.get_weights()[1], rtol=1e-6)


def test_adapt_refuses_unsupported_data_naming_the_type(backend):
    with pytest.raises(ValueError, match="Unsupported data type: <class 'int'>"):
        layers.StandardScaling().adapt(42)


def test_call_before_adapt_is_a_clear_error(backend):
    with pytest.raises(ValueError, match="is not adapted: call layer.adapt"):
        layers.MinMaxScaling()(np.ones((2, 3), dtype="float32"))


def test_statistics_are_non_trainable_weights(backend):
    layer = layers.RobustScaling()
    layer.adapt(_awkward_data())
    assert layer.trainable_weights == []
    assert [w.path.split("/")[-1] for w in layer.non_trainable_weights] == ["center", "scale"]


def test_adapt_with_other_feature_count_is_refused(backend):
    layer = layers.StandardScaling()
    layer.adapt(np.ones((4, 3), dtype="float32"))
    with pytest.raises(ValueError, match="built for 3 features, adapt got 2"):
        layer.adapt(np.ones((4, 2), dtype="float32"))


def test_robust_scaling_ignores_outliers_that_move_minmax(backend):
    clean = np.linspace(-1, 1, 101, dtype=np.float32).reshape(-1, 1)
    dirty = np.vstack([clean, [[1000.0]]]).astype(np.float32)
    robust, minmax = layers.RobustScaling(), layers.MinMaxScaling()
    robust.adapt(dirty)
    minmax.adapt(dirty)
    probe = np.array([[0.5]], dtype=np.float32)
    assert abs(float(to_numpy(robust(probe))[0, 0]) - 0.5) < 0.05
    assert float(to_numpy(minmax(probe))[0, 0]) < 0.01
