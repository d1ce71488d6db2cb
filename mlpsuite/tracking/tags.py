"""The tags and artifact names by which mlpsuite finds its runs again."""

TAG_KIND = "mlpsuite.kind"
TAG_KEY = "mlpsuite.trial_key"
TAG_BACKEND = "mlpsuite.backend"
TAG_SEED = "mlpsuite.seed"
TAG_FAILURE = "mlpsuite.failure"
TAG_PARENT = "mlflow.parentRunId"
# The coordinator invocation that made a run (`Tracker.driver`, unique across processes and
# machines, unlike a pid): searches for other drivers' runs filter on it.
TAG_DRIVER = "mlpsuite.driver"
TAG_CLAIM = "mlpsuite.claim"  # pending, then won (tracking/claims.py)
# On a grid run: its trial index (tracking/index.py) was written, at this time (ms).
TAG_INDEXED = "mlpsuite.trial_index"
# On a grid run: what its logged report was computed from (runner.report_digest).
TAG_REPORT_DIGEST = "mlpsuite.report_digest"
TAG_GRID_KEY = "mlpsuite.grid_key"
TAG_INVOCATIONS = "mlpsuite.invocations"
TAG_CELL = "mlpsuite.cell"
TAG_SUPERSEDED = "mlpsuite.superseded_by"
TAG_WEIGHTS = "mlpsuite.weights_sha256"
TAG_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI
TAG_HOST = "mlpsuite.host"  # the coordinator that owns a RUNNING run: a later run can tell
TAG_PID = "mlpsuite.pid"  # whether that coordinator still exists
TAG_VERSION = "mlpsuite.version."  # + a library's name: the versions a trial ran with
TAG_MISSING = "mlpsuite.missing_artifacts"  # artifacts that could not be written, and why
GRID_MANIFEST = "grid.json"
SEARCH_POINTS = "search.csv"  # a searched grid's points, on its parent run

# How much text one tag or param keeps. A param is cut at MLflow's limit for its value
# (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH); a message or list in a tag at 5,000
# characters, under every MLflow store's limit for a tag value (the whole text is in the run's
# files); a page's description (`mlflow.note.content`, Markdown the UI renders) at 60,000.
PARAM_CHARS = 6000
TAG_TEXT_CHARS = 5000
NOTE_CHARS = 60000


def run_versions(tags: dict[str, str]) -> dict[str, str]:
    """Each library's version (name -> version), from a trial run's tags."""
    return {
        key[len(TAG_VERSION) :]: value for key, value in tags.items() if key.startswith(TAG_VERSION)
    }
