"""A grid's comparison: cells over seeds, paired effects, the tuning protocol, backend parity,
backend speed, failures.

The one place comparisons are computed, as functions of a DataFrame with one row per trial key
(frame.py), so the statistics can be checked on a hand-built one: stats.py (pure functions of
arrays), tables.py (cells, effects, parity, speed), protocol.py (each scientific cell at its
best nuisance setting), comparison.py (`compare`, reading a grid from the store).
"""

from mlpsuite.analysis.comparison import BestCell, Comparison, compare, grid_runs
from mlpsuite.analysis.frame import (
    ALL_BACKENDS,
    NOT_RUN,
    RUN_METRICS,
    counted_run,
    finished,
    grid_column,
    grid_frame,
    is_pooled,
    pooled_backends,
    pooled_rows,
    pooled_source,
    reference_rows,
    with_curve_measures,
)
from mlpsuite.analysis.protocol import counterpart, selected_frame, selection_table
from mlpsuite.analysis.stats import (
    CONFIDENCE,
    Interval,
    holm,
    mean_interval,
    paired_difference,
    probability_of_improvement,
    relative_spread,
    robust_summary,
    seeds_for_power,
    standardized_effect,
)
from mlpsuite.analysis.tables import (
    CELL_METRICS,
    cell_table,
    direction,
    effect_table,
    failure_table,
    metric_range,
    parity_summary,
    parity_table,
    seed_budget,
    speed_table,
)
from mlpsuite.registry import RANKABLE

__all__ = [
    "ALL_BACKENDS",
    "BestCell",
    "is_pooled",
    "metric_range",
    "pooled_backends",
    "pooled_rows",
    "reference_rows",
    "CELL_METRICS",
    "direction",
    "CONFIDENCE",
    "NOT_RUN",
    "RANKABLE",
    "RUN_METRICS",
    "Comparison",
    "Interval",
    "cell_table",
    "compare",
    "counted_run",
    "counterpart",
    "effect_table",
    "failure_table",
    "finished",
    "grid_column",
    "grid_frame",
    "grid_runs",
    "holm",
    "mean_interval",
    "paired_difference",
    "parity_summary",
    "parity_table",
    "pooled_source",
    "probability_of_improvement",
    "relative_spread",
    "robust_summary",
    "seed_budget",
    "seeds_for_power",
    "selected_frame",
    "selection_table",
    "speed_table",
    "standardized_effect",
    "with_curve_measures",
]
