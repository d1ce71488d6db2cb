"""Quasi-random search over ranges (`search:`): the points, their reproducibility and coverage
(against scipy's own discrepancy measure), how a searched grid expands into trials (the same
points in every cell, keys a cell never reads left out, the trial key that of the same values
listed in `grid:`), the dry run, a searched grid run and compared end to end with its figures
and importance, and the playbook's claim that a search does as well as a grid of its budget."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from scipy.stats import qmc

from mlpsuite import cli
from mlpsuite.config import CompareSpec, expand, load_config
from mlpsuite.config.search import SearchSpec

SPACE = {
    "optimizer.learning_rate": {"low": 1e-4, "high": 1.0, "log": True},
    "optimizer.momentum": {"low": 0.5, "high": 0.99},
}


def _search(**fields) -> SearchSpec:
    return SearchSpec.model_validate({"trials": 16, "space": SPACE, **fields})


@pytest.mark.check
def test_points_are_reproducible_inside_their_ranges_and_log_ranges_fill_log_space():
    points = _search().points()
    assert points == _search().points()  # the same config and seed: the same points
    assert points != _search(seed=1).points()
    rates = [p["optimizer.learning_rate"] for p in points]
    momenta = [p["optimizer.momentum"] for p in points]
    assert all(1e-4 <= r <= 1.0 for r in rates) and all(0.5 <= m <= 0.99 for m in momenta)
    # Log-uniform: each decade of the four gets its share (16 points: 4 each, give or take 1).
    decades = np.histogram(np.log10(rates), bins=4, range=(-4, 0))[0]
    assert decades.min() >= 3, decades
    # Values are recorded at 4 significant digits: what the trial key hashes.
    assert all(float(f"{r:.4g}") == r for r in rates)


@pytest.mark.check
def test_quasirandom_points_cover_the_space_more_evenly_than_random_ones():
    # scipy's centered L2 discrepancy of the unit points: lower is more uniform.
    wins = 0
    for seed in range(10):
        quasi = qmc.discrepancy(np.array(_search(trials=64, seed=seed).units()))
        plain = qmc.discrepancy(np.array(_search(trials=64, seed=seed, method="random").units()))
        wins += quasi < plain
    assert wins >= 9, wins


@pytest.mark.check
def test_integer_and_choice_dimensions_draw_every_value_and_no_more_points_than_they_hold():
    space = {
        "training.batch_size": {"low": 8, "high": 11, "integer": True},
        "model.activation": {"choices": ["relu", "tanh", "elu"]},
    }
    points = SearchSpec.model_validate({"trials": 12, "space": space}).points()
    assert {p["training.batch_size"] for p in points} == {8, 9, 10, 11}
    assert {p["model.activation"] for p in points} == {"relu", "tanh", "elu"}
    assert all(isinstance(p["training.batch_size"], int) for p in points)
    with pytest.raises(ValueError, match="this space holds only 12 distinct points"):
        SearchSpec.model_validate({"trials": 13, "space": space})


def _grid(
    tmp_path, search: dict, grid: dict | None = None, name: str = "searched", **sections
) -> str:
    import yaml

    config = {
        "name": name,
        "dataset": {"name": "iris"},
        "model": {"hidden": [8]},
        "training": {"epochs": 3, "batch_size": 16},
        "backends": ["sklearn"],
        "seeds": [0, 1],
        "grid": grid or {},
        "search": search,
        **sections,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.mark.check
def test_every_cell_runs_the_same_points_and_drops_what_it_never_reads(tmp_path):
    path = _grid(
        tmp_path,
        {"trials": 5, "seed": 3, "space": SPACE},
        grid={"optimizer.name": ["sgd", "momentum"]},
    )
    spec = load_config(path)
    trials = expand(spec, path)
    assert len(trials) == 2 * 5 * 2 and len({t.key for t in trials}) == len(trials)
    points = spec.search.points() if spec.search else []
    by_name = {
        name: [t for t in trials if t.cell["optimizer.name"] == name and t.seed == 0]
        for name in ("sgd", "momentum")
    }
    for name, cells in by_name.items():
        rates = [t.optimizer.learning_rate for t in cells]
        assert rates == [p["optimizer.learning_rate"] for p in points], name
    # SGD never reads momentum: not in its cells (nor in its key); momentum's cells carry it.
    assert all("optimizer.momentum" not in t.cell for t in by_name["sgd"])
    assert [t.cell["optimizer.momentum"] for t in by_name["momentum"]] == [
        p["optimizer.momentum"] for p in points
    ]
    # A sampled point is the trial that listing its values in grid: gives: the same key.
    point = points[2]
    listed = load_config(
        _grid(tmp_path, {"trials": 1, "space": SPACE}, {"optimizer.name": ["momentum"]}, "listed")
    )
    listed = listed.model_copy(
        update={
            "search": None,
            "grid": {"optimizer.name": ["momentum"], **{k: [v] for k, v in point.items()}},
        }
    )
    assert expand(listed, path)[0].key == by_name["momentum"][2].key
    # The optimizer itself sampled among choices: momentum is read where the point draws it.
    chosen = {"optimizer.name": {"choices": ["sgd", "momentum"]}, **SPACE}
    path = _grid(tmp_path, {"trials": 8, "space": chosen}, name="chosen")
    drawn = expand(load_config(path), path)
    assert {t.optimizer.name for t in drawn} == {"sgd", "momentum"}
    assert all(("optimizer.momentum" in t.cell) == (t.optimizer.name == "momentum") for t in drawn)


@pytest.mark.check
def test_sampled_keys_are_nuisance_by_default_and_compare_may_say_otherwise(tmp_path):
    grid = {"optimizer.name": ["momentum"], "model.activation": ["relu", "tanh"]}
    spec = load_config(_grid(tmp_path, {"trials": 4, "space": SPACE}, grid))
    assert spec.keys() == [*grid, *SPACE]
    assert spec.protocol().nuisance == tuple(SPACE)
    chosen = spec.model_copy(
        update={"compare": CompareSpec.model_validate({"nuisance": ["optimizer.learning_rate"]})}
    )
    assert chosen.protocol().nuisance == ("optimizer.learning_rate",)


@pytest.mark.check
def test_dry_run_lists_the_points_and_distinct_trials_per_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = _grid(
        tmp_path, {"trials": 6, "space": SPACE}, grid={"optimizer.name": ["sgd", "momentum"]}
    )
    assert cli.main(["run", path, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "quasirandom search: 6 points" in out, out
    assert "optimizer.learning_rate log-uniform 0.0001..1" in out
    points = load_config(path).search.points()  # pyright: ignore[reportOptionalMemberAccess]
    assert f"{points[0]['optimizer.learning_rate']:g}" in out
    assert not (tmp_path / "mlruns").exists()


def test_a_searched_grid_runs_records_its_points_and_selects_one_per_cell(tmp_path):
    from mlflow import MlflowClient

    import mlpsuite

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    path = _grid(
        tmp_path, {"trials": 4, "seed": 1, "space": SPACE}, {"optimizer.name": ["sgd", "momentum"]}
    )
    result = mlpsuite.run(path, tracking_uri=uri, jobs=1, progress=False)
    spec = load_config(path)
    points = spec.search.points() if spec.search else []
    client = MlflowClient(uri)
    listed = client.download_artifacts(result.parent_run_id, "search.csv", str(tmp_path))
    rows = Path(listed).read_text(encoding="utf-8").splitlines()
    assert rows[0] == "point,optimizer.learning_rate,optimizer.momentum" and len(rows) == 5
    assert [float(v) for v in rows[3].split(",")[1:]] == list(points[2].values())
    comparison = result.comparison
    assert comparison is not None
    assert comparison.nuisance_keys == list(SPACE) and comparison.scientific_keys == [
        "optimizer.name"
    ]
    selected = comparison.selection[comparison.selection["selected"]]
    assert sorted(selected["optimizer.name"]) == ["momentum", "sgd"]
    # Each cell's selected point is its best mean val_loss over seeds, recomputed here.
    frame = comparison.frame
    for name, chosen in selected.set_index("optimizer.name").iterrows():
        means = (
            frame[frame["optimizer.name"] == name]
            .groupby("optimizer.learning_rate")["val_loss"]
            .mean()
        )
        assert str(means.idxmin()) == str(chosen["optimizer.learning_rate"]), name
    # SGD never read momentum: its setting names the learning rate alone.
    sgd = selected[selected["optimizer.name"] == "sgd"].iloc[0]
    assert "momentum" not in sgd["setting"] and "learning_rate=" in sgd["setting"]
    # A sampled key pairs with nothing (its points differ in every key): no effects table of
    # empty rows, only the grid key's; the space is in the JSON beside the selection.
    import json

    from mlpsuite.present.report import as_json

    assert set(comparison.effects["key"]) == {"optimizer.name"}
    space = json.loads(as_json(comparison))["search_space"]
    assert {key: {**SPACE[key], "log": SPACE[key].get("log", False)} for key in SPACE} == {
        key: {k: v for k, v in dimension.items() if k != "integer"}
        for key, dimension in space.items()
    }
    # The boundary sentence speaks of ranges, not of a grid's listed values.
    from mlpsuite.present.report import edge_line

    sentence = edge_line(comparison)
    if (selected["edge"] == "").all():
        assert sentence == (
            "Every selected optimizer.learning_rate, optimizer.momentum lies inside its range, "
            "clear of its outer 10%."
        )
    else:
        assert "(widen the range)" in sentence and "grid" not in sentence


def test_a_search_over_names_is_compared_with_a_categorical_axis(tmp_path):
    """The search guide's own example draws `model.activation` from names: the grid is
    compared (no report error), and its axis plot places each name on a categorical axis."""
    import mlpsuite
    from mlpsuite.present.plots import search_axes

    space = {
        "optimizer.learning_rate": {"low": 1e-3, "high": 0.3, "log": True},
        "model.activation": {"choices": ["relu", "tanh"]},
    }
    path = _grid(tmp_path, {"trials": 4, "space": space}, name="named")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = mlpsuite.run(path, tracking_uri=uri, jobs=1, progress=False)
    comparison = result.comparison
    assert result.report_error is None and comparison is not None, result.report_error
    figure = search_axes(comparison, comparison.sampled_keys)
    panel = figure.axes[comparison.sampled_keys.index("model.activation")]
    assert [label.get_text() for label in panel.get_xticklabels()] == ["relu", "tanh"]
    assert panel.get_xlabel() == "model.activation (choices)"
    placed = np.concatenate(
        [np.asarray(points.get_offsets())[:, 0] for points in panel.collections]
    )
    assert placed.size and np.all(np.abs(placed - np.round(placed)) < 0.5)  # by each name
    assert set(np.round(placed).astype(int)) <= {0, 1}


def _adam_val_loss(data, rate: float, beta_1: float, steps: int = 30) -> float:
    """Validation MSE of linear regression on standardized `data` after `steps` full-batch
    Adam steps from zero weights (Kingma & Ba's update, written out in NumPy)."""
    mean, std = data.X_train.mean(0), data.X_train.std(0)
    X, X_val = (data.X_train - mean) / std, (data.X_val - mean) / std
    centre, scale = data.y_train.mean(), data.y_train.std()
    y, y_val = (data.y_train - centre) / scale, (data.y_val - centre) / scale
    w, m, v = np.zeros(X.shape[1]), np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for t in range(1, steps + 1):
        g = X.T @ (X @ w - y) / len(y)
        m, v = beta_1 * m + (1 - beta_1) * g, 0.999 * v + 0.001 * g * g
        w = w - rate * (m / (1 - beta_1**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-7)
    loss = float(np.mean((X_val @ w - y_val) ** 2))
    return loss if math.isfinite(loss) else math.inf


def test_quasirandom_search_does_as_well_as_a_grid_of_its_budget_more_often_than_not():
    """The playbook's claim, on our data: Adam's learning rate and beta_1 on diabetes, 9 points
    against a 3 x 3 grid, over 40 problems (a split each, and a learning-rate range of three
    decades placed where a user who does not know the best rate might place it). beta_1
    matters little here, so the grid spends its budget on 3 rates where the search tries 9.
    Two grids a user would write: through the ends of each range, and centred in its thirds."""
    from mlpsuite.data import load_dataset

    problems, wins = 40, {"ends": 0, "centred": 0}
    layouts = {"ends": np.array([0, 0.5, 1]), "centred": np.array([1, 3, 5]) / 6}
    for number in range(problems):
        data = load_dataset("diabetes", seed=number, val_size=0.3)
        low = 10 ** np.random.default_rng(number).uniform(-4, -2)
        space = {
            "optimizer.learning_rate": {"low": low, "high": 1000 * low, "log": True},
            "optimizer.beta_1": {"low": 0.5, "high": 0.99},
        }
        search = SearchSpec.model_validate({"trials": 9, "seed": number, "space": space})
        searched = min(
            _adam_val_loss(data, p["optimizer.learning_rate"], p["optimizer.beta_1"])
            for p in search.points()
        )
        for layout, at in layouts.items():
            rates, betas = low * 1000.0**at, 0.5 + 0.49 * at
            gridded = min(_adam_val_loss(data, r, b) for r in rates for b in betas)
            wins[layout] += searched <= gridded
    assert min(wins.values()) > problems / 2, wins


def _importance_of(space: dict, names: tuple[str, ...], loss, seeds=(0,), seed: str = "x"):
    """importance_table over a synthetic grid: `names` × 64 points of `space` × `seeds`, each
    trial's val_loss `loss(name, unit)` with `unit` the point's {key: unit coordinate}; a key
    whose unit is None in a cell is one that cell never reads."""
    from mlpsuite.analysis import grid_frame
    from mlpsuite.analysis.frame import NOT_READ
    from mlpsuite.analysis.importance import importance_table
    from tests.runs import mlflow_run

    def unit(key: str, value: float) -> float:
        low, high = space[key]["low"], space[key]["high"]
        if space[key].get("log"):
            return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return (value - low) / (high - low)

    points = SearchSpec.model_validate({"trials": 64, "space": space}).points()
    trials, runs = [], []
    for name in names:
        for number, point in enumerate(points):
            val_loss, read = loss(name, {key: unit(key, v) for key, v in point.items()})
            cell = {
                "optimizer.name": name,
                **{k: str(v) if k in read else NOT_READ for k, v in point.items()},
            }
            for trial_seed in seeds:
                key = f"{name}-{number}-{trial_seed}"
                trials.append({"key": key, "backend": "jax", "seed": trial_seed, "cell": cell})
                runs.append(mlflow_run(key, val_loss=val_loss, loss=1.0, test_loss=1.0))
    keys = ["optimizer.name", *space]
    frame = grid_frame({"grid_keys": keys, "trials": trials}, runs)
    return importance_table(frame, keys, space, "val_loss", seed=seed).set_index("key")


@pytest.mark.check
def test_importance_gives_each_key_its_share_of_an_additive_objective():
    # val_loss = 3·x + y in the unit coordinates of a log learning rate (x) and a dropout (y),
    # and nothing of the optimizer's name: for independent uniform x and y the functional
    # ANOVA shares are Var(3x) / (Var(3x) + Var(y)) = 9 / 10 and 1 / 10, and 0 for the name.
    space = {
        "optimizer.learning_rate": {"low": 1e-4, "high": 1.0, "log": True},
        "model.dropout": {"low": 0.0, "high": 0.5},
    }

    def loss(name, unit):
        return 3 * unit["optimizer.learning_rate"] + unit["model.dropout"], set(space)

    table = _importance_of(space, ("sgd", "adam"), loss, seeds=(0, 1), seed="synthetic")
    shares = table["importance"]
    assert shares.sum() == pytest.approx(1.0)
    assert shares["optimizer.learning_rate"] == pytest.approx(0.9, abs=0.06)
    assert shares["model.dropout"] == pytest.approx(0.1, abs=0.06)
    assert shares["optimizer.name"] < 0.02
    assert list(table["kind"]) == ["sampled", "sampled", "grid"]
    assert set(table["settings"]) == {128}


def test_a_key_some_cells_never_read_gets_its_share_where_it_is_read():
    # SGD reads the rate alone (val_loss = x); momentum reads both (val_loss = x + 3·z, z the
    # momentum in unit coordinates): over momentum's own settings z's share is 9 / 10.
    space = {
        "optimizer.learning_rate": {"low": 1e-4, "high": 1.0, "log": True},
        "optimizer.momentum": {"low": 0.5, "high": 0.99},
    }

    def loss(name, unit):
        x, z = unit["optimizer.learning_rate"], unit["optimizer.momentum"]
        if name == "momentum":
            return x + 3 * z, set(space)
        return x, {"optimizer.learning_rate"}

    table = _importance_of(space, ("sgd", "momentum"), loss, seed="where")
    momentum = table.loc["optimizer.momentum"]
    assert momentum["among"] == "where read" and momentum["settings"] == 64
    assert momentum["importance"] == pytest.approx(0.9, abs=0.06)
    every = table[table["among"] == "every setting"]
    assert sorted(every.index) == ["optimizer.learning_rate", "optimizer.name"]
    assert every["importance"].sum() == pytest.approx(1.0)


def test_a_searched_grid_draws_one_axis_plot_per_sampled_key_and_its_importance(tmp_path):
    import mlpsuite

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Momentum reads both keys: every point is a setting of the one cell.
    space = {"trials": 8, "seed": 2, "space": SPACE}
    path = _grid(tmp_path, space, name="axes", optimizer={"name": "momentum"})
    comparison = mlpsuite.run(path, tracking_uri=uri, jobs=1, progress=False).comparison
    assert comparison is not None
    figures = comparison.figures()
    panels = figures["isolation"].axes
    assert [axes.get_xlabel() for axes in panels] == [
        "optimizer.learning_rate (log range)",
        "optimizer.momentum (range)",
    ]
    assert panels[0].get_xscale() == "log" and panels[1].get_xscale() == "linear"
    # The starred point is the selected setting, at its mean over seeds (read back off the plot).
    selected = comparison.selection[comparison.selection["selected"]].iloc[0]
    offsets = [np.asarray(c.get_offsets()) for c in panels[0].collections]
    (x, y) = [points for points in offsets if len(points) == 1][-1][0]
    assert x == pytest.approx(float(selected["optimizer.learning_rate"]))
    assert y == pytest.approx(selected["val_loss_mean"])
    bars = [bar for bar in figures["importance"].axes[0].patches if isinstance(bar, Rectangle)]
    assert sorted(round(bar.get_width(), 6) for bar in bars) == sorted(
        round(v, 6) for v in comparison.importance["importance"].dropna()
    )
    # The notebook's view shows the axis plots beside the curves.
    from mlpsuite.present.notebook import comparison_html

    page = comparison_html(comparison)
    assert page.count("data:image/png;base64,") == 2 and 'alt="axis plots"' in page
    # The best points' curves: the three lowest mean val_loss, best first, each the mean of its
    # seeds' val_loss histories read from MLflow here.
    from mlflow import MlflowClient

    (axes,) = figures["best_points"].axes
    best = comparison.selection.sort_values("val_loss_mean").head(3)
    assert [line.get_label() for line in axes.get_lines()] == [
        ("★ " if row["selected"] else "") + row["setting"] for _, row in best.iterrows()
    ]
    top = best.iloc[0]
    frame = comparison.frame
    runs = frame[frame["optimizer.learning_rate"] == top["optimizer.learning_rate"]]["run_id"]
    client = MlflowClient(uri)
    histories = [
        [m.value for m in sorted(client.get_metric_history(run, "val_loss"), key=lambda m: m.step)]
        for run in runs
    ]
    np.testing.assert_allclose(
        np.asarray(axes.get_lines()[0].get_ydata(), dtype=float), np.mean(histories, axis=0)
    )


@pytest.mark.check
def test_the_ranking_stars_the_value_on_an_edge_not_the_setting():
    from mlpsuite.present.terminal import _starred

    edge = "learning_rate: top 10% of its log range 0.0001..1"
    tuned = ["optimizer.learning_rate", "optimizer.momentum"]
    assert _starred("learning_rate=0.4541, momentum=0.92", edge, tuned) == (
        "learning_rate=0.4541*, momentum=0.92"
    )
    both = edge + "; momentum: bottom 10% of its range 0.5..0.99"
    assert _starred("learning_rate=0.4541, momentum=0.51", both, tuned) == (
        "learning_rate=0.4541*, momentum=0.51*"
    )
    assert _starred("0.4541", edge, tuned[:1]) == "0.4541*"
    assert _starred("learning_rate=0.01", "", tuned) == "learning_rate=0.01"
