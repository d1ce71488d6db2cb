"""Which settings mattered: the share of the selection metric's variance each key of a searched
grid explains (its grid keys and its sampled ones), by functional ANOVA over a random forest:
Optuna's `FanovaImportanceEvaluator` (Hutter et al. 2014), fitted on every setting the grid
tried, each at its mean over seeds.

A key some cells never read (momentum under Adam) has no value there, so it cannot enter the
fit over every setting. It is measured where it is read instead: a second fit over the settings
of the cells that read it (weight decay over AdamW's points), its share of the variance there,
marked `among: where read`, a share of a smaller whole that is not added to the others.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from mlpsuite.analysis.frame import NOT_READ, finished, pooled_source
from mlpsuite.analysis.tables import direction

# Fewer settings than this leave a forest little to split: no importance is computed.
MIN_SETTINGS = 8
# At most this many settings are fitted (a seeded sample of them beyond): fANOVA's cost grows
# with the forest's leaves, and a few hundred points already fix the shares to a few percent.
MAX_SETTINGS = 500
COLUMNS = ["key", "importance", "kind", "settings", "among"]
EVERY, WHERE_READ = "every setting", "where read"


def importance_table(
    frame: pd.DataFrame,
    keys: list[str],
    ranges: dict[str, dict[str, Any]],
    select_on: str,
    seed: str = "",
) -> pd.DataFrame:
    """One row per key: `importance` (its share of `select_on`'s variance over the settings
    tried), `kind` (sampled or grid), `settings` (how many were fitted) and `among`: "every
    setting" for the keys every cell reads (their shares sum to 1), "where read" for a key
    some cells never read (its share over the settings of the cells that read it; NaN with
    fewer than MIN_SETTINGS there). Empty with fewer than MIN_SETTINGS finished settings.
    `seed` (the grid key) fixes the forests."""
    source = finished(pooled_source(frame))
    if source.empty or select_on not in source:
        return pd.DataFrame(columns=COLUMNS)
    settings = source.groupby(keys, sort=False)[select_on].mean().dropna().reset_index()
    read = [key for key in keys if not (settings[key] == NOT_READ).any()]
    if len(settings) < MIN_SETTINGS or not read:
        return pd.DataFrame(columns=COLUMNS)
    number = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16)
    if len(settings) > MAX_SETTINGS:
        settings = settings.sample(MAX_SETTINGS, random_state=number % 2**31)
    shares = _fanova(settings[[*read, select_on]], read, ranges, select_on, number % 2**31)
    rows = [
        {
            "key": key,
            "importance": shares.get(key, 0.0),
            "kind": "sampled" if key in ranges else "grid",
            "settings": len(settings),
            "among": EVERY,
        }
        for key in read
    ]
    for key in keys:
        if key not in read:
            rows.append(_where_read(settings, key, keys, ranges, select_on, number % 2**31))
    table = pd.DataFrame(rows, columns=COLUMNS)
    first = table["among"] == EVERY  # the shares of one whole first, then those of their own
    return pd.concat(
        [
            part.sort_values("importance", ascending=False, kind="stable", na_position="last")
            for part in (table[first], table[~first])
        ],
        ignore_index=True,
    )


def _where_read(
    settings: pd.DataFrame,
    key: str,
    keys: list[str],
    ranges: dict[str, dict[str, Any]],
    select_on: str,
    seed: int,
) -> dict[str, Any]:
    """`key`'s share of `select_on`'s variance over the settings of the cells that read it,
    fitted with the other keys those cells read (NaN with fewer than MIN_SETTINGS of them)."""
    subset = settings[settings[key] != NOT_READ]
    present = [other for other in keys if not (subset[other] == NOT_READ).any()]
    share = float("nan")
    if len(subset) >= MIN_SETTINGS:
        share = _fanova(subset[[*present, select_on]], present, ranges, select_on, seed).get(
            key, 0.0
        )
    return {
        "key": key,
        "importance": share,
        "kind": "sampled" if key in ranges else "grid",
        "settings": len(subset),
        "among": WHERE_READ,
    }


def _fanova(
    settings: pd.DataFrame,
    keys: list[str],
    ranges: dict[str, dict[str, Any]],
    select_on: str,
    seed: int,
) -> dict[str, float]:
    """Optuna's fANOVA shares of `select_on` over `settings` (a key with one value: 0). A log
    range enters as log10 of its values: fANOVA integrates over its parameters' own scale,
    which for Optuna's log distributions is the linear one, where a learning rate sampled over
    1e-4..1 would spend nine tenths of its range above 0.1 (measured on 3·x + y over a
    log-uniform x: 0.55 of the variance to x, instead of the 0.9 it explains as sampled)."""
    import math

    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {}
    for key in keys:
        space = ranges.get(key.removesuffix(" (grid)"), {})
        if "low" in space and space.get("log"):
            distributions[key] = FloatDistribution(
                math.log10(float(space["low"])), math.log10(float(space["high"]))
            )
        elif "low" in space and space.get("integer"):
            distributions[key] = IntDistribution(int(space["low"]), int(space["high"]))
        elif "low" in space:
            distributions[key] = FloatDistribution(float(space["low"]), float(space["high"]))
        else:  # a grid key or a sampled choice: its values as labels
            distributions[key] = CategoricalDistribution(sorted({str(v) for v in settings[key]}))

    logged = {key for key in keys if ranges.get(key.removesuffix(" (grid)"), {}).get("log")}

    def value(key: str, raw: Any) -> Any:
        distribution = distributions[key]
        if key in logged:
            return math.log10(float(raw))
        if isinstance(distribution, IntDistribution):
            return int(float(raw))
        if isinstance(distribution, FloatDistribution):
            return float(raw)
        return str(raw)

    trials = [
        optuna.trial.create_trial(
            params={key: value(key, row[key]) for key in keys},
            distributions=distributions,
            value=float(row[select_on]),
        )
        for _, row in settings.iterrows()
    ]
    study = optuna.create_study(
        direction="minimize" if direction(select_on) == "min" else "maximize"
    )
    study.add_trials(trials)
    shares = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
    return {key: float(share) for key, share in shares.items()}
