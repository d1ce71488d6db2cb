"""A backend tensor as a NumPy array, typed as one."""

from __future__ import annotations

from typing import cast

import numpy as np


def to_numpy(x) -> np.ndarray:
    """`keras.ops.convert_to_numpy(x)`, whose inferred return type is a union of every backend's
    (scalars, strings, None) that NumPy's annotations refuse. Keras is imported here, when
    called: a backend test runs in its backend's own process."""
    import keras

    return cast(np.ndarray, keras.ops.convert_to_numpy(x))
