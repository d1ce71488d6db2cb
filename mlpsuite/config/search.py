"""A grid's `search:` section: nuisance settings sampled over ranges instead of listed and
crossed, the way the Deep Learning Tuning Playbook tunes them (quasi-random search: uniform
coverage that shows a range's boundary problems, points that do not depend on how the search
went, an objective that can change afterwards without running anything again).

    search:
      method: quasirandom          # scrambled Sobol' (scipy.stats.qmc), or random: a baseline
      trials: 24                   # points; each grid cell gets the same ones
      seed: 0
      space:
        optimizer.learning_rate: {low: 1.0e-4, high: 3, log: true}
        optimizer.momentum: {low: 0.5, high: 0.99}
        training.batch_size: {low: 8, high: 64, integer: true, log: true}
        model.activation: {choices: [relu, tanh]}

A point's values are rounded to `SIGNIFICANT` digits: they are what the trial key hashes and
what every table names, so the same config and seed give the same trials on every machine.
Imports neither pandas nor MLflow; scipy only to draw the points.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

METHODS = ("quasirandom", "random")
SIGNIFICANT = 4  # digits a sampled float keeps


class Range(BaseModel):
    """A numeric range: uniform on [low, high], log-uniform with `log`, whole numbers with
    `integer` (both ends included)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    low: float = Field(description="the smallest value drawn")
    high: float = Field(description="the largest value drawn")
    log: bool = Field(default=False, description="uniform in log(value): for rates and decays")
    integer: bool = Field(default=False, description="whole numbers: units, batch sizes, epochs")

    @field_validator("low", "high", mode="before")
    @classmethod
    def _a_number(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)

    @model_validator(mode="after")
    def _a_span(self):
        if not self.low < self.high:
            raise ValueError(
                f"low ({self.low:g}) must be below high ({self.high:g}); one value is a setting, "
                "not a range: put it in its section"
            )
        if self.log and self.low <= 0:
            raise ValueError(
                f"a log range must stay above 0 (log of {self.low:g} is undefined); "
                "allowed: low > 0"
            )
        if self.integer and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError(f"an integer range needs whole ends, got {self.low:g}..{self.high:g}")
        return self

    def value(self, unit: float) -> float | int:
        """The range's value at `unit` in [0, 1): the point's coordinate."""
        if self.integer:  # each whole number an equal share (of log space, with `log`)
            top = self.high + 1
            if self.log:
                drawn = math.exp(math.log(self.low) + unit * (math.log(top) - math.log(self.low)))
            else:
                drawn = self.low + unit * (top - self.low)
            return int(min(self.high, max(self.low, math.floor(drawn))))
        if self.log:
            drawn = math.exp(math.log(self.low) + unit * (math.log(self.high) - math.log(self.low)))
        else:
            drawn = self.low + unit * (self.high - self.low)
        return min(self.high, max(self.low, float(f"{drawn:.{SIGNIFICANT}g}")))

    def distinct(self) -> float:
        """How many values the range holds as recorded (whole, or at SIGNIFICANT digits)."""
        if self.integer:
            return self.high - self.low + 1
        if self.low <= 0 <= self.high:
            return math.inf  # ever finer values near 0
        low, high = (self.low, self.high) if self.low > 0 else (-self.high, -self.low)
        count = 0.0
        for decade in range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 1):
            step = 10.0 ** (decade - SIGNIFICANT + 1)
            first = max(low, 10.0**decade)
            last = min(high, 10.0 ** (decade + 1) - step)
            if last >= first:
                count += math.floor(last / step + 1e-9) - math.ceil(first / step - 1e-9) + 1
        return count

    def ends(self) -> list[float | int]:
        """The values at both ends: valid there, valid between (fields' bounds are intervals)."""
        return [int(self.low), int(self.high)] if self.integer else [self.low, self.high]

    def label(self) -> str:
        """The range in words: `log-uniform 0.0001..0.1`, `integer uniform 1..4`."""
        kind = "log-uniform" if self.log else "uniform"
        return f"{'integer ' if self.integer else ''}{kind} {self.low:g}..{self.high:g}"


