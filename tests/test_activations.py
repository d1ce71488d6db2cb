"""Activation layers: values vs NumPy, derivative() vs autodiff, registry, on every backend."""

import keras
import numpy as np
import pytest

from mlpsuite import layers
from mlpsuite.registry import fold_name
from mlpsuite.trial.backends import elementwise_gradient, float64_enabled
from tests.arrays import to_numpy
from tests.references import ACTIVATION_REFERENCES, GRID

pytestmark = [pytest.mark.backend, pytest.mark.check]
NAMES = sorted(ACTIVATION_REFERENCES)


def _layer(name, **extra):
    kwargs, _ = ACTIVATION_REFERENCES[name]
    return layers.get_activation(name, **kwargs, **extra)


def test_every_registered_activation_has_a_reference(backend):
    assert sorted(layers.ACTIVATIONS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_values_match_numpy_reference(backend, name):
    x = np.stack([GRID, GRID[::-1]]).astype(np.float32)  # (2, 19): PReLU has 19 units
    out = to_numpy(_layer(name)(x))
    _, reference = ACTIVATION_REFERENCES[name]
    expected = reference(x.astype(np.float64))
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)), f"{name} gave inf/NaN at {x[~np.isfinite(out)]}"
    np.testing.assert_allclose(out, expected, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "mish", "swish", "gelu", "elu", "selu"])
def test_no_overflow_at_large_magnitudes(backend, name):
    x = np.array([[-1e4, -100.0, 100.0, 1e4]], dtype=np.float32)
    layer = _layer(name)
    for values in (layer(x), layer.derivative(keras.ops.convert_to_tensor(x))):
        assert np.all(np.isfinite(to_numpy(values)))


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_autodiff_float64(backend, name):
    with float64_enabled():
        layer = _layer(name, dtype="float64")
        x = GRID.reshape(1, -1)
        autodiff = elementwise_gradient(layer, x, dtype="float64")
        closed_form = to_numpy(layer.derivative(keras.ops.convert_to_tensor(x, dtype="float64")))
    # Keras' type promotion narrows some float64 ops to float32 off TensorFlow (ops.tanh on
    # JAX): where the backend computed in float32 the tolerance is 1e-5, else 1e-6.
    in_float64 = closed_form.dtype == np.float64 and autodiff.dtype == np.float64
    tolerance = 1e-6 if in_float64 else 1e-5
    np.testing.assert_allclose(closed_form, autodiff, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_takes_a_numpy_array_as_the_layer_does(backend, name):
    """As `layer(x)` does: the lecture's plots and the docs call it on NumPy (on PyTorch a NumPy
    array times a tensor was a TypeError for GELU, Swish and Mish)."""
    x = np.stack([GRID, GRID[::-1]]).astype(np.float32)
    layer = _layer(name)
    from_numpy = to_numpy(layer.derivative(x))
    from_tensor = to_numpy(layer.derivative(keras.ops.convert_to_tensor(x)))
    assert from_numpy.shape == x.shape
    np.testing.assert_array_equal(from_numpy, from_tensor)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "prelu", "elu", "step"])
def test_kink_at_zero_takes_left_derivative(backend, name):
    x = np.zeros((1, 1), dtype=np.float32)
    layer = _layer(name)
    left = layer.derivative(keras.ops.convert_to_tensor(np.full((1, 1), -1e-3, "float32")))
    at_zero = to_numpy(layer.derivative(keras.ops.convert_to_tensor(x)))
    np.testing.assert_allclose(at_zero, to_numpy(left), rtol=1e-2)
    np.testing.assert_allclose(elementwise_gradient(layer, x), at_zero, rtol=1e-6)


def test_relu_derivative_at_zero_is_zero_like_keras(backend):
    x = np.zeros((1, 3), dtype=np.float32)
    assert np.all(elementwise_gradient(keras.activations.relu, x) == 0.0)
    assert np.all(to_numpy(layers.ReLU().derivative(x)) == 0.0)


def test_sigmoid_gradient_vanishes_but_relu_does_not(backend):
    x = keras.ops.convert_to_tensor(np.array([[0.0, 5.0, 10.0]], dtype=np.float32))
    sigmoid_slope = to_numpy(layers.Sigmoid().derivative(x))[0]
    relu_slope = to_numpy(layers.ReLU().derivative(x))[0]
    assert sigmoid_slope[0] == pytest.approx(0.25)
    assert sigmoid_slope[2] < 1e-4
    assert relu_slope[1:].tolist() == [1.0, 1.0]


def test_prelu_has_one_trainable_slope_per_unit(backend):
    layer = layers.PReLU(alpha_init=0.1)
    layer.build((None, 5))
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(5,)]
    layer.alpha.assign(np.arange(5, dtype="float32") / 10)
    out = to_numpy(layer(-np.ones((2, 5), dtype="float32")))
    np.testing.assert_allclose(out[0], -np.arange(5) / 10, rtol=1e-6)


def test_swish_trainable_beta_is_one_scalar_weight(backend):
    assert layers.Swish().trainable_weights == []
    layer = layers.Swish(beta=2.0, trainable_beta=True)
    layer.build((None, 4))
    (beta,) = layer.trainable_weights
    assert tuple(beta.shape) == () and float(to_numpy(beta)) == 2.0


@pytest.mark.parametrize("spelling", ["leaky_relu", "Leaky-ReLU", "LEAKY_RELU", "leakyrelu"])
def test_get_activation_folds_case_and_separators(backend, spelling):
    layer = layers.get_activation(spelling, alpha=0.2)
    assert isinstance(layer, layers.LeakyReLU) and layer.alpha == 0.2


def test_unknown_activation_lists_valid_names(backend):
    with pytest.raises(ValueError, match="Unknown activation 'relu7'.*leaky_relu.*swish"):
        layers.get_activation("relu7")


def test_registry_names_are_unique_after_folding(backend):
    assert len({fold_name(name) for name in layers.ACTIVATIONS}) == len(layers.ACTIVATIONS)
