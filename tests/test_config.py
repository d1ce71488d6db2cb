"""Grid configs: expansion, trial keys, and one-line errors for bad input (exit 2, no store)."""

import textwrap
from pathlib import Path

import pytest
import yaml

from mlpsuite import cli
from mlpsuite.config import ConfigError, GridSpec, expand, load_config, unique_trials
from mlpsuite.config.search import Range
from mlpsuite.registry import ACTIVATION_PARAMS
from tests.grids import write_grid

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"


def test_quickstart_expands_to_the_full_cross_product():
    spec = load_config(QUICKSTART)
    trials = expand(spec)
    n_cells = 1
    for values in spec.grid.values():
        n_cells *= len(values)
    assert len(trials) == len(spec.backends) * len(spec.seeds) * n_cells == 27
    assert len({t.key for t in trials}) == len(trials)
    cells = {tuple(sorted(t.cell.items())) for t in trials}
    assert ("model.activation", "elu") in {item for cell in cells for item in cell}


def test_keys_are_stable_and_follow_what_changes_results(tmp_path):
    base = expand(load_config(write_grid(tmp_path, "a")))
    again = expand(load_config(write_grid(tmp_path, "a")))
    assert [t.key for t in base] == [t.key for t in again]
    other_rate = expand(load_config(write_grid(tmp_path, "b", optimizer={"learning_rate": 0.01})))
    assert {t.key for t in base}.isdisjoint({t.key for t in other_rate})
    other_limit = expand(load_config(write_grid(tmp_path, "c", training={"max_seconds": 5})))
    assert [t.key for t in base] == [t.key for t in other_limit]  # a time limit is not a result


def test_trial_params_are_dotted_strings():
    trial = expand(load_config(QUICKSTART))[0]
    params = trial.flat_params()
    assert params["model.activation"] == "relu" and params["backend"] == "tensorflow"
    assert params["optimizer.learning_rate"] == "0.003" and params["model.hidden"] == "[32]"
    assert params["loss"] == "sparse_categorical_crossentropy"
    assert all(isinstance(v, str) for v in params.values())


def test_activation_mapping_and_spelling_variants(tmp_path):
    path = write_grid(
        tmp_path,
        "acts",
        grid={
            "model.activation": [
                "elu",
                "ELU",
                {"name": "leaky-relu", "alpha": 0.2},
                {"name": "leaky_relu", "alpha": 0.3},
            ]
        },
    )
    trials = expand(load_config(path, backends="jax"))
    assert len(unique_trials(trials)) == 3  # "ELU" is "elu"
    leaky = [t for t in trials if t.model.activation.name == "leaky_relu"]
    assert [t.model.activation.params for t in leaky] == [{"alpha": 0.2}, {"alpha": 0.3}]
    assert leaky[0].flat_params()["model.activation.alpha"] == "0.2"


def test_regression_dataset_defaults_to_mse(tmp_path):
    trials = expand(
        load_config(write_grid(tmp_path, "r", dataset={"name": "diabetes"}), backends="tf")
    )
    assert {t.loss for t in trials} == {"mse"} and {t.backend for t in trials} == {"tensorflow"}


def test_registry_names_match_the_layers_constructors():
    import inspect

    from mlpsuite.layers import ACTIVATIONS  # keras (numpy backend) in this process: fine here

    for name, cls in ACTIVATIONS.items():
        own = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
        assert own == list(ACTIVATION_PARAMS[name]), name


