"""A worker reuses the compiled model of its last trial: results bit-identical to a fresh build."""

import pytest

from mlpsuite.config import GridSpec, expand


def _trials(**overrides):
    """Trials of one program that differ in every value reuse must reset: seed (weights, batch
    order, Dropout's generator), learning rate, initializer, data split (scaler statistics)."""
    config = {
        "name": "reuse",
        "dataset": {"name": "digits", "val_size": 0.1},
        "model": {
            "hidden": [16, 8],
            "activation": {"name": "prelu", "alpha_init": 0.2},
            "scaler": "minmax",
            "dropout": 0.2,
        },
        "optimizer": {"name": "adam"},
        "training": {"epochs": 3, "batch_size": 32},
        "backends": ["jax"],
        "seeds": [0, 1],
        "grid": {
            "optimizer.learning_rate": [0.001, 0.02],
            "model.initializer": ["glorot_uniform", "he_normal"],
            "dataset.seed": [0, 3],
        },
        **overrides,
    }
    return expand(GridSpec.model_validate(config))


def _same(reused, fresh) -> None:
    assert reused.weights_sha256 == fresh.weights_sha256
    assert reused.initial_loss == fresh.initial_loss
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert reused.history[name] == fresh.history[name], name  # exactly: the same program
    assert reused.test == fresh.test


@pytest.mark.backend
def test_a_reused_model_gives_bit_identical_results(backend):
    from mlpsuite.trial.training import TrialRunner

    trials = _trials()
    assert len({trial.program_key for trial in trials}) == 1
    runner = TrialRunner(reuse=True)
    first, *rest = [runner.run(trial, lambda event: None) for trial in trials[:5]]
    assert not first.reused_model and all(result.reused_model for result in rest)
    fresh = TrialRunner(reuse=False)
    for trial, reused in zip(trials[1:5], rest, strict=True):
        result = fresh.run(trial, lambda event: None)
        assert not result.reused_model
        _same(reused, result)
    # Values that did change: the reuse is not an accident of equal trials.
    assert len({result.weights_sha256 for result in [first, *rest]}) > 1
    assert len({result.history["loss"][-1] for result in [first, *rest]}) == 5


@pytest.mark.backend
def test_a_new_program_builds_a_new_model(backend):
    from mlpsuite.trial.training import TrialRunner

    runner = TrialRunner(reuse=True)
    elu = _trials(grid={"model.activation": ["relu", "elu"]}, seeds=[0])
    results = [runner.run(trial, lambda event: None) for trial in elu]
    assert [result.reused_model for result in results] == [False, False]
    # A schedule bakes the learning rate into the program: each rate is a program of its own.
    scheduled = _trials(
        optimizer={"name": "sgd", "schedule": {"name": "cosine"}},
        grid={"optimizer.learning_rate": [0.01, 0.1]},
        seeds=[0, 1],
    )
    assert len({trial.program_key for trial in scheduled}) == 2
    results = [runner.run(trial, lambda event: None) for trial in scheduled]
    assert [result.reused_model for result in results] == [False, True, False, True]
    _same(results[3], TrialRunner(reuse=False).run(scheduled[3], lambda event: None))


@pytest.mark.check
def test_the_program_key_leaves_out_values_and_keeps_what_is_compiled():
    base = {"name": "p", "dataset": {"name": "iris"}, "backends": ["torch"]}

    def key(**overrides):
        return expand(GridSpec.model_validate({**base, **overrides}))[0].program_key

    plain = key()
    assert (
        key(seeds=[5])
        == key(optimizer={"learning_rate": 0.5})
        == key(model={"initializer": "he_normal"})
        == plain
    )
    assert key(dataset={"name": "iris", "seed": 4, "test_size": 0.3}) == plain
    assert (
        key(training={"max_seconds": 9})
        == key(training={"early_stopping": {"patience": 2}})
        == plain
    )
    for changed in (
        {"model": {"hidden": [4]}},
        {"model": {"activation": "elu"}},
        {"model": {"dropout": 0.1}},
        {"model": {"scaler": "robust"}},
        {"optimizer": {"name": "sgd"}},
        {"loss": "mse"},
        {"training": {"batch_size": 7}},
        {"backends": ["jax"]},
        {"dataset": {"name": "wine"}},
        {"model": {"activation": {"name": "leaky_relu", "alpha": 0.3}}},
        {"optimizer": {"name": "momentum", "momentum": 0.5}},
    ):
        assert key(**changed) != plain, changed
    # Momentum is read only by momentum/nesterov: for Adam it is not part of the program.
    assert key(optimizer={"momentum": 0.5}) == plain
