"""Feature-scaling layers: min-max, median/IQR ("median scaling") and z-scaling.

Each layer is adapted once on training data, keeps its statistics as non-trainable weights
(saved with the model, identical on every backend) and maps `(batch, features)` to the same
shape. Constant features get scale 1, as in scikit-learn, so they never produce inf or NaN.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
from keras import ops

_PACKAGE = "mlpsuite"


def _handle_zeros_in_scale(scale: np.ndarray) -> np.ndarray:
    # Same rule as sklearn.preprocessing._data._handle_zeros_in_scale.
    constant = scale < 10 * np.finfo(scale.dtype).eps
    return np.where(constant, 1.0, scale)


def _as_2d_array(data) -> np.ndarray:
    """Stack what `adapt` accepts into one float64 array of shape (samples, features)."""
    if isinstance(data, np.ndarray):
        batches = [data]
    elif keras.ops.is_tensor(data):
        batches = [ops.convert_to_numpy(data)]
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, dict)):
        batches = [b if isinstance(b, np.ndarray) else ops.convert_to_numpy(b) for b in data]
    else:
        raise ValueError(
            f"Unsupported data type: {type(data)}. adapt supports np.ndarray, backend "
            "tensors and iterables of such batches."
        )
    if not batches:
        raise ValueError("adapt received no data (an empty iterable of batches).")
    array = np.concatenate([np.asarray(b, dtype=np.float64) for b in batches], axis=0)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"adapt expects data of shape (samples, features), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("adapt received NaN or infinite values.")
    return array


class _Scaling(keras.layers.Layer):
    """Shared mechanics: `(x - center) / scale`, statistics fixed by `adapt`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._adapted = False

    def build(self, input_shape):
        """Create the non-trainable `center` and `scale` weights, one value per feature.

        Args:
            input_shape (tuple): `(batch, features)`; `features` must be known.

        Raises:
            ValueError: the number of features is unknown (None).
        """
        n_features = input_shape[-1]
        if n_features is None:
            raise ValueError(f"{type(self).__name__} needs a known number of features")
        self.center = self.add_weight(
            name="center", shape=(n_features,), initializer="zeros", trainable=False
        )
        self.scale = self.add_weight(
            name="scale", shape=(n_features,), initializer="ones", trainable=False
        )

    def adapt(self, data) -> None:
        """Compute the statistics from `data`: an array, tensor or iterable of batches.

        Iterables are concatenated in memory: median and quantiles need all rows at once.
        Builds the layer on first use; a feature whose spread is (nearly) zero gets scale 1.

        Args:
            data (array, tensor or iterable): training features of shape `(samples, features)`:
                a NumPy array, a backend tensor, or an iterable of such batches.

        Raises:
            ValueError: `data` is of another type, empty, not two-dimensional, holds NaN or
                infinite values, or has another number of features than the layer was
                built for.
        """
        array = _as_2d_array(data)
        center, scale = self._statistics(array)
        if not self.built:
            self.build((None, array.shape[1]))
        elif self.center.shape[0] != array.shape[1]:
            raise ValueError(
                f"{type(self).__name__} was built for {self.center.shape[0]} features, "
                f"adapt got {array.shape[1]}"
            )
        self.center.assign(center.astype(self.variable_dtype))
        self.scale.assign(_handle_zeros_in_scale(scale).astype(self.variable_dtype))
        self._adapted = True

    def load_own_variables(self, store):
        """Load the saved statistics (Keras' model loading); the layer counts as adapted."""
        super().load_own_variables(store)
        self._adapted = True

    @property
    def is_adapted(self) -> bool:
        """Whether `adapt` has set the statistics (or they were loaded with a saved model)."""
        return self._adapted

    def _standardize(self, inputs):
        if not self._adapted:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} is not adapted: call "
                "layer.adapt(training_features) before using it."
            )
        return (inputs - self.center) / self.scale

    def call(self, inputs):
        """`(inputs - center) / scale`.

        Args:
            inputs (tensor): shape `(batch, features)`.

        Returns:
            (tensor): the same shape as `inputs`.

        Raises:
            ValueError: the layer is not adapted yet.
        """
        return self._standardize(inputs)

    def compute_output_shape(self, input_shape):
        """The input's shape: scaling changes no dimension."""
        return input_shape

    def _statistics(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MinMaxScaling(_Scaling):
    """Min-max scaling of each feature to `feature_range`, as sklearn's MinMaxScaler.

    ```
    y = (x - min) / (max - min) * (high - low) + low
    ```
    Input and output shape: `(batch, features)`.

    Args:
        feature_range: `(low, high)` of the scaled training data. Defaults to `(0, 1)`.

    Raises:
        ValueError: `feature_range` does not have low < high.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import MinMaxScaling
        >>> X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 100.0]])
        >>> layer = MinMaxScaling(feature_range=(-1, 1))
        >>> layer.adapt(X)
        >>> print(np.round(ops.convert_to_numpy(layer(X)), 4))
        [[-1.     -1.    ]
         [-0.3333 -0.7778]
         [ 0.3333 -0.5556]
         [ 1.      1.    ]]
        >>> print(ops.convert_to_numpy(layer.center), ops.convert_to_numpy(layer.scale))
        [ 1. 10.] [ 3. 90.]
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        low, high = (float(v) for v in feature_range)
        if not low < high:
            raise ValueError(f"Expected feature_range with low < high, got {feature_range}")
        self.feature_range = (low, high)

    def _statistics(self, array):
        data_min = array.min(axis=0)
        return data_min, array.max(axis=0) - data_min

    def call(self, inputs):
        """`inputs` mapped so that the training data's min and max become `low` and `high`.

        Args:
            inputs (tensor): shape `(batch, features)`.

        Returns:
            (tensor): the same shape as `inputs` (values outside the training range land
                outside `feature_range`).

        Raises:
            ValueError: the layer is not adapted yet.
        """
        low, high = self.feature_range
        return self._standardize(inputs) * (high - low) + low

    def get_config(self):
        """The layer's config with `feature_range`, for saving and `from_config`."""
        return {**super().get_config(), "feature_range": list(self.feature_range)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RobustScaling(_Scaling):
    """Median and interquartile-range scaling, as sklearn's RobustScaler.

    ```
    y = (x - median) / (q_high - q_low)
    ```
    Outliers barely move the median or the IQR, unlike the min/max or mean/std.
    Input and output shape: `(batch, features)`.

    Args:
        quantile_range: `(q_low, q_high)` percentiles for the spread. Defaults to `(25, 75)`.

    Raises:
        ValueError: `quantile_range` does not have 0 <= q_low < q_high <= 100.

    Examples:
        The outlier (100) moves neither the median nor the IQR of the second feature:

        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import RobustScaling
        >>> X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 100.0]])
        >>> layer = RobustScaling()
        >>> layer.is_adapted
        False
        >>> layer.adapt(X)
        >>> print(np.round(ops.convert_to_numpy(layer(X)), 4))
        [[-1.     -0.5   ]
         [-0.3333 -0.1667]
         [ 0.3333  0.1667]
         [ 1.      2.5   ]]
    """

    def __init__(self, quantile_range: tuple[float, float] = (25.0, 75.0), **kwargs):
        super().__init__(**kwargs)
        q_low, q_high = (float(v) for v in quantile_range)
        if not 0.0 <= q_low < q_high <= 100.0:
            raise ValueError(
                f"Expected quantile_range with 0 <= low < high <= 100, got {quantile_range}"
            )
        self.quantile_range = (q_low, q_high)

    def _statistics(self, array):
        q_low, q_high = np.percentile(array, self.quantile_range, axis=0)
        return np.median(array, axis=0), q_high - q_low

    def get_config(self):
        """The layer's config with `quantile_range`, for saving and `from_config`."""
        return {**super().get_config(), "quantile_range": list(self.quantile_range)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StandardScaling(_Scaling):
    """Z-scaling: zero mean and unit (population) variance, as sklearn's StandardScaler.

    ```
    y = (x - mean) / std
    ```
    Input and output shape: `(batch, features)`.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import StandardScaling
        >>> X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 100.0]])
        >>> layer = StandardScaling()
        >>> layer.adapt(X)
        >>> print(np.round(ops.convert_to_numpy(layer(X)), 4))
        [[-1.3416 -0.8485]
         [-0.4472 -0.5657]
         [ 0.4472 -0.2828]
         [ 1.3416  1.6971]]
        >>> print(np.round(ops.convert_to_numpy(layer.scale), 4))
        [ 1.118  35.3553]

        `adapt` takes a whole training set, `(samples, features)`:

        >>> layer.adapt(X[:, 0])
        Traceback (most recent call last):
        ...
        ValueError: adapt expects data of shape (samples, features), got (4,)
    """

    def _statistics(self, array):
        return array.mean(axis=0), array.std(axis=0)
