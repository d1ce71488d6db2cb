"""load_dataset: built-in sets, files, deterministic stratified splits, one-line errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets as skdatasets

from mlpsuite.data import BUILTIN_NAMES, load_dataset

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)


def _all_rows(ds):
    return np.concatenate([ds.X_train, ds.X_val, ds.X_test]), np.concatenate(
        [ds.y_train, ds.y_val, ds.y_test]
    )


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_dataset_shapes_and_types(name):
    ds = load_dataset(name, seed=1)
    X, y = _all_rows(ds)
    assert ds.name == name and ds.X_train.dtype == np.float32
    assert len(ds.feature_names) == ds.input_dim == X.shape[1]
    assert len(ds.X_test) == int(np.ceil(0.2 * len(X))) and len(ds.X_val) == int(
        np.ceil(0.1 * len(X))
    )
    for features, target in (
        (ds.X_train, ds.y_train),
        (ds.X_val, ds.y_val),
        (ds.X_test, ds.y_test),
    ):
        assert features.shape[0] == target.shape[0] and target.ndim == 1
    if ds.task == "classification":
        assert ds.n_classes is not None
        assert ds.y_train.dtype == np.int32 and set(np.unique(y)) == set(range(ds.n_classes))
        assert ds.output_dim == ds.n_classes
    else:
        assert ds.y_train.dtype == np.float32 and ds.n_classes is None and ds.output_dim == 1


@pytest.mark.parametrize(
    "name, loader",
    [
        ("iris", skdatasets.load_iris),
        ("diabetes", skdatasets.load_diabetes),
        ("digits", skdatasets.load_digits),
    ],
)
def test_splits_partition_the_sklearn_data(name, loader):
    X, _ = _all_rows(load_dataset(name))
    reference = loader().data.astype(np.float32)
    np.testing.assert_array_equal(np.unique(X, axis=0), np.unique(reference, axis=0))
    assert len(X) == len(reference)


def test_splits_are_deterministic_in_seed():
    a, b, c = (
        load_dataset("wine", seed=3),
        load_dataset("wine", seed=3),
        load_dataset("wine", seed=4),
    )
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)


def test_classification_splits_are_stratified():
    ds = load_dataset("breast_cancer", test_size=0.25, val_size=0.15)
    overall = np.bincount(_all_rows(ds)[1]) / len(_all_rows(ds)[1])
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert np.abs(np.bincount(y) / len(y) - overall).max() < 1.5 / len(y) + 1e-9


def test_val_size_zero_gives_empty_validation_split():
    ds = load_dataset("iris", val_size=0.0)
    assert ds.X_val.shape == (0, 4) and ds.y_val.shape == (0,)


def test_synthetic_options_change_the_data():
    small = load_dataset("moons", n_samples=100, noise=0.0)
    assert sum(len(s) for s in (small.X_train, small.X_val, small.X_test)) == 100
    noisy = load_dataset("moons", n_samples=100, noise=0.5)
    assert not np.array_equal(small.X_train, noisy.X_train)


def test_xor_labels_follow_the_quadrant_signs():
    X, y = _all_rows(load_dataset("xor", n_samples=400, noise=0.05))
    np.testing.assert_array_equal(y, ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int))


def test_spirals_have_one_arm_per_class():
    ds = load_dataset("spirals", n_samples=300, n_classes=3)
    assert ds.n_classes == 3 and np.all(np.bincount(_all_rows(ds)[1]) == 100)


def test_friedman1_is_regression_with_ten_features():
    ds = load_dataset("friedman1", n_samples=200)
    assert ds.task == "regression" and ds.input_dim == 10


def _frame(rows=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.integers(0, 5, rows),
            "label": np.array(["cat", "dog", "eel"])[np.arange(rows) % 3],
        }
    )


def test_csv_with_string_labels(tmp_path):
    path = tmp_path / "pets.csv"
    _frame().to_csv(path, index=False)
    ds = load_dataset(path, target="label")
    assert ds.task == "classification" and ds.n_classes == 3 and ds.feature_names == ("a", "b")
    assert ds.name == str(path)
    labels = sorted(_frame()["label"].unique())
    assert ds.class_names == tuple(labels)  # codes follow the labels' sorted order
    frame = _frame()
    label_of = {
        (np.float32(a), np.float32(b)): label for a, b, label in frame.itertuples(index=False)
    }
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        assert [label_of[(a, b)] for a, b in X[:5]] == [labels[c] for c in y[:5]]


def test_parquet_and_regression_target(tmp_path):
    frame = _frame().drop(columns="label").assign(target=np.linspace(0, 1, 60))
    path = tmp_path / "r.parquet"
    frame.to_parquet(path)
    ds = load_dataset(path)
    assert ds.task == "regression" and ds.y_train.dtype == np.float32
    np.testing.assert_allclose(np.sort(_all_rows(ds)[1]), np.linspace(0, 1, 60), rtol=1e-6)


def test_npz_file(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(50, 3)), y=np.arange(50) % 2)
    ds = load_dataset(tmp_path / "d.npz", seed=2)
    assert ds.n_classes == 2 and ds.input_dim == 3


def test_task_override_makes_integer_target_regression(tmp_path):
    frame = _frame().drop(columns="label").assign(target=np.arange(60))
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert load_dataset(tmp_path / "t.csv", task="regression").task == "regression"


def _write_csv(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


BAD_INPUTS = {
    "unknown name": (
        lambda tmp: ("mnist", {}),
        r"Unknown dataset 'mnist'; valid names: digits, iris",
    ),
    "missing file": (lambda tmp: (tmp / "nope.csv", {}), r"Dataset file not found: .*nope\.csv"),
    "missing target": (
        lambda tmp: (_write_csv(tmp, _frame()), {"target": "y"}),
        r"no target column 'y'; columns are \['a', 'b', 'label'\]",
    ),
    "default target absent": (
        lambda tmp: (_write_csv(tmp, _frame()), {}),
        r"no target column 'target'; pass target= one of",
    ),
    "non-numeric feature": (
        lambda tmp: (_write_csv(tmp, _frame().assign(target=1, a="x")), {}),
        r"non-numeric feature columns \['a', 'label'\]",
    ),
    "NaN feature": (
        lambda tmp: (
            _write_csv(
                tmp,
                _frame()
                .drop(columns="label")
                .assign(target=np.arange(60) % 2, a=[np.nan] + [0.0] * 59),
            ),
            {},
        ),
        r"1 NaN or infinite feature values in columns \['a'\]",
    ),
    "too few rows": (
        lambda tmp: (
            _write_csv(tmp, _frame(rows=3).drop(columns="label").assign(target=[0, 1, 0])),
            {},
        ),
        r"3 rows are too few",
    ),
    "stratify impossible": (
        lambda tmp: (
            _write_csv(tmp, _frame(rows=9).drop(columns="label").assign(target=[0] * 8 + [1])),
            {},
        ),
        r"too few for a stratified split",
    ),
    "bad test_size": (
        lambda tmp: ("iris", {"test_size": 0.0}),
        r"Expected 0 < test_size < 1, got 0.0",
    ),
    "fractions too large": (
        lambda tmp: ("iris", {"test_size": 0.5, "val_size": 0.5}),
        r"test_size \+ val_size < 1",
    ),
    "unknown option": (
        lambda tmp: ("moons", {"radius": 2}),
        r"moons: unknown options \['radius'\]; allowed: n_samples",
    ),
    "option on bundled": (lambda tmp: ("iris", {"noise": 0.1}), r"iris: takes no options"),
    "unsupported suffix": (
        lambda tmp: (_touch(tmp / "d.xlsx"), {}),
        r"unsupported file type '.xlsx'",
    ),
    "npz without y": (lambda tmp: (_npz(tmp, X=np.ones((5, 2))), {}), r"missing arrays \['y'\]"),
    "one class": (
        lambda tmp: (_write_csv(tmp, _frame().drop(columns="label").assign(target=1)), {}),
        r"at least 2 classes, got 1",
    ),
    "bad task": (lambda tmp: ("iris", {"task": "ranking"}), r"unknown task 'ranking'"),
}


def _touch(path):
    path.write_text("x")
    return path


def _npz(tmp, **arrays):
    np.savez(tmp / "d.npz", **arrays)
    return tmp / "d.npz"


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_one_line_value_error(tmp_path, case):
    make, pattern = BAD_INPUTS[case]
    source, kwargs = make(tmp_path)
    with pytest.raises(ValueError, match=pattern) as raised:
        load_dataset(source, **kwargs)
    assert "\n" not in str(raised.value)