class Choices(BaseModel):
    """A list of values, each drawn with an equal share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    choices: list[Any] = Field(description="the values drawn from")

    @field_validator("choices")
    @classmethod
    def _some(cls, choices):
        if not choices:
            raise ValueError("an empty list of choices; give at least one value")
        return choices

    def value(self, unit: float) -> Any:
        """The choice at `unit` in [0, 1): each choice owns an equal share of it."""
        return self.choices[min(len(self.choices) - 1, int(unit * len(self.choices)))]

    def distinct(self) -> float:
        """How many values can be drawn: the number of choices."""
        return float(len(self.choices))

    def ends(self) -> list[Any]:
        """Every choice: each must validate where the key lives."""
        return list(self.choices)

    def label(self) -> str:
        """The choices in words: `one of relu, elu`."""
        return "one of " + ", ".join(map(str, self.choices))


Dimension = Range | Choices


class SearchSpec(BaseModel):
    """`search: {method: quasirandom, trials: 24, seed: 0, space: {KEY: RANGE, ...}}`: points
    drawn over the space, each a nuisance setting that every grid cell runs."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    method: Literal["quasirandom", "random"] = Field(
        default="quasirandom",
        description="quasirandom: scrambled Sobol' (scipy.stats.qmc); random: uniform draws",
    )
    trials: int = Field(ge=1, description="how many points; each cell runs every one")
    seed: int = Field(default=0, ge=0, description="the draw's seed: the same points everywhere")
    space: dict[str, Dimension] = Field(description="dotted key -> {low, high, log, integer}")
    # The points, once drawn: planning, expanding and recording a grid each ask for them.
    _points: list[dict[str, Any]] | None = PrivateAttr(default=None)

    @field_validator("space", mode="before")
    @classmethod
    def _dimensions(cls, space):
        """Each entry a Range or Choices by its keys (one line naming the key when wrong)."""
        if not isinstance(space, dict) or not space:
            raise ValueError(
                "expected at least one KEY: {low, high} or KEY: {choices: [...]}, such as "
                "optimizer.learning_rate: {low: 1.0e-4, high: 1, log: true}"
            )
        parsed = {}
        for key, entry in space.items():
            if isinstance(entry, (Range, Choices)):
                parsed[key] = entry
                continue
            if not isinstance(entry, dict):
                raise ValueError(
                    f"{key}: expected {{low, high}} (with log, integer) or {{choices: [...]}}, "
                    f"got {entry!r}"
                )
            kind = Choices if "choices" in entry else Range
            try:
                parsed[key] = kind.model_validate(entry)
            except ValueError as error:  # pydantic's ValidationError: its first message
                errors = getattr(error, "errors", lambda: [])()
                first = errors[0] if errors else {"loc": (), "msg": str(error)}
                where = ".".join(map(str, first["loc"]))
                message = str(first["msg"]).removeprefix("Value error, ")
                raise ValueError(f"{key}{'.' + where if where else ''}: {message}") from None
        return parsed

    @model_validator(mode="after")
    def _enough_room(self):
        """A space of few distinct points (choices, short integer ranges) cannot carry more
        trials than it holds: the extra points would repeat trials already drawn."""
        room = math.prod(dimension.distinct() for dimension in self.space.values())
        if self.trials > room:
            raise ValueError(
                f"trials: {self.trials} points, but this space holds only {room:.0f} distinct "
                f"point{'s' * (room != 1)} at the precision values are recorded with; list them "
                "in grid: (a crossing covers a small space exactly) or ask for fewer trials"
            )
        return self

    def units(self) -> list[list[float]]:
        """The points in the unit cube, `trials` × dimensions, in draw order."""
        import numpy as np

        generator = np.random.default_rng(self.seed)
        if self.method == "random":
            return generator.random((self.trials, len(self.space))).tolist()
        from scipy.stats import qmc

        # Scrambled Sobol', the first `trials` points of the next power of two (a prefix of a
        # low-discrepancy sequence is one too). Not scipy's scrambled Halton: it permutes each
        # digit on its own, so over a log range of 4 decades its base-2 coordinate repeats one
        # mantissa in every decade (18 of 24 points over 1e-4..1; Sobol': none), at the same
        # discrepancy.
        power = max(0, math.ceil(math.log2(self.trials)))
        sobol = qmc.Sobol(d=len(self.space), scramble=True, rng=generator)
        return sobol.random_base2(power)[: self.trials].tolist()

    def points(self) -> list[dict[str, Any]]:
        """The sampled settings: one {key: value} per point, in draw order."""
        if self._points is None:
            self._points = self._drawn()
        return [dict(point) for point in self._points]

    def _drawn(self) -> list[dict[str, Any]]:
        dimensions = list(self.space.items())
        return [
            {
                key: dimension.value(unit)
                for (key, dimension), unit in zip(dimensions, row, strict=True)
            }
            for row in self.units()
        ]
