"""The per-backend worker plugin really runs each instance on its own backend."""

import os
import sys

import keras
import pytest

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

FRAMEWORK_MODULE = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}


@pytest.mark.backend
def test_instance_runs_in_a_process_of_its_backend(backend):
    assert keras.backend.backend() == backend
    assert os.environ["KERAS_BACKEND"] == backend
    assert FRAMEWORK_MODULE[backend] in sys.modules


def test_main_process_keeps_the_light_numpy_backend():
    assert keras.backend.backend() == "numpy"
