# keras.ops annotates its results as possibly None, so arithmetic on them trips pyright:
# pyright: reportOperatorIssue=false, reportOptionalOperand=false
"""Activation layers from the lecture, written with `keras.ops` only.

Each layer maps a tensor of any shape `(..., units)` to a tensor of the same shape and has a
closed-form `derivative(x)` (the elementwise dy/dx) so the math can be checked against the
slides and against the backend's autodiff.

Convention at kinks: the derivative takes the value from the left-hand piece, which is what
Keras' autodiff gives for ReLU at 0 (ReLU'(0) = 0) on every backend. The layers are written
with `ops.where(x > 0, ...)` rather than backend helpers like `ops.leaky_relu` because those
disagree at 0 across backends (JAX's leaky_relu has slope 1 there, TensorFlow's has alpha).
"""

from __future__ import annotations

import math

import keras
from keras import ops

_PACKAGE = "mlpsuite"


def _negative_part(x):
    """`x` where x <= 0 and 0 elsewhere; keeps exp() in the unselected branch finite."""
    return ops.where(x > 0, ops.zeros_like(x), x)


class _Elementwise(keras.layers.Layer):
    """Shared plumbing: elementwise activations keep the input shape."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        """The input's shape: an elementwise map changes no dimension."""
        return input_shape

    def derivative(self, x):
        """The elementwise dy/dx at `x`, of `x`'s shape (each activation writes its own)."""
        raise NotImplementedError

    def _ensure_built(self, x):
        # derivative() may be called on a fresh layer; weights come from build().
        if not self.built:
            self.build(ops.shape(x))
            self.built = True


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Identity(_Elementwise):
    """Identity activation: a network of identity units is one affine map.

    ```
    f(x) = x
    f'(x) = 1
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import Identity
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = Identity()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-2.  -0.5  0.5  2. ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[1. 1. 1. 1.]]
    """

    def call(self, inputs):
        """`inputs` unchanged.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return inputs

    def derivative(self, x):
        """Ones: the slope of the identity everywhere.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        return ops.ones_like(x)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Step(_Elementwise):
    """Heaviside step, the perceptron's original activation.

    ```
    f(x) = 1 if x > 0 else 0
    f'(x) = 0   (everywhere, by convention also at 0, where the step is not differentiable)
    ```

    With a zero gradient everywhere nothing upstream of a step unit can learn by gradient
    descent; the layer is here to show exactly that.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import Step
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = Step()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[0. 0. 1. 1.]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0. 0. 0. 0.]]
    """

    def call(self, inputs):
        """1 where `inputs` > 0, else 0.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.where(inputs > 0, ops.ones_like(inputs), ops.zeros_like(inputs))

    def derivative(self, x):
        """Zeros: the step's slope, also at its jump by convention.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        return ops.zeros_like(x)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Sigmoid(_Elementwise):
    """Logistic sigmoid; saturates on both sides, so gradients vanish (max slope 1/4).

    ```
    f(x) = 1 / (1 + exp(-x))
    f'(x) = f(x) * (1 - f(x))
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import Sigmoid
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = Sigmoid()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[0.1192 0.3775 0.6225 0.8808]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.105 0.235 0.235 0.105]]
    """

    def call(self, inputs):
        """The logistic sigmoid of `inputs`, in (0, 1).

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.sigmoid(inputs)

    def derivative(self, x):
        """`sigmoid(x) * (1 - sigmoid(x))`, at most 1/4 (at 0).

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        s = ops.sigmoid(x)
        return s * (1.0 - s)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Tanh(_Elementwise):
    """Hyperbolic tangent; zero-centred, saturates like the sigmoid.

    ```
    f(x) = tanh(x)
    f'(x) = 1 - tanh(x)^2
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import Tanh
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = Tanh()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.964  -0.4621  0.4621  0.964 ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.0707 0.7864 0.7864 0.0707]]
    """

    def call(self, inputs):
        """`tanh(inputs)`, in (-1, 1).

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.tanh(inputs)

    def derivative(self, x):
        """`1 - tanh(x)^2`, at most 1 (at 0).

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        return 1.0 - ops.square(ops.tanh(x))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HardSigmoid(_Elementwise):
    """Piecewise-linear sigmoid, as `keras.activations.hard_sigmoid`.

    ```
    f(x) = 0            if x <= -3
           x / 6 + 1/2  if -3 < x < 3
           1            if x >= 3
    f'(x) = 1/6 if -3 < x < 3 else 0
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import HardSigmoid
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = HardSigmoid()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[0.1667 0.4167 0.5833 0.8333]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.1667 0.1667 0.1667 0.1667]]
    """

    def call(self, inputs):
        """`x / 6 + 1/2` clipped to [0, 1].

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        middle = inputs / 6.0 + 0.5
        upper = ops.where(inputs >= 3.0, ops.ones_like(inputs), middle)
        return ops.where(inputs <= -3.0, ops.zeros_like(inputs), upper)

    def derivative(self, x):
        """1/6 strictly inside (-3, 3), 0 outside and at the kinks.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        inside = ops.logical_and(x > -3.0, x < 3.0)
        return ops.where(inside, ops.full_like(x, 1.0 / 6.0), ops.zeros_like(x))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReLU(_Elementwise):
    """Rectified linear unit; units whose input stays negative are "dead" (zero gradient).

    ```
    f(x) = max(x, 0)
    f'(x) = 1 if x > 0 else 0
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import ReLU
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = ReLU()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[0.  0.  0.5 2. ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0. 0. 1. 1.]]
    """

    def call(self, inputs):
        """`max(inputs, 0)`.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.relu(inputs)

    def derivative(self, x):
        """1 where `x` > 0, else 0 (also at 0, as autodiff gives).

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        return ops.where(x > 0, ops.ones_like(x), ops.zeros_like(x))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LeakyReLU(_Elementwise):
    """ReLU with a small slope for negative inputs, so no unit dies completely.

    ```
    f(x) = x if x > 0 else alpha * x
    f'(x) = 1 if x > 0 else alpha
    ```

    Args:
        alpha: slope for x <= 0. Defaults to 0.01.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import LeakyReLU
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = LeakyReLU(alpha=0.1)
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.2  -0.05  0.5   2.  ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.1 0.1 1.  1. ]]
    """

    def __init__(self, alpha: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        """`inputs` where positive, `alpha * inputs` elsewhere.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.where(inputs > 0, inputs, self.alpha * inputs)

    def derivative(self, x):
        """1 where `x` > 0, else `alpha` (also at 0).

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        return ops.where(x > 0, ops.ones_like(x), ops.full_like(x, self.alpha))

    def get_config(self):
        """The layer's config with `alpha`, for saving and `from_config`."""
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ELU(_Elementwise):
    """Exponential linear unit; smooth, keeps negative values down to -alpha.

    ```
    f(x) = x if x > 0 else alpha * (exp(x) - 1)
    f'(x) = 1 if x > 0 else alpha * exp(x)
    ```

    Args:
        alpha: the negative saturation value. Defaults to 1.0.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import ELU
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = ELU()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.8647 -0.3935  0.5     2.    ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.1353 0.6065 1.     1.    ]]
    """

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        """`inputs` where positive, `alpha * (exp(inputs) - 1)` elsewhere.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.where(inputs > 0, inputs, self.alpha * ops.expm1(_negative_part(inputs)))

    def derivative(self, x):
        """1 where `x` > 0, else `alpha * exp(x)`.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        return ops.where(x > 0, ops.ones_like(x), self.alpha * ops.exp(_negative_part(x)))

    def get_config(self):
        """The layer's config with `alpha`, for saving and `from_config`."""
        return {**super().get_config(), "alpha": self.alpha}


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SELU(_Elementwise):
    """Scaled ELU (Klambauer et al., 2017): self-normalising with lecun_normal weights.

    ```
    f(x) = scale * x                     if x > 0
           scale * alpha * (exp(x) - 1)  otherwise
    f'(x) = scale if x > 0 else scale * alpha * exp(x)
    alpha = 1.6732632423543772, scale = 1.0507009873554805
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import SELU
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = SELU()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-1.5202 -0.6918  0.5254  2.1014]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.2379 1.0663 1.0507 1.0507]]
    """

    def call(self, inputs):
        """`scale` times the ELU of `inputs` with SELU's fixed `alpha`.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        negative = _SELU_ALPHA * ops.expm1(_negative_part(inputs))
        return _SELU_SCALE * ops.where(inputs > 0, inputs, negative)

    def derivative(self, x):
        """`scale` where `x` > 0, else `scale * alpha * exp(x)`.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        negative = _SELU_ALPHA * ops.exp(_negative_part(x))
        return _SELU_SCALE * ops.where(x > 0, ops.ones_like(x), negative)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GELU(_Elementwise):
    """Gaussian error linear unit: x weighted by the standard normal CDF.

    ```
    exact:        f(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))
                  f'(x) = Phi(x) + x * phi(x),  phi(x) = exp(-x^2/2) / sqrt(2 pi)
    approximate:  f(x) = x/2 * (1 + t),  t = tanh(sqrt(2/pi) * (x + 0.044715 x^3))
                  f'(x) = (1 + t)/2 + x/2 * (1 - t^2) * sqrt(2/pi) * (1 + 3 * 0.044715 x^2)
    ```

    Args:
        approximate: use the tanh approximation. Defaults to False.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import GELU
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = GELU()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.0455 -0.1543  0.3457  1.9545]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[-0.0852  0.1325  0.8675  1.0852]]

        The tanh approximation differs in the fourth decimal:

        >>> print(np.round(ops.convert_to_numpy(GELU(approximate=True)(x)), 4))
        [[-0.0454 -0.1543  0.3457  1.9546]]
    """

    def __init__(self, approximate: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def _tanh_inner(self, x):
        return ops.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x))

    def call(self, inputs):
        """`x * Phi(x)` of `inputs`, exact (erf) or by the tanh approximation.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        if self.approximate:
            return 0.5 * inputs * (1.0 + self._tanh_inner(inputs))
        return 0.5 * inputs * (1.0 + ops.erf(inputs / math.sqrt(2.0)))

    def derivative(self, x):
        """The closed-form slope of the exact or the approximate GELU.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        x = ops.convert_to_tensor(x)  # NumPy times a torch tensor is a TypeError
        if self.approximate:
            t = self._tanh_inner(x)
            inner_slope = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * x * x)
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_slope
        cdf = 0.5 * (1.0 + ops.erf(x / math.sqrt(2.0)))
        pdf = ops.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return cdf + x * pdf

    def get_config(self):
        """The layer's config with `approximate`, for saving and `from_config`."""
        return {**super().get_config(), "approximate": self.approximate}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Swish(_Elementwise):
    """Swish / SiLU (beta = 1): x gated by its own sigmoid; smooth, non-monotonic.

    ```
    f(x) = x * sigmoid(beta * x)
    f'(x) = s + beta * x * s * (1 - s),  s = sigmoid(beta * x)
    ```

    Args:
        beta: the gate's sharpness. Defaults to 1.0.
        trainable_beta: learn one scalar beta (initialised to `beta`). Defaults to False.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import Swish
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = Swish()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.2384 -0.1888  0.3112  1.7616]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[-0.0908  0.26    0.74    1.0908]]

        A larger `beta` sharpens the gate towards ReLU:

        >>> print(np.round(ops.convert_to_numpy(Swish(beta=2.0)(x)), 4))
        [[-0.036  -0.1345  0.3655  1.964 ]]
    """

    def __init__(self, beta: float = 1.0, trainable_beta: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.trainable_beta = bool(trainable_beta)

    def build(self, input_shape):
        """Create the scalar `beta` weight when it is trainable; a fixed beta needs none.

        Args:
            input_shape (tuple): the input's shape, `(..., units)` (unused: one beta for all units).
        """
        if self.trainable_beta:
            self.beta_weight = self.add_weight(
                name="beta",
                shape=(),
                initializer=keras.initializers.Constant(self.beta),
                trainable=True,
            )

    def _beta(self):
        return self.beta_weight if self.trainable_beta else self.beta

    def call(self, inputs):
        """`inputs * sigmoid(beta * inputs)`.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return inputs * ops.sigmoid(self._beta() * inputs)

    def derivative(self, x):
        """`s + beta * x * s * (1 - s)` with `s = sigmoid(beta * x)`; builds the layer first
        if needed (a trainable beta is a weight).

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        x = ops.convert_to_tensor(x)  # NumPy times a torch tensor is a TypeError
        self._ensure_built(x)
        beta = self._beta()
        s = ops.sigmoid(beta * x)
        return s + beta * x * s * (1.0 - s)

    def get_config(self):
        """The layer's config with `beta` and `trainable_beta`, for saving and `from_config`."""
        return {
            **super().get_config(),
            "beta": self.beta,
            "trainable_beta": self.trainable_beta,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Softplus(_Elementwise):
    """Smooth ReLU.

    ```
    f(x) = log(1 + exp(x))
    f'(x) = sigmoid(x)
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import Softplus
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = Softplus()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[0.1269 0.4741 0.9741 2.1269]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.1192 0.3775 0.6225 0.8808]]
    """

    def call(self, inputs):
        """`log(1 + exp(inputs))`, computed without overflow.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.softplus(inputs)

    def derivative(self, x):
        """`sigmoid(x)`.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        return ops.sigmoid(x)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Mish(_Elementwise):
    """Mish (Misra, 2019): self-gated like Swish, through tanh(softplus).

    ```
    f(x) = x * tanh(softplus(x))
    f'(x) = tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)^2),  sp = softplus(x)
    ```

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import Mish
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = Mish()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.2525 -0.2207  0.3752  1.944 ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[-0.1084  0.2895  0.8864  1.0693]]
    """

    def call(self, inputs):
        """`inputs * tanh(softplus(inputs))`.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return inputs * ops.tanh(ops.softplus(inputs))

    def derivative(self, x):
        """The closed-form slope above, with `sp = softplus(x)`.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        x = ops.convert_to_tensor(x)  # NumPy times a torch tensor is a TypeError
        t = ops.tanh(ops.softplus(x))
        return t + x * ops.sigmoid(x) * (1.0 - t * t)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PReLU(_Elementwise):
    """Parametric ReLU (He et al., 2015): a LeakyReLU whose slope is learned per unit.

    ```
    f(x) = x if x > 0 else alpha_u * x
    f'(x) = 1 if x > 0 else alpha_u
    ```
    `alpha` has shape `(units,)`, one slope per unit of the last axis.

    Args:
        alpha_init: the initial slope of every unit. Defaults to 0.25 (as PyTorch).

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import PReLU
        >>> x = ops.convert_to_tensor([[-2.0, -0.5, 0.5, 2.0]])
        >>> layer = PReLU()
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.5   -0.125  0.5    2.   ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.25 0.25 1.   1.  ]]

        One slope per unit of the last axis, a trainable weight:

        >>> tuple(layer.alpha.shape)
        (4,)
    """

    def __init__(self, alpha_init: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.alpha_init = float(alpha_init)

    def build(self, input_shape):
        """Create `alpha`, one trainable slope per unit of the last axis.

        Args:
            input_shape (tuple): the input's shape, `(..., units)`; `units` must be known.
        """
        self.alpha = self.add_weight(
            name="alpha",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.alpha_init),
            trainable=True,
        )

    def call(self, inputs):
        """`inputs` where positive, `alpha * inputs` elsewhere, one `alpha` per unit.

        Args:
            inputs (tensor): shape `(..., units)`.

        Returns:
            (tensor): the same shape as `inputs`.
        """
        return ops.where(inputs > 0, inputs, self.alpha * inputs)

    def derivative(self, x):
        """1 where `x` > 0, else the unit's `alpha`; builds the layer first if needed.

        Args:
            x (tensor): shape `(..., units)`, a NumPy array or a backend tensor.

        Returns:
            (tensor): the same shape as `x`.
        """
        self._ensure_built(x)
        alpha = ops.broadcast_to(ops.cast(self.alpha, x.dtype), ops.shape(x))
        return ops.where(x > 0, ops.ones_like(x), alpha)

    def get_config(self):
        """The layer's config with `alpha_init`, for saving and `from_config` (the learned
        slopes are weights, saved with them)."""
        return {**super().get_config(), "alpha_init": self.alpha_init}
