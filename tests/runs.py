"""Real MLflow Run entities, as search_runs returns them, for comparisons on hand-built grids."""

from __future__ import annotations

import uuid

from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag


def mlflow_run(
    key: str,
    status: str = "FINISHED",
    start: int = 0,
    tags: dict | None = None,
    params: dict | None = None,
    **metrics: float,
) -> Run:
    """A trial run of key `key` with these final metrics."""
    info = RunInfo(
        run_id=uuid.uuid4().hex,
        experiment_id="1",
        user_id="",
        status=status,
        start_time=start,
        end_time=start + 2000,
        lifecycle_stage="active",
    )
    data = RunData(
        metrics=[Metric(name, value, 0, 1) for name, value in metrics.items()],
        params=[Param(k, v) for k, v in (params or {}).items()],
        tags=[RunTag(k, v) for k, v in {"mlpsuite.trial_key": key, **(tags or {})}.items()],
    )
    return Run(info, data)
