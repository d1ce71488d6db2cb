"""Files saved on one backend load on the others; build_mlp weights are bit-identical.

Each backend's test worker saves a model with every layer of the suite into the folder the
session's processes share, then loads the other two backends' files as they appear there.
"""

import os
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from mlpsuite.initializers import INITIALIZERS, draw_kernel
from mlpsuite.models import build_mlp
from tests.backend_probe import BACKENDS, PROBE_INPUT, every_layer_model, weights_hash

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

# The other backends' workers reach this test at their own pace: a worker that is late has
# its other tests to run first (under a minute here; this bound is for a stuck one).
WAIT_FOR_OTHERS_S = 600


def _numpy_mlp_hash(initializer):
    """The weights build_mlp(6, 3, hidden=(16, 8), activation='prelu', seed=11) must have."""
    rng = np.random.default_rng(11)
    arrays = []
    for fan_in, fan_out in ((6, 16), (16, 8), (8, 3)):
        arrays += [draw_kernel(initializer, fan_in, fan_out, rng), np.zeros(fan_out, "float32")]
        if fan_out != 3:
            arrays.append(np.full(fan_out, 0.25, "float32"))  # PReLU slopes
    return weights_hash(arrays)


@pytest.mark.backend
@pytest.mark.parametrize("initializer", INITIALIZERS)
def test_build_mlp_weights_are_the_numpy_draws_bit_for_bit(backend, initializer):
    model = build_mlp(6, 3, hidden=(16, 8), activation="prelu", initializer=initializer, seed=11)
    assert weights_hash(model.get_weights()) == _numpy_mlp_hash(initializer)


@pytest.mark.backend
def test_every_backend_loads_every_other_backends_file(backend):
    folder = Path(os.environ["MLPSUITE_TEST_SHARED"]) / "cross-backend"
    folder.mkdir(exist_ok=True)
    model = every_layer_model()
    np.save(folder / f"{backend}-outputs.npy", model.predict(PROBE_INPUT, verbose=0))  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2
    model.save(folder / f"{backend}.partial.keras")
    os.replace(
        folder / f"{backend}.partial.keras", folder / f"{backend}.keras"
    )  # whole, or not there
    deadline = time.monotonic() + WAIT_FOR_OTHERS_S
    for other in (b for b in BACKENDS if b != backend):
        while not (folder / f"{other}.keras").exists():
            assert time.monotonic() < deadline, (
                f"the {other} worker saved no model within {WAIT_FOR_OTHERS_S} s"
            )
            time.sleep(0.2)
        loaded = keras.models.load_model(folder / f"{other}.keras")
        assert isinstance(loaded, keras.Model)
        saved = np.load(folder / f"{other}-outputs.npy")
        difference = float(np.max(np.abs(loaded.predict(PROBE_INPUT, verbose=0) - saved)))  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2
        assert difference < 1e-5, (
            f"saved on {other}, loaded on {backend}: outputs differ by {difference}"
        )
