"""get_config/from_config and .keras save/load round trips for every mlpsuite layer."""

import keras
import numpy as np
import pytest

from mlpsuite import layers
from mlpsuite.models import build_mlp
from tests.arrays import to_numpy
from tests.references import ACTIVATION_REFERENCES

pytestmark = [pytest.mark.backend, pytest.mark.check]


def _configured_activation(name):
    kwargs, _ = ACTIVATION_REFERENCES[name]
    return layers.get_activation(name, **kwargs)


@pytest.mark.parametrize("name", sorted(ACTIVATION_REFERENCES))
def test_activation_config_round_trip(backend, name):
    layer = _configured_activation(name)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = np.linspace(-4, 4, 12, dtype="float32").reshape(2, 6)
    np.testing.assert_array_equal(to_numpy(clone(x)), to_numpy(layer(x)))


def test_get_config_holds_exactly_the_constructor_arguments(backend):
    extra = {
        k: v
        for k, v in layers.ELU(alpha=0.3).get_config().items()
        if k not in keras.layers.Layer().get_config()
    }
    assert extra == {"alpha": 0.3}
    extra = {
        k: v
        for k, v in layers.Swish(2.0, True).get_config().items()
        if k not in keras.layers.Layer().get_config()
    }
    assert extra == {"beta": 2.0, "trainable_beta": True}


@pytest.mark.parametrize("name", ["minmax", "robust", "standard"])
def test_scaler_config_round_trip_keeps_arguments(backend, name):
    layer = layers.get_scaler(name)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("name", sorted(ACTIVATION_REFERENCES))
def test_model_with_activation_saves_and_loads(backend, name, tmp_path):
    scaler = layers.StandardScaling()
    scaler.adapt(np.random.default_rng(0).normal(3, 2, size=(64, 5)).astype("float32"))
    model = build_mlp(
        5, 3, hidden=(8,), activation=_configured_activation(name), scaler=scaler, seed=4
    )
    x = np.random.default_rng(1).normal(size=(7, 5)).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras.Model)
    assert type(loaded.get_layer("activation_1")) is type(model.get_layer("activation_1"))
    assert (
        loaded.get_layer("activation_1").get_config()
        == model.get_layer("activation_1").get_config()
    )
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2


def test_loaded_scaler_is_adapted_with_the_saved_statistics(backend, tmp_path):
    scaler = layers.RobustScaling(quantile_range=(10.0, 90.0))
    scaler.adapt(np.random.default_rng(2).normal(size=(50, 4)).astype("float32"))
    model = build_mlp(4, 1, hidden=(3,), scaler=scaler)
    model.save(tmp_path / "m.keras")
    loaded_model = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded_model, keras.Model)
    loaded = loaded_model.layers[1]
    assert loaded.is_adapted and loaded.quantile_range == (10.0, 90.0)
    for saved, restored in zip(scaler.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, restored)


def test_serialized_names_live_under_the_mlpsuite_package(backend):
    assert keras.saving.get_registered_name(layers.ELU) == "mlpsuite>ELU"
    assert keras.saving.get_registered_name(layers.StandardScaling) == "mlpsuite>StandardScaling"
