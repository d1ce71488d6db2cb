"""mlpsuite: small feed-forward networks in Keras 3 on TensorFlow, PyTorch and JAX.

Importing `mlpsuite` loads no deep-learning framework; `mlpsuite.layers` and
`mlpsuite.models` import Keras, which fixes the backend from `KERAS_BACKEND`.
"""

__version__ = "0.1.0"
