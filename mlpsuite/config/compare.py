"""A grid's comparison protocol, as its config's `compare:` section (and `mlpsuite compare`'s
flags) declare it: which grid keys are nuisance (tuned per cell, selected on validation), what
the selection and the report use, which interval ranks, and a learning-curve target.

Imports neither pandas nor MLflow: the config checks it before any store is opened.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from mlpsuite.learning_curves import TARGET_METRICS
from mlpsuite.registry import RANKABLE, TARGET_MEASURES

StrTuple = Annotated[tuple[str, ...], Strict(False)]
# What a nuisance setting may be selected on: anything but the test split's scores.
SELECTABLE = tuple(name for name in RANKABLE if not name.startswith("test_"))


class CompareSpec(BaseModel):
    """`compare: {nuisance: [optimizer.learning_rate], select_on: val_loss,
    target: {val_loss: 0.3}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    nuisance: StrTuple = Field(
        default=(), description="grid keys tuned per cell (selected on select_on), not compared"
    )
    select_on: str = Field(
        default="val_loss", description="the validation metric a nuisance setting is chosen on"
    )
    metric: str | None = Field(
        default=None,
        description="the metric cells are ranked on (default: val_loss, or select_on's test "
        "counterpart with nuisance keys)",
    )
    interval: Literal["t", "bootstrap"] = Field(
        default="t", description="the interval the ranking's overlap marks use"
    )
    target: dict[str, float] = Field(
        default_factory=dict,
        description="a learning-curve target, {metric: value}: epochs and seconds to reach it",
    )

    @field_validator("nuisance", mode="before")
    @classmethod
    def _one_key_or_a_list(cls, nuisance):
        return (nuisance,) if isinstance(nuisance, str) else nuisance

    @field_validator("select_on", "metric")
    @classmethod
    def _known_metric(cls, name):
        if name is not None and name not in RANKABLE:
            raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(RANKABLE)}")
        return name

    @field_validator("select_on")
    @classmethod
    def _not_on_test(cls, name):
        """A setting chosen on the test split would make the reported number optimistic there."""
        if name.startswith("test_"):
            raise ValueError(
                f"{name} is on the test split, where the selected cell is reported; select on a "
                f"validation metric, allowed: {', '.join(SELECTABLE)}"
            )
        return name

    @field_validator("target", mode="before")
    @classmethod
    def _one_target(cls, target):
        if not isinstance(target, dict) or len(target) > 1:
            raise ValueError(
                f"expected one metric and its value, such as {{val_loss: 0.3}}, got {target!r}"
            )
        for metric, value in target.items():
            if metric not in TARGET_METRICS:
                raise ValueError(f"no target on {metric!r}; allowed: {', '.join(TARGET_METRICS)}")
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"target {metric} must be a finite number, got {value!r}")
            if "accuracy" in metric and not 0 < value <= 1:
                raise ValueError(f"target {metric} must be an accuracy in (0, 1], got {value!r}")
        return {metric: float(value) for metric, value in target.items()}

    def target_pair(self) -> tuple[str, float] | None:
        """`target` as `(metric, value)`, or None without a target."""
        return next(iter(self.target.items()), None)


def recorded_metrics(tasks: set[str], validation: bool, target: bool) -> list[str]:
    """The comparison metrics every run of a grid records: by its datasets' tasks, whether they
    keep a validation split, and whether a target is set."""
    metrics = {"loss", "test_loss"}
    if validation:
        metrics |= {"val_loss", "best_val_loss", "auc_val_loss"}
    if tasks == {"classification"}:
        metrics |= {"test_accuracy"} | ({"val_accuracy"} if validation else set())
    if tasks == {"regression"}:
        metrics |= {"test_r2", "test_mae"} | ({"val_r2", "val_mae"} if validation else set())
    if target:
        metrics |= set(TARGET_MEASURES)
    return [name for name in RANKABLE if name in metrics]


def protocol_problem(
    spec: CompareSpec,
    grid_keys: list[str],
    recorded: list[str],
    curves: list[str],
    searched: bool = False,
) -> tuple[str, str] | None:
    """(field, message) for the first thing wrong with `spec` on a grid with these keys, these
    recorded metrics and these epoch curves (`curves`); None when it can be computed. A
    `searched` grid may tune every key: its answer is then the best point, one cell."""
    keys = ", ".join(grid_keys) or "(none: the grid has no keys)"
    for key in spec.nuisance:
        if key not in grid_keys:
            return "nuisance", f"{key!r} is not a grid key; allowed: {keys}"
    if len(set(spec.nuisance)) < len(spec.nuisance):
        return "nuisance", f"a key is given twice: {list(spec.nuisance)}"
    if spec.nuisance and set(spec.nuisance) >= set(grid_keys) and not searched:
        what = "the only grid key" if len(grid_keys) == 1 else "every grid key"
        return "nuisance", (
            f"{', '.join(spec.nuisance)} is {what}; at least one must stay scientific "
            f"(compared), allowed: a subset of {keys}"
        )
    if "select_on" in spec.model_fields_set and not spec.nuisance:
        return (
            "select_on",
            "selects a nuisance setting, but no nuisance key is given "
            "(compare.nuisance, --nuisance)",
        )
    for field in ("select_on", "metric") if spec.nuisance else ("metric",):
        name = getattr(spec, field)
        if name in TARGET_MEASURES and not spec.target:
            return (
                field,
                f"{name} needs a target "
                "(compare.target, --target METRIC=VALUE such as val_loss=0.3)",
            )
        if name is not None and name not in recorded:
            return (
                field,
                f"{name} is not recorded by this grid's runs; allowed: "
                f"{', '.join(recorded) or '(none)'}",
            )
    for metric in spec.target:
        if metric not in curves:
            return (
                "target",
                f"{metric} is not an epoch curve of this grid's runs; allowed: {', '.join(curves)}",
            )
    return None
