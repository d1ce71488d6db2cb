"""A grid's trial index: every trial run of its keys in one artifact of its parent run.

Reading a grid back run by run (one search returning every run, then one metric-history
request per run per curve) costs seconds per thousand trials. So each `mlpsuite run` that
completes writes `trial_index.json.gz` on the grid's parent: per run its info, tags, params,
latest metrics and the per-epoch curves it logged, as the coordinator wrote them. Resuming and
comparing read that one file, then ask the store only for what changed since it was written:
the runs that ended since (less a margin for other machines' clocks), those still RUNNING,
and those deleted. The runs stay the record; the index is a copy that the store corrects.

`RunRecord` reads like MLflow's `Run` where mlpsuite reads runs (`info.run_id`, `info.status`,
`data.tags`, ...), so the analysis takes either.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from typing import Any

TRIAL_INDEX = "trial_index.json.gz"
INDEX_FORMAT = 1
# Runs another machine ended this long before the index was written are looked for again: its
# clock may stamp the end of a run a little "before" it happened, as the writer's clock reads.
INDEX_MARGIN_MS = 60_000
# A run's end is stamped before it reaches the store (its last batch, a wait for SQLite's
# lock): runs of any host that ended this long before are looked for again too.
WRITE_MARGIN_MS = 10_000


@dataclasses.dataclass(slots=True)  # 10,000 of each per index
class RecordInfo:
    """The `run.info` fields mlpsuite reads: id, experiment, status, start and end, name."""

    run_id: str
    experiment_id: str
    status: str
    start_time: int
    end_time: int | None = None
    run_name: str = ""


@dataclasses.dataclass(slots=True)  # 10,000 of each per index
class RecordData:
    """The `run.data` of a record: tags, params and the latest value of each metric."""

    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)  # 10,000 of each per index
class RunRecord:
    """One run as the index keeps it. `curves`: metric -> [[step, value], ...] in the order
    MLflow returns a history (by step, then as logged); `complete`: every metric the run logged has
    its curve here (a run the coordinator wrote), else only the curves listed are (a run read
    from the store, whose curves are fetched when first wanted)."""

    info: RecordInfo
    data: RecordData
    # Lists, not tuples, as JSON reads them: a 10,000-trial index is not converted point by point.
    curves: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)
    complete: bool = False
    # The latest value's (step, timestamp) per metric, as MLflow picks a run's latest metric.
    _latest: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def of_run(cls, run) -> RunRecord:
        """A run as `search_runs` or `get_run` returns it (its curves not yet read)."""
        info = run.info
        return cls(
            RecordInfo(
                info.run_id,
                info.experiment_id,
                info.status,
                info.start_time,
                info.end_time,
                info.run_name or "",
            ),
            RecordData(dict(run.data.tags), dict(run.data.params), dict(run.data.metrics)),
        )

    def has_curve(self, name: str) -> bool:
        """Whether the record holds metric `name`'s per-epoch curve (every one when
        `complete`)."""
        return self.complete or name in self.curves

    def curve(self, name: str) -> list[list[float]]:
        """Metric `name`'s [[step, value], ...] as held; [] when not held."""
        return self.curves.get(name, [])

    def log_metrics(self, metrics: list) -> None:
        """MLflow `Metric`s written to the run: each curve extended and kept in step order,
        the latest values as MLflow keeps them (the highest step, then the newest)."""
        for metric in metrics:
            curve = self.curves.setdefault(metric.key, [])
            curve.append([metric.step, metric.value])
            if len(curve) > 1 and curve[-2][0] > metric.step:
                curve.sort(key=lambda point: point[0])  # stable: a step's values stay in order
            latest = (metric.step, metric.timestamp)
            if latest >= self._latest.get(metric.key, (-(2**62), 0)):
                self._latest[metric.key] = latest
                self.data.metrics[metric.key] = metric.value

    def to_json(self) -> dict[str, Any]:
        """The record as the index file stores it (JSON-ready)."""
        return {
            "info": dataclasses.asdict(self.info),
            "tags": self.data.tags,
            "params": self.data.params,
            "metrics": self.data.metrics,
            "curves": {
                name: [list(point) for point in curve] for name, curve in self.curves.items()
            },
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> RunRecord:
        """The record `to_json` gave."""
        return cls(
            RecordInfo(**entry["info"]),
            RecordData(entry["tags"], entry["params"], entry["metrics"]),
            entry["curves"],
            bool(entry["complete"]),
        )


@dataclasses.dataclass
class TrialIndex:
    """What one index file holds: the runs, when they were read (`written_ms`, the clock of
    `host`) and which coordinator wrote it (`driver`: its own runs had all ended, so a later
    reader need not read them again)."""

    records: list[RunRecord]
    written_ms: int
    driver: str
    host: str


def dump_index(index: TrialIndex) -> bytes:
    """The index file's bytes: gzip-compressed JSON (a 10,000-trial grid's is a few MB)."""
    payload = {
        "format": INDEX_FORMAT,
        "written_ms": index.written_ms,
        "driver": index.driver,
        "host": index.host,
        "runs": [record.to_json() for record in index.records],
    }
    return gzip.compress(json.dumps(payload, separators=(",", ":")).encode("utf-8"), 6)


def load_index(data: bytes) -> TrialIndex | None:
    """The index a file holds; None for one of another format or damaged (an index is a copy:
    then the store is read instead)."""
    try:
        payload = json.loads(gzip.decompress(data))
        if payload.get("format") != INDEX_FORMAT:
            return None
        records = [RunRecord.from_json(entry) for entry in payload["runs"]]
        return TrialIndex(
            records, int(payload["written_ms"]), str(payload["driver"]), str(payload["host"])
        )
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        return None
