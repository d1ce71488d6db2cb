"""The worker side: one trial (or a cell's seeds) inside a worker process, one backend each.

Only this package, the Keras library pieces users import (`mlpsuite.layers`, `mlpsuite.models`)
and the lecture's figures import a framework (Keras, TensorFlow, PyTorch, JAX, scikit-learn's
MLP); the coordinator (config, executors, tracking, analysis, presentation) never does. The
worker loop (`worker.py`) is what the executors start; it talks to them only through
`mlpsuite.executors.wire`.
"""