GRID_2 = (
    "name: x\ndataset: {name: iris}\n"
    "grid: {optimizer.name: [sgd, adam], optimizer.learning_rate: [0.1, 0.01]}\n"
)
# A grid over optimizers whose `search:` section each case completes with its `space:`.
SEARCHED = (
    "name: x\ndataset: {name: iris}\ngrid: {optimizer.name: [sgd, adam]}\nsearch:\n  trials: 8\n"
)
BAD_CONFIGS = {
    "not UTF-8": (b"name: x\xe9\ndataset: {name: iris}\n", "not UTF-8 text (byte 7)"),
    "unknown top key": (
        "name: x\ndataset: {name: iris}\nmodle: {}\n",
        "modle: unknown key; did you mean 'model'? allowed: name, dataset, model",
    ),
    "unknown model key": (
        "name: x\ndataset: {name: iris}\nmodel: {layers: 3}\n",
        "model.layers: unknown key; allowed: hidden, activation",
    ),
    "wrong type": (
        "name: x\ndataset: {name: iris}\ntraining: {epochs: many}\n",
        "training.epochs: Input should be a valid integer",
    ),
    "negative epochs": (
        "name: x\ndataset: {name: iris}\ntraining: {epochs: -3}\n",
        "training.epochs: Input should be greater than or equal to 1",
    ),
    "zero batch size": (
        "name: x\ndataset: {name: iris}\ntraining: {batch_size: 0}\n",
        "training.batch_size",
    ),
    "unknown activation": (
        "name: x\ndataset: {name: iris}\nmodel: {activation: relu7}\n",
        "model.activation: Unknown activation 'relu7'; did you mean 'relu'? valid names: elu, gelu",
    ),
    "bad activation param": (
        "name: x\ndataset: {name: iris}\nmodel: {activation: {name: elu, beta: 2}}\n",
        "model.activation: elu takes alpha; got ['beta']",
    ),
    "unknown optimizer": (
        "name: x\ndataset: {name: iris}\noptimizer: {name: lbfgs}\n",
        "optimizer.name: Input should be 'sgd', 'momentum'",
    ),
    "negative learning rate": (
        "name: x\ndataset: {name: iris}\noptimizer: {learning_rate: -1}\n",
        "optimizer.learning_rate: Input should be greater than 0",
    ),
    "unknown schedule": (
        "name: x\ndataset: {name: iris}\noptimizer: {schedule: {name: step}}\n",
        "optimizer.schedule.name: Input should be 'cosine' or 'exponential'",
    ),
    "unknown backend": (
        "name: x\ndataset: {name: iris}\nbackends: [tf, mxnet]\n",
        "backends: unknown backend 'mxnet'; allowed: tensorflow (tf), torch (pytorch), jax, "
        "sklearn (scikit-learn)",
    ),
    "unknown dataset": (
        "name: x\ndataset: {name: mnist}\n",
        "dataset: Unknown dataset 'mnist'; valid names: digits, iris",
    ),
    "missing data file": (
        "name: x\ndataset: {name: data/none.csv}\n",
        "/data/none.csv (paths are relative to the working directory, ",
    ),
    "bad dataset option": (
        "name: x\ndataset: {name: moons, options: {radius: 1}}\n",
        "dataset: moons: unknown options ['radius']",
    ),
    "missing dataset": ("name: x\n", "dataset: required key is missing"),
    "missing name": ("dataset: {name: iris}\n", "name: required key is missing"),
    "unknown scaler": (
        "name: x\ndataset: {name: iris}\nmodel: {scaler: zscore}\n",
        "model.scaler: Unknown scaler 'zscore'; valid names: minmax, none, robust, standard",
    ),
    "unknown initializer": (
        "name: x\ndataset: {name: iris}\nmodel: {initializer: orthogonal}\n",
        "model.initializer: Unknown initializer 'orthogonal'",
    ),
    "dropout too large": (
        "name: x\ndataset: {name: iris}\nmodel: {dropout: 1.5}\n",
        "model.dropout: Input should be less than 1",
    ),
    "empty grid values": (
        "name: x\ndataset: {name: iris}\ngrid: {model.activation: []}\n",
        "grid: grid key 'model.activation' has no values",
    ),
    "grid key that does not exist": (
        "name: x\ndataset: {name: iris}\ngrid: {model.width: [1, 2]}\n",
        "grid.model.width: no such key; allowed: model.hidden, model.activation",
    ),
    "grid key outside sections": (
        "name: x\ndataset: {name: iris}\ngrid: {seeds: [1, 2]}\n",
        "grid: grid key 'seeds' must start with one of dataset, model",
    ),
    "bad grid value": (
        "name: x\ndataset: {name: iris}\ngrid: {model.activation: [relu, swishy]}\n",
        "model.activation: Unknown activation 'swishy'",
    ),
    "bad grid value type": (
        "name: x\ndataset: {name: iris}\ngrid: {training.epochs: [5, -1]}\n",
        "training.epochs: Input should be greater than or equal to 1",
    ),
    "YAML syntax error": ("name: x\ndataset: {name: iris\n", "YAML syntax error (line"),
    "not a mapping": ("- just\n- a list\n", "expected a mapping with keys name, dataset"),
    "unknown loss": (
        "name: x\ndataset: {name: iris}\nloss: hinge\n",
        "loss: Input should be 'auto', 'sparse_categorical_crossentropy'",
    ),
    "fractions too large": (
        "name: x\ndataset: {name: iris, test_size: 0.6, val_size: 0.5}\n",
        "dataset: test_size + val_size must be < 1",
    ),
    "early stopping without validation": (
        "name: x\ndataset: {name: iris, val_size: 0}\ntraining: {early_stopping: {patience: 2}}\n",
        "(top level): training.early_stopping monitors val_loss, but dataset.val_size is 0",
    ),
    "empty seeds": ("name: x\ndataset: {name: iris}\nseeds: []\n", "seeds: no seeds given"),
    # Settings mean what they say: no last-key-wins, no coercion, no NaN, seeds NumPy takes.
    "duplicate key": (
        "name: x\ndataset: {name: iris}\nmodel:\n  activation: relu\n  activation: tanh\n",
        "(line 5, column 3): duplicate key 'activation'",
    ),
    "duplicate grid key": (
        "name: x\ndataset: {name: iris}\ngrid:\n  model.activation: [relu]\n"
        "  model.activation: [elu]\n",
        "duplicate key 'model.activation'",
    ),
    "string for a boolean": (
        "name: x\ndataset: {name: iris}\nmodel: {activation: {name: gelu, approximate: 'false'}}\n",
        "model.activation: gelu.approximate must be true or false, got 'false'",
    ),
    "boolean for an integer": (
        "name: x\ndataset: {name: iris}\ntraining: {batch_size: true}\n",
        "training.batch_size: Input should be a valid integer, got True",
    ),
    "float for an integer": (
        "name: x\ndataset: {name: iris}\ntraining: {epochs: 5.0}\n",
        "training.epochs: Input should be a valid integer, got 5.0",
    ),
    "boolean hidden units": (
        "name: x\ndataset: {name: iris}\nmodel: {hidden: [8, true]}\n",
        "model.hidden.1: Input should be a valid integer, got True",
    ),
    "string for a float": (
        "name: x\ndataset: {name: iris}\noptimizer: {learning_rate: '0.1'}\n",
        "optimizer.learning_rate: Input should be a valid number, got '0.1'",
    ),
    "NaN learning rate": (
        "name: x\ndataset: {name: iris}\noptimizer: {learning_rate: .nan}\n",
        "optimizer.learning_rate: Input should be a finite number",
    ),
    "infinite time limit": (
        "name: x\ndataset: {name: iris}\ntraining: {max_seconds: .inf}\n",
        "training.max_seconds: Input should be a finite number",
    ),
    "NaN activation parameter": (
        "name: x\ndataset: {name: iris}\nmodel: {activation: {name: elu, alpha: .nan}}\n",
        "elu.alpha must be a finite number, got nan",
    ),
    "negative seed": (
        "name: x\ndataset: {name: iris}\nseeds: [0, -1]\n",
        "seeds.1: Input should be greater than or equal to 0",
    ),
    "seed too large": (
        "name: x\ndataset: {name: iris}\nseeds: [4294967296]\n",
        "seeds.0: Input should be less than or equal to 4294967295",
    ),
    "grid over an ignored setting": (
        "name: x\ndataset: {name: iris}\noptimizer: {name: adam}\n"
        "grid: {optimizer.momentum: [0.5, 0.9]}\n",
        "grid.optimizer.momentum: every cell ignores this setting (optimizer adam has no momentum; "
        "used by: momentum, nesterov)",
    ),
    "grid over a schedule setting it ignores": (
        "name: x\ndataset: {name: iris}\noptimizer: {schedule: {name: cosine}}\n"
        "grid: {optimizer.schedule.decay_rate: [0.1, 0.5]}\n",
        "a cosine schedule ignores decay_rate; used by: exponential",
    ),
    "target on a built-in dataset": (
        "name: x\ndataset: {name: iris, target: species}\n",
        "dataset: iris: target= applies only to .csv and .parquet files",
    ),
    "task contradicting a built-in": (
        "name: x\ndataset: {name: iris, task: regression}\n",
        "iris is a classification dataset; task must be auto or classification",
    ),
    "options on a bundled dataset": (
        "name: x\ndataset: {name: iris, options: {n_samples: 10}}\n",
        "dataset: iris: takes no options",
    ),
    "model too large for memory": (
        "name: x\ndataset: {name: iris}\nmodel: {hidden: [1000000000]}\n",
        "model.hidden, training.batch_size: [1000000000] has 8,000,000,003 parameters and at batch "
        "size 64 needs about",
    ),
    "experiment name too long": (
        "name: " + "x" * 201 + "\ndataset: {name: iris}\n",
        "name: String should have at most 200 characters",
    ),
    "boolean generator option": (
        "name: x\ndataset: {name: moons, options: {n_samples: true}}\n",
        "dataset: moons: option n_samples must be an integer, got True",
    ),
    "generator too large": (
        "name: x\ndataset: {name: blobs, options: {n_samples: 1000000000}}\n",
        "dataset: blobs: option n_samples must be at most 10,000,000",
    ),
    "blank experiment name": ("name: '  '\ndataset: {name: iris}\n", "name: must not be blank"),
    "experiment name leaving the store": (
        "name: ../../escape\ndataset: {name: iris}\n",
        "name: '../../escape' would leave the store's artifact folder",
    ),
    "experiment name with a backslash": (
        "name: 'a\\\\b'\ndataset: {name: iris}\n",
        "would leave the store's artifact folder",
    ),
    "negative split seed": (
        "name: x\ndataset: {name: iris, seed: -2}\n",
        "dataset.seed: Input should be greater than or equal to 0",
    ),
    # The comparison's protocol, checked against the grid before any store exists.
    "nuisance that is not a grid key": (
        GRID_2 + "compare: {nuisance: [optimizer.lr]}\n",
        "compare.nuisance: 'optimizer.lr' is not a grid key; allowed: optimizer.name, "
        "optimizer.learning_rate",
    ),
    "nuisance that is the only grid key": (
        "name: x\ndataset: {name: iris}\ngrid: {optimizer.learning_rate: [0.1, 0.01]}\n"
        "compare: {nuisance: [optimizer.learning_rate]}\n",
        "compare.nuisance: optimizer.learning_rate is the only grid key; at least one must stay "
        "scientific",
    ),
    "every grid key nuisance": (
        GRID_2 + "compare: {nuisance: [optimizer.name, optimizer.learning_rate]}\n",
        "is every grid key; at least one must stay scientific (compared), allowed: a subset of",
    ),
    "select_on without nuisance": (
        GRID_2 + "compare: {select_on: val_accuracy}\n",
        "compare.select_on: selects a nuisance setting, but no nuisance key is given",
    ),
    "select_on the runs do not record": (
        GRID_2 + "compare: {nuisance: [optimizer.learning_rate], select_on: val_r2}\n",
        "compare.select_on: val_r2 is not recorded by this grid's runs; allowed: val_loss, "
        "best_val_loss",
    ),
    "select_on without a validation split": (
        "name: x\ndataset: {name: iris, val_size: 0}\n"
        + GRID_2.split("\n", 2)[2]
        + "compare: {nuisance: [optimizer.learning_rate]}\n",
        "compare.select_on: val_loss is not recorded by this grid's runs; allowed: loss, test_loss",
    ),
    "unknown comparison metric": (
        GRID_2 + "compare: {metric: f1}\n",
        "compare.metric: unknown metric 'f1'; allowed: val_loss",
    ),
    "target on a curve a regression lacks": (
        "name: x\ndataset: {name: diabetes}\ncompare: {target: {val_accuracy: 0.9}}\n",
        "compare.target: val_accuracy is not an epoch curve of this grid's runs; allowed: loss, "
        "val_loss",
    ),
    "two targets": (
        GRID_2 + "compare: {target: {val_loss: 0.3, loss: 0.2}}\n",
        "compare.target: expected one metric and its value",
    ),
    "unknown compare key": (
        GRID_2 + "compare: {nuisanse: [optimizer.name]}\n",
        "compare.nuisanse: unknown key; did you mean 'nuisance'? allowed: nuisance, select_on, "
        "metric, interval, target",
    ),
    "unknown interval": (
        GRID_2 + "compare: {interval: percentile}\n",
        "compare.interval: Input should be 't' or 'bootstrap'",
    ),
    "select_on the test split": (
        GRID_2 + "compare: {nuisance: [optimizer.learning_rate], select_on: test_loss}\n",
        "compare.select_on: test_loss is on the test split, where the selected cell is reported",
    ),
    "target measure without a target": (
        GRID_2 + "compare: {metric: epochs_to_target}\n",
        "compare.metric: epochs_to_target needs a target (compare.target",
    ),
    "search range upside down": (
        SEARCHED + "  space: {optimizer.learning_rate: {low: 1, high: 0.1}}\n",
        "search.space: optimizer.learning_rate: low (1) must be below high (0.1)",
    ),
    "search log range touching 0": (
        SEARCHED + "  space: {optimizer.learning_rate: {low: 0, high: 1, log: true}}\n",
        "search.space: optimizer.learning_rate: a log range must stay above 0",
    ),
    "search key also in grid": (
        "name: x\ndataset: {name: iris}\ngrid: {optimizer.learning_rate: [0.1, 0.01]}\n"
        "search: {trials: 8, space: {optimizer.learning_rate: {low: 0.001, high: 1}}}\n",
        "search.space.optimizer.learning_rate: also a grid: key; a key is either listed (grid:) "
        "or sampled",
    ),
    "search key no section has": (
        SEARCHED + "  space: {optimizer.lr: {low: 0.1, high: 1}}\n",
        "search.space.optimizer.lr: no such key; allowed: optimizer.name, optimizer.learning_rate",
    ),
    "search key misspelt": (
        SEARCHED + "  space: {optimizer.learnin_rate: {low: 0.1, high: 1}}\n",
        "search.space.optimizer.learnin_rate: no such key; did you mean "
        "'optimizer.learning_rate'? allowed: optimizer.name",
    ),
    "search key no optimizer reads": (
        SEARCHED + "  space: {optimizer.momentum: {low: 0.5, high: 0.99}}\n",
        "search.space.optimizer.momentum: no optimizer of this grid reads it (optimizer sgd has "
        "no momentum; used by: momentum, nesterov)",
    ),
    "search without trials": (
        "name: x\ndataset: {name: iris}\nsearch: {trials: 0, space: {model.dropout: {low: 0, "
        "high: 0.5}}}\n",
        "search.trials: Input should be greater than or equal to 1, got 0",
    ),
    "search past the points its space holds": (
        SEARCHED.replace("trials: 8", "trials: 30")
        + "  space: {model.activation: {choices: [relu, tanh]}, training.batch_size: {low: 8, "
        "high: 10, integer: true}}\n",
        "search: trials: 30 points, but this space holds only 6 distinct points",
    ),
    "search with no choices": (
        SEARCHED + "  space: {model.activation: {choices: []}}\n",
        "search.space: model.activation.choices: an empty list of choices",
    ),
    "search range past a field's bound": (
        SEARCHED + "  space: {model.dropout: {low: 0, high: 3}}\n",
        "model.dropout: Input should be less than 1, got 3.0 (from search.space.model.dropout "
        "value 3.0)",
    ),
    "accuracy target above 1": (
        GRID_2 + "compare: {target: {val_accuracy: 2}}\n",
        "compare.target: target val_accuracy must be an accuracy in (0, 1], got 2",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_exit_2_and_nothing_written(case, tmp_path, monkeypatch, capsys):
    text, expected = BAD_CONFIGS[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "bad.yaml"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text, encoding="utf-8")
    code = cli.main(["run", "bad.yaml"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mlpsuite: error: bad.yaml: "), err
    assert expected in err, err
    assert not (tmp_path / "mlruns").exists()


def test_one_nuisance_key_may_be_written_without_a_list(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(
        GRID_2 + "compare: {nuisance: optimizer.learning_rate, target: {val_accuracy: 0.9}}\n"
    )
    compare = load_config(path).compare
    assert compare.nuisance == ("optimizer.learning_rate",) and compare.target_pair() == (
        "val_accuracy",
        0.9,
    )


def test_missing_config_file_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "nope.yaml"]) == 2
    assert capsys.readouterr().err == "mlpsuite: error: nope.yaml: file not found\n"


def test_backends_flag_overrides_and_is_validated(tmp_path, capsys):
    path = write_grid(tmp_path, "flags")
    assert [t.backend for t in expand(load_config(path, backends="jax,tf"))] == [
        "jax",
        "tensorflow",
    ]
    with pytest.raises(ConfigError, match="unknown backend 'caffe'"):
        load_config(path, backends="caffe")


def test_dry_run_prints_the_trial_table_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert cli.main(["run", str(QUICKSTART), "--dry-run", "--backends", "torch"]) == 0
    out = capsys.readouterr().out
    assert "9 trials" in out and out.count("torch") == 9
    assert not (tmp_path / "mlruns").exists()


def test_help_of_every_command_is_complete(capsys):
    for command in (["--help"], ["run", "--help"], ["rerun", "--help"], ["ui", "--help"]):
        with pytest.raises(SystemExit) as exited:
            cli.main(command)
        assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--backends",
        "--jobs",
        "--tracking-uri",
        "--dry-run",
        "--force",
        "--strict",
        "--port",
        "RUN_ID",
    ):
        assert flag.lower() in text.lower(), flag


def test_yaml_is_read_with_safe_load(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: !!python/object/apply:os.system ["echo pwned"]
        dataset: {name: iris}
    """)
    )
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(path)


@pytest.mark.parametrize("path", sorted((QUICKSTART.parent).glob("*.yaml")), ids=lambda p: p.name)
def test_every_ready_experiment_is_valid(path):
    trials = expand(load_config(path))
    assert trials and len({t.key for t in trials}) == len(trials)


def test_grid_over_datasets_and_generator_options(tmp_path):
    csv = tmp_path / "points.csv"
    csv.write_text("a,b,target\n" + "\n".join(f"{i},{i % 3},{i % 2}" for i in range(40)))
    path = write_grid(tmp_path, "data", grid={"dataset.name": ["iris", str(csv)]})
    trials = expand(load_config(path, backends="jax"))
    assert [t.data_sha256 is None for t in trials] == [
        True,
        False,
    ]  # a file's contents are in its key
    noisy = write_grid(
        tmp_path, "noisy", dataset={"name": "moons"}, grid={"dataset.options.noise": [0.1, 0.3]}
    )
    assert [t.dataset.options for t in expand(load_config(noisy, backends="jax"))] == [
        {"noise": 0.1},
        {"noise": 0.3},
    ]
    bad = write_grid(
        tmp_path, "bad", dataset={"name": "moons"}, grid={"dataset.options.radius": [1]}
    )
    with pytest.raises(ConfigError, match=r"unknown options \['radius'\]"):
        load_config(bad)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("http://127.0.0.1:9", "no MLflow server answers"),
        ("foo://bar", "tracking URI foo://bar: "),
    ],
)
def test_unusable_tracking_uri_is_one_line_exit_2(uri, message, capsys):
    assert cli.main(["run", str(QUICKSTART), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def _write_data(directory: Path, name: str) -> str:
    """A malformed data file of each kind; returns its file name."""
    import numpy as np

    rows = "\n".join(f"{i % 7}.5,{i % 3},{i % 2}" for i in range(20))
    files = {
        "no_target.csv": "x1,x2,label\n" + rows,
        "string_features.csv": "x1,colour,target\n"
        + "\n".join(f"{i}.0,red,{i % 2}" for i in range(20)),
        "nan_features.csv": "x1,x2,target\n1.0,,0\n" + rows,
        "one_class.csv": "x1,x2,target\n" + "\n".join(f"{i}.0,{i}.5,1" for i in range(20)),
        "few_rows.csv": "x1,x2,target\n1.0,2.0,0\n2.0,3.0,1\n",
        "missing_target.csv": "x1,x2,target\n1.0,2.0,\n" + rows,
        "corrupt.npz": b"this is not a zip archive",
        "corrupt.parquet": b"PAR1 not really parquet",
        "target_only.csv": "target\n" + "\n".join(str(i % 2) for i in range(20)),
        "header_only.csv": "x1,x2,target\n",
        "text_in_numbers.csv": "x1,x2,target\n"
        + "\n".join(f"{i}.0,{'seven' if i == 3 else i},{i % 2}" for i in range(20)),
        "whole-number float target": "x1,target\n"
        + "\n".join(f"{i}.5,{float(i % 2)}" for i in range(20)),
        "many integer labels": "x1,target\n" + "\n".join(f"{i}.5,{i}" for i in range(60)),
        "mse on classes": "x1,target\n" + "\n".join(f"{i}.5,{i % 2}" for i in range(20)),
        "class loss on a quantity": "x1,target\n" + "\n".join(f"{i}.5,{i % 2}" for i in range(20)),
    }
    file_name = (
        name if name.endswith((".csv", ".npz", ".parquet")) else name.replace(" ", "_") + ".csv"
    )
    if name == "no_arrays.npz":
        np.savez(directory / name, A=np.zeros((4, 2)))
    else:
        content = files[name]
        target = directory / file_name
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    return file_name


BAD_DATA = {
    "no_target.csv": (
        "",
        "dataset: no_target.csv: no target column 'target'; pass target= "
        "one of ['x1', 'x2', 'label']",
    ),
    "string_features.csv": ("", "non-numeric feature columns ['colour']"),
    "nan_features.csv": (
        "",
        "NaN or infinite feature values in columns ['x2'], the first in data row 1",
    ),
    "one_class.csv": ("", "classification needs at least 2 classes, got 1"),
    "few_rows.csv": ("", "rows are too few"),
    "missing_target.csv": ("", "1 missing target values"),
    "corrupt.npz": ("", "dataset: corrupt.npz: cannot read"),
    "corrupt.parquet": ("", "dataset: corrupt.parquet: cannot read"),
    "no_arrays.npz": ("", "missing arrays ['X', 'y']"),
    "named target absent": ("target: price", "no target column 'price'"),
    "target_only.csv": ("", "target_only.csv: no feature columns besides the target"),
    "header_only.csv": ("", "header_only.csv: no data rows (columns ['x1', 'x2', 'target'])"),
    "text_in_numbers.csv": (
        "",
        "non-numeric feature columns ['x2'], the first text in column 'x2' at data row 4: 'seven'",
    ),
    "whole-number float target": (
        "",
        "the float target holds only whole numbers (2 distinct values): classes or "
        "a quantity? set dataset.task to classification or regression",
    ),
    "many integer labels": ("", "the integer target has 60 distinct values"),
    "mse on classes": ("task: classification", "loss: mse needs real-valued targets"),
    "class loss on a quantity": (
        "task: regression",
        "loss: sparse_categorical_crossentropy needs class labels",
    ),
}


_FILE_CASES = {
    "target_only.csv",
    "header_only.csv",
    "text_in_numbers.csv",
    "no_target.csv",
    "string_features.csv",
    "nan_features.csv",
    "one_class.csv",
    "few_rows.csv",
    "missing_target.csv",
    "corrupt.npz",
    "corrupt.parquet",
    "no_arrays.npz",
    "whole-number float target",
    "many integer labels",
    "mse on classes",
    "class loss on a quantity",
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_file_is_one_line_exit_2_before_any_store(
    case, dry_run, tmp_path, monkeypatch, capsys
):
    extra, expected = BAD_DATA[case]
    name = _write_data(tmp_path, case if case in _FILE_CASES else "no_target.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    dataset = f"{{name: '{name}'" + (f", {extra}" if extra else "") + "}"
    loss = {
        "mse on classes": "mse",
        "class loss on a quantity": "sparse_categorical_crossentropy",
    }.get(case, "auto")
    (tmp_path / "bad.yaml").write_text(
        f"name: x\ndataset: {dataset}\nloss: {loss}\nbackends: [torch]\n", encoding="utf-8"
    )
    code = cli.main(["run", "bad.yaml", *(["--dry-run"] if dry_run else [])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("mlpsuite: error: bad.yaml: "), err
    assert expected in err, err
    assert not (tmp_path / "mlruns").exists()


def test_bad_generator_options_in_a_grid_value_fail_before_any_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        "name: x\ndataset: {name: spirals}\ngrid: {dataset.options.n_samples: [200, -5]}\n",
        encoding="utf-8",
    )
    assert cli.main(["run", "bad.yaml", "--tracking-uri", f"sqlite:///{tmp_path}/s/m.db"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "dataset: spirals: bad options" in err and "'n_samples': -5" in err
    ), err
    assert not (tmp_path / "s").exists()


def test_settings_the_optimizer_ignores_stay_out_of_the_key(tmp_path):
    adam = expand(
        load_config(write_grid(tmp_path, "a", optimizer={"name": "adam", "momentum": 0.5}))
    )
    same = expand(
        load_config(write_grid(tmp_path, "b", optimizer={"name": "adam", "momentum": 0.9}))
    )
    assert [t.key for t in adam] == [t.key for t in same]
    with_momentum = expand(
        load_config(write_grid(tmp_path, "c", optimizer={"name": "momentum", "momentum": 0.5}))
    )
    other = expand(
        load_config(write_grid(tmp_path, "d", optimizer={"name": "momentum", "momentum": 0.9}))
    )
    assert {t.key for t in with_momentum}.isdisjoint({t.key for t in other})
    # A grid where the setting matters for some cells is fine; the cells that ignore it collapse.
    path = write_grid(
        tmp_path,
        "e",
        backends=["jax"],
        grid={"optimizer.name": ["adam", "momentum"], "optimizer.momentum": [0.5, 0.9]},
    )
    trials = unique_trials(expand(load_config(path)))
    assert sorted(t.optimizer.name for t in trials) == ["adam", "momentum", "momentum"]


def test_beta_1_is_adams_and_keeps_the_keys_of_trials_run_before_it_existed(tmp_path):
    def key(**optimizer):
        return expand(load_config(write_grid(tmp_path, "b", optimizer=optimizer)))[0].key

    # Keys of Adam, AdamW and SGD trials as they were computed before beta_1 was a setting
    # (at commit f1d5d81): its default, Keras' 0.9, must not change them.
    assert key(name="adam", beta_1=0.9) == key(name="adam")
    assert key(name="adam", beta_1=0.8) != key(name="adam")
    assert key(name="sgd", beta_1=0.5) == key(name="sgd")  # SGD never reads it
    grid = GridSpec.model_validate({"name": "k", "dataset": {"name": "iris"}, "backends": ["jax"]})
    assert expand(grid)[0].key == "c9f7bc9620d61e96"
    # and it reaches Keras' optimizer (the main process's Keras runs the numpy backend).
    from mlpsuite.config.schema import OptimizerSpec
    from mlpsuite.trial.training import make_optimizer

    adamw = make_optimizer(OptimizerSpec(name="adamw", beta_1=0.7), 10, 2)
    assert adamw.beta_1 == pytest.approx(0.7)


def test_one_data_file_spelled_three_ways_is_one_trial(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text(
        "a,b,target\n" + "\n".join(f"{i}.0,{i % 5}.5,{i % 2}" for i in range(40))
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    keys = []
    for spelling in ("../data/x.csv", "./../data/x.csv", str(data / "x.csv")):
        trials = expand(
            load_config(write_grid(work, "p", dataset={"name": spelling}, backends=["jax"]))
        )
        keys.append(trials[0].key)
        assert trials[0].dataset.name == spelling  # the logged config keeps what the user wrote
        assert trials[0].data_path == str((data / "x.csv").resolve())
    assert len(set(keys)) == 1


def test_training_memory_estimate_counts_every_weight():
    from mlpsuite.grid_checks import training_bytes

    parameters, needed = training_bytes((64, 32), inputs=10, outputs=3, batch_size=16)
    assert parameters == (10 + 1) * 64 + (64 + 1) * 32 + (32 + 1) * 3
    assert needed >= 4 * 5 * parameters  # weights, gradients, two optimizer slots, a copy


# Every problem of a file at once, one line each, with the close match where a name looks mistyped.
TWO_MISTAKES = "name: x\ndataset: {name: iris}\nmodel: {activation: relux}\ntrainig: {epochs: 2}\n"


def test_two_mistakes_are_two_lines_each_with_its_suggestion(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "bad.yaml").write_text(TWO_MISTAKES, encoding="utf-8")
    code = cli.main(["run", "bad.yaml", "--tracking-uri", f"sqlite:///{tmp_path}/s/s.db"])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(lines) == 2 and all(line.startswith("mlpsuite: error: bad.yaml: ") for line in lines)
    assert any("trainig: unknown key; did you mean 'training'? allowed: " in x for x in lines)
    assert any(
        "model.activation: Unknown activation 'relux'; did you mean 'relu'?" in x for x in lines
    )
    assert not (tmp_path / "s").exists() and not (tmp_path / "mlruns").exists()


def test_all_problems_of_a_dict_config_are_in_the_python_error():
    config = yaml.safe_load(TWO_MISTAKES)
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert len(raised.value.problems) == 2
    assert str(raised.value) == "\n".join(raised.value.problems)
    assert all(line.startswith("<config dict>: ") for line in raised.value.problems)


IRIS = "dataset: {name: iris}\n"
SUGGESTIONS = {
    "optimizer": (IRIS + "optimizer: {name: adma}", "got 'adma'; did you mean 'adam'?"),
    "backend": (IRIS + "backends: [tf, jaxx]", "backend 'jaxx'; did you mean 'jax'? allowed: "),
    "backend alias": (IRIS + "backends: [pytroch]", "did you mean 'pytorch'?"),
    "dataset": ("dataset: {name: irsi}", "dataset 'irsi'; did you mean 'iris'? valid names: "),
    "model key": (IRIS + "model: {hiden: [8]}", "model.hiden: unknown key; did you mean 'hidden'?"),
    "key spelt with a dash": (IRIS + "training: {batch-size: 8}", "did you mean 'batch_size'?"),
    "scaler": (IRIS + "model: {scaler: standart}", "did you mean 'standard'?"),
    "schedule": (IRIS + "optimizer: {schedule: {name: cosin}}", "did you mean 'cosine'?"),
    # Nothing close: no suggestion, the allowed names as before.
    "far optimizer": (IRIS + "optimizer: {name: lbfgs}", None),
    "far backend": (IRIS + "backends: [mxnet]", None),
    "far dataset": ("dataset: {name: mnist}", None),
    "far key": (IRIS + "model: {layers: 3}", None),
    "a path is never suggested": ("dataset: {name: irsi.csv}", None),
}


@pytest.mark.parametrize("case", sorted(SUGGESTIONS))
def test_a_mistyped_name_gets_its_close_match_and_only_then(case, tmp_path):
    body, expected = SUGGESTIONS[case]
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: x\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "\n" not in message, message
    assert (expected in message) if expected else ("did you mean" not in message), message


def test_more_than_ten_problems_are_ten_lines_and_a_count(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    keys = "".join(f"extra_{i}: 1\n" for i in range(13))
    (tmp_path / "bad.yaml").write_text(f"name: x\ndataset: {{name: iris}}\n{keys}")
    assert cli.main(["run", "bad.yaml"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 11, lines
    assert all(line.startswith("mlpsuite: error: bad.yaml: extra_") for line in lines[:10])
    assert lines[10] == "mlpsuite: error: ... and 3 more problems"
    assert not (tmp_path / "mlruns").exists()


def test_config_error_of_one_line_is_unchanged_and_survives_pickling():
    import pickle

    one = ConfigError("bad.yaml: seeds: no seeds given")
    assert str(one) == "bad.yaml: seeds: no seeds given" and one.problems == [str(one)]
    many = ConfigError(problems=[f"f: k{i}: bad" for i in range(12)])
    again = pickle.loads(pickle.dumps(many))
    assert again.problems == many.problems and str(again) == str(many)
    assert str(many).splitlines()[-1] == "... and 2 more problems"


def test_a_missing_data_file_names_its_absolute_path(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    path = work / "g.yaml"
    path.write_text("name: x\ndataset: {name: data/my_measurements.csv, target: label}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    where = (work / "data" / "my_measurements.csv").resolve()
    assert str(raised.value) == (
        f"{path}: dataset: Dataset file not found: {where} "
        f"(paths are relative to the working directory, {Path.cwd()})"
    )
    path.write_text(f"name: x\ndataset: {{name: '{tmp_path}/gone.csv'}}\n")
    with pytest.raises(ConfigError, match=r"Dataset file not found: [^ ]*/gone\.csv$"):
        load_config(path)


@pytest.mark.check
def test_numbers_are_read_as_yaml_1_2_reads_them(tmp_path):
    """`1e-3` is a rate, as nearly every ML config writes it: in a section, in a `grid:` list
    and in a `search:` range; YAML 1.1's own forms and plain text stay as they were."""
    path = tmp_path / "rates.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: rates
        dataset: {name: iris}
        optimizer: {name: momentum, learning_rate: 1e-3}
        training: {epochs: 2}
        grid:
          optimizer.learning_rate: [1e-3, 3E-4, 1.0e-2, 2e+0, .5e-1]
        search:
          trials: 2
          space:
            optimizer.momentum: {low: 5e-1, high: 9.9e-1}
        compare: {nuisance: [optimizer.momentum]}
        """),
        encoding="utf-8",
    )
    spec = load_config(path)
    assert spec.optimizer.learning_rate == 0.001
    assert spec.grid["optimizer.learning_rate"] == [0.001, 0.0003, 0.01, 2.0, 0.05]
    assert {type(value) for value in spec.grid["optimizer.learning_rate"]} == {float}
    assert spec.search is not None
    momentum = spec.search.space["optimizer.momentum"]
    assert isinstance(momentum, Range) and (momentum.low, momentum.high) == (0.5, 0.99)
    # The loader's other readings are YAML's own: ints, 1.1 floats, text, versions.
    read = read_yaml_text("a: 7\nb: 1.0e-3\nc: 1e3x\nd: 1.2.3\ne: '1e-3'\nf: e5\n", tmp_path)
    assert read == {"a": 7, "b": 0.001, "c": "1e3x", "d": "1.2.3", "e": "1e-3", "f": "e5"}


def read_yaml_text(text: str, folder: Path) -> dict:
    from mlpsuite.config.loading import read_yaml

    path = folder / "plain.yaml"
    path.write_text(text, encoding="utf-8")
    return read_yaml(path)
