"""mlpsuite: small feed-forward networks in Keras 3 on TensorFlow, PyTorch and JAX.

    import mlpsuite
    result = mlpsuite.run("experiments/quickstart.yaml")   # or a dict in the YAML's shape
    result.comparison.cells                                # pandas; in Jupyter `result` shows it

Importing `mlpsuite` loads no deep-learning framework, nor MLflow or pandas: `run`, `compare`,
`plan`, `Comparison` and `GridResult` (mlpsuite.api, mlpsuite.present.notebook) load on first use.
`mlpsuite.layers` and `mlpsuite.models` import Keras, which fixes the backend from
`KERAS_BACKEND`.
"""

from typing import TYPE_CHECKING

from mlpsuite.errors import ConfigError, ReportError, StoreError, UserError

if TYPE_CHECKING:  # at run time these load lazily through `__getattr__` below
    from mlpsuite.api import compare, plan, run, shutdown
    from mlpsuite.present.notebook import Comparison, GridResult

__version__ = "0.1.0"

_API = {
    "run": "mlpsuite.api",
    "compare": "mlpsuite.api",
    "plan": "mlpsuite.api",
    "shutdown": "mlpsuite.api",
    "Comparison": "mlpsuite.present.notebook",
    "GridResult": "mlpsuite.present.notebook",
}
__all__ = [
    "Comparison",
    "ConfigError",
    "GridResult",
    "ReportError",
    "StoreError",
    "UserError",
    "compare",
    "plan",
    "run",
    "shutdown",
]


def __getattr__(name: str):
    """The API on first use (PEP 562): `import mlpsuite` stays instant for the CLI."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'mlpsuite' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
