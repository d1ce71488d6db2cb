"""The seeds of a cell as one vmapped program on JAX: each seed's numbers as if run alone."""

import pytest

from mlpsuite.config import GridSpec, expand
from mlpsuite.executors.units import _queues, vectorize_note


def _trials(backends=("jax",), **training):
    return expand(
        GridSpec.model_validate(
            {
                "name": "vectorized",
                "dataset": {"name": "digits"},
                "model": {"hidden": [32, 16], "activation": "elu", "dropout": 0.1},
                "optimizer": {"name": "adam", "learning_rate": 0.01},
                "training": {"epochs": 4, "batch_size": 64, "vectorize": "seeds", **training},
                "backends": list(backends),
                "seeds": [0, 1, 2, 3],
            }
        )
    )


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


@pytest.mark.backend("jax")
def test_vectorized_seeds_match_their_sequential_trials(backend):
    from mlpsuite.trial.training import TrialRunner
    from mlpsuite.trial.vectorized import train_together

    trials = _trials()
    runner = TrialRunner()
    alone = [runner.run(trial, lambda event: None) for trial in trials]
    events = []
    together = train_together(runner, trials, events.append)
    assert [result.vectorized for result in together] == [4] * 4
    assert [result.key for result in together] == [trial.key for trial in trials]
    for one, many in zip(alone, together, strict=True):
        assert many.status == "FINISHED"
        assert many.weights_sha256 == one.weights_sha256 and many.initial_loss == one.initial_loss
        for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert len(many.history[name]) == 4
            assert max(map(_relative, one.history[name], many.history[name])) < 1e-5, name
        assert max(_relative(one.test[name], many.test[name]) for name in one.test) < 1e-5
    assert len({result.history["loss"][-1] for result in together}) == 4  # four different seeds
    # Each seed streams its own epochs, as a trial of its own does.
    assert sorted((event["key"], event["epoch"]) for event in events) == sorted(
        (trial.key, epoch) for trial in trials for epoch in range(1, 5)
    )


@pytest.mark.check
def test_only_jax_seeds_without_early_stopping_are_vectorized():
    units = _queues(_trials(backends=("jax", "torch")))
    assert [len(unit.trials) for unit in units["jax"]] == [4]
    assert [len(unit.trials) for unit in units["torch"]] == [1, 1, 1, 1]
    note = vectorize_note(_trials(backends=("jax", "torch")))
    assert note is not None
    assert "torch (JAX only)" in note
    stopping = _trials(early_stopping={"patience": 2})
    assert [len(unit.trials) for unit in _queues(stopping)["jax"]] == [1, 1, 1, 1]
    note = vectorize_note(stopping)
    assert note is not None
    assert "early stopping" in note
    assert vectorize_note(_trials()) is None
    # Not a different trial: vectorizing changes float rounding, not what is computed.
    assert _trials()[0].key == _trials(vectorize="none")[0].key


@pytest.mark.backend("jax")
@pytest.mark.check
def test_a_diverging_seed_fails_at_the_epoch_its_own_trial_fails(backend):
    from mlpsuite.trial.training import TrialRunner
    from mlpsuite.trial.vectorized import train_together

    trials = expand(
        GridSpec.model_validate(
            {
                "name": "diverge",
                "dataset": {"name": "iris"},
                "model": {"hidden": [8], "scaler": "none", "activation": "identity"},
                "optimizer": {"name": "sgd", "learning_rate": 1.0e6},
                "training": {"epochs": 5, "vectorize": "seeds"},
                "backends": ["jax"],
                "seeds": [0, 1],
            }
        )
    )
    runner = TrialRunner()
    alone = [runner.run(trial, lambda event: None) for trial in trials]
    for one, many in zip(alone, train_together(runner, trials, lambda event: None), strict=True):
        assert one.failure == many.failure == "diverged" and many.status == "FAILED"
        assert many.message == one.message and len(many.history["loss"]) == len(one.history["loss"])
        assert not many.test  # a failed seed is not scored
