"""Diagnostics: the lecture's claims (vanishing gradients, dead units) measured, and the
numbers checked against a NumPy forward pass and float64 finite differences."""

import numpy as np
import pytest

from mlpsuite.config import GridSpec, expand
from mlpsuite.trial.diagnostics import dead_fraction


def _probe(model):
    import keras

    from mlpsuite.trial.diagnostics import LayerProbe

    return LayerProbe(model, keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def _digits_rows(rows: int = 256):
    from mlpsuite.data import load_dataset

    data = load_dataset("digits", seed=0)
    return data.X_train[:rows], data.y_train[:rows]


@pytest.mark.check
def test_dead_fraction_counts_units_that_are_zero_on_every_row():
    activations = np.array([[0.0, 1.0, 0.0, -0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert dead_fraction(activations) == 0.5  # units 0 and 3; unit 1 and 2 fire once each


@pytest.mark.check
@pytest.mark.backend
def test_sigmoid_gradient_vanishes_in_the_first_layer_of_a_deep_net(backend):
    """Six sigmoid layers: the first kernel's initial gradient is at least 10x smaller than
    with ReLU, same Glorot initializer, same weights, same probe batch."""
    from mlpsuite.layers import get_scaler
    from mlpsuite.models import build_mlp

    x, y = _digits_rows()
    first = {}
    for activation in ("sigmoid", "relu"):
        scaler = get_scaler("standard")
        scaler.adapt(x)
        model = build_mlp(64, 10, hidden=(32,) * 6, activation=activation, scaler=scaler, seed=0)
        first[activation] = _probe(model).measure(x, y)["grad_norm/dense_1"]
    assert 0 < first["sigmoid"] * 10 <= first["relu"], first


@pytest.mark.check
@pytest.mark.backend
def test_relu_with_only_negative_inputs_is_dead_and_leaky_relu_is_not(backend):
    from mlpsuite.models import build_mlp

    x, y = _digits_rows(64)
    for activation, dead in (("relu", 1.0), ("leaky_relu", 0.0)):
        model = build_mlp(64, 10, hidden=(16, 8), activation=activation, seed=0)
        layer = model.get_layer("dense_1")
        # Every pre-activation of the first layer is -1 on every row.
        layer.set_weights([np.zeros((64, 16), np.float32), np.full(16, -1.0, np.float32)])
        metrics = _probe(model).measure(x, y)
        assert metrics["dead_fraction/dense_1"] == dead
        assert metrics["act_mean/dense_1"] == pytest.approx(
            -1.0 * (1 - dead) * _leaky_alpha(), abs=1e-7
        )
        # Nothing flows back through dead units: the first kernel gets no gradient at all.
        assert (metrics["grad_norm/dense_1"] == 0) == bool(dead)


def _leaky_alpha() -> float:
    from mlpsuite.layers import get_activation

    return get_activation("leaky_relu").alpha


@pytest.mark.check
@pytest.mark.backend
def test_gradients_and_activations_match_numpy_and_finite_differences(backend):
    """A small tanh net on iris: every kernel's gradient norm against float64 central
    differences of a NumPy forward pass, and the activation statistics against NumPy."""
    from mlpsuite.data import load_dataset
    from mlpsuite.models import build_mlp

    data = load_dataset("iris", seed=0)
    x, y = data.X_train[:40].astype(np.float32), data.y_train[:40]
    model = build_mlp(4, 3, hidden=(5, 3), activation="tanh", seed=1)
    kernels = [np.float64(layer.get_weights()[0]) for layer in _dense(model)]
    biases = [
        np.float64(layer.get_weights()[1]) + 0.1 * (i + 1) for i, layer in enumerate(_dense(model))
    ]
    for layer, kernel, bias in zip(_dense(model), kernels, biases, strict=True):
        layer.set_weights([np.float32(kernel), np.float32(bias)])
    metrics = _probe(model).measure(x, y)

    hidden = _numpy_forward(x, kernels, biases)[:-1]
    for name, values in zip(("dense_1", "dense_2"), hidden, strict=True):
        assert metrics[f"act_mean/{name}"] == pytest.approx(values.mean(), rel=1e-5)
        assert metrics[f"act_std/{name}"] == pytest.approx(values.std(), rel=1e-4)
        assert metrics[f"dead_fraction/{name}"] == 0.0
    for index, name in enumerate(("dense_1", "dense_2", "output")):
        expected = np.linalg.norm(_finite_difference(x, y, kernels, biases, index))
        assert metrics[f"grad_norm/{name}"] == pytest.approx(expected, rel=1e-4)
        assert metrics[f"weight_norm/{name}"] == pytest.approx(
            np.linalg.norm(kernels[index]), rel=1e-6
        )


def _dense(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def _numpy_forward(x, kernels, biases):
    outputs, h = [], np.float64(x)
    for i, (kernel, bias) in enumerate(zip(kernels, biases, strict=True)):
        h = h @ kernel + bias
        if i < len(kernels) - 1:
            h = np.tanh(h)
        outputs.append(h)
    return outputs


def _cross_entropy(x, y, kernels, biases):
    logits = _numpy_forward(x, kernels, biases)[-1]
    logits = logits - logits.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(len(y)), y].mean()


def _finite_difference(x, y, kernels, biases, index, step=1e-6):
    gradient = np.zeros_like(kernels[index])
    for position in np.ndindex(gradient.shape):
        shifted = []
        for sign in (1, -1):
            moved = [k.copy() for k in kernels]
            moved[index][position] += sign * step
            shifted.append(_cross_entropy(x, y, moved, biases))
        gradient[position] = (shifted[0] - shifted[1]) / (2 * step)
    return gradient


def _grid(**overrides):
    return GridSpec.model_validate(
        {
            "name": "diag",
            "dataset": {"name": "digits"},
            "model": {"hidden": [16, 16], "dropout": 0.1},
            "training": {"epochs": 3, "batch_size": 64},
            "backends": ["jax"],
            "seeds": [0],
            **overrides,
        }
    )


# make test's, not the check tier's: 12 s, mostly JAX compiling two models.
@pytest.mark.backend
def test_diagnostics_change_no_number_of_training_and_report_epoch_zero(backend):
    from mlpsuite.trial.training import TrialRunner

    plain = expand(_grid())[0]
    probed = expand(_grid(diagnostics=True))[0]
    events = []
    runner = TrialRunner()
    with_probe = runner.run(probed, events.append)
    again = runner.run(probed, events.append)  # the reused model keeps its probe
    without = TrialRunner().run(plain, lambda event: None)
    assert with_probe.history["loss"] == without.history["loss"] == again.history["loss"]
    assert with_probe.test == without.test
    epochs = [event["epoch"] for event in events]
    assert epochs == [0, 1, 2, 3] * 2
    for event in events:
        names = set(event["metrics"])
        for layer in ("dense_1", "dense_2"):
            assert {
                f"grad_norm/{layer}",
                f"dead_fraction/{layer}",
                f"act_mean/{layer}",
                f"act_std/{layer}",
                f"weight_norm/{layer}",
            } <= names
        assert {"grad_norm/output", "diagnostics_time_s"} <= names
        assert all(np.isfinite(value) for value in event["metrics"].values())
    # Epoch 0 is the starting point: training moved the weights after it.
    assert (
        events[0]["metrics"]["weight_norm/dense_1"] != events[1]["metrics"]["weight_norm/dense_1"]
    )
    assert events[0]["metrics"] == events[4]["metrics"] | {
        "diagnostics_time_s": events[0]["metrics"]["diagnostics_time_s"]
    }


@pytest.mark.check
def test_diagnostics_are_part_of_a_trials_key_only_when_on():
    plain, probed = expand(_grid())[0], expand(_grid(diagnostics=True))[0]
    assert plain.key != probed.key
    assert plain.model_copy(update={"diagnostics": False}).key == plain.key
    assert probed.flat_params()["diagnostics"] == "True"
