"""Loss-landscape slices (Li et al. 2018): filter-normalised directions, losses around a
trained net."""

import numpy as np
import pytest

from mlpsuite.trial.landscape import filter_normalized_direction
from tests.arrays import to_numpy

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)


def test_each_units_direction_has_the_norm_of_its_weights_and_biases_do_not_move():
    rng = np.random.default_rng(0)
    weights = [
        rng.normal(size=(4, 3)).astype(np.float32),
        np.ones(3, np.float32),
        rng.normal(scale=5.0, size=(3, 2)).astype(np.float32),
        np.zeros(2, np.float32),
    ]
    direction = filter_normalized_direction(weights, np.random.default_rng(1))
    for weight, d in zip(weights, direction, strict=True):
        assert d.shape == weight.shape and d.dtype == weight.dtype
        if weight.ndim == 2:
            np.testing.assert_allclose(
                np.linalg.norm(d, axis=0), np.linalg.norm(weight, axis=0), rtol=1e-5
            )
            assert not np.allclose(
                d / np.linalg.norm(d, axis=0), weight / np.linalg.norm(weight, axis=0)
            )
        else:
            assert not d.any()


@pytest.mark.backend
def test_a_trained_net_sits_in_a_valley_of_its_landscape(backend):
    import keras

    from mlpsuite.data import load_dataset
    from mlpsuite.layers import get_scaler
    from mlpsuite.models import build_mlp
    from mlpsuite.trial.landscape import Landscape

    data = load_dataset("iris", seed=0)
    scaler = get_scaler("standard")
    scaler.adapt(data.X_train)
    model = build_mlp(4, 3, hidden=(8,), activation="tanh", scaler=scaler, seed=0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    model.fit(data.X_train, data.y_train, epochs=40, batch_size=16, verbose=0)  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2
    before = [to_numpy(v).copy() for v in model.trainable_variables]

    landscape = Landscape(model, loss, data.X_train, data.y_train, seed=3)
    alphas = np.linspace(-1, 1, 11)
    line = landscape.line(alphas)
    assert line[5] == pytest.approx(model.evaluate(data.X_train, data.y_train, verbose=0), rel=1e-5)  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2
    assert line[5] < line[0] and line[5] < line[-1]  # a step as large as the weights climbs out
    plane = landscape.plane(alphas[::2], alphas[::5])
    assert plane.shape == (3, 6) and np.all(np.isfinite(plane))
    assert plane[1, 2] == pytest.approx(line[4], rel=1e-6)  # (alpha -0.2, beta 0) lies on the line
    for variable, value in zip(model.trainable_variables, before, strict=True):  # left as found
        np.testing.assert_array_equal(to_numpy(variable), value)
