"""`training.vectorize: program`: every trial of one compiled program trained as one vmapped
population on JAX, each member its own trial with the numbers it has trained alone."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from mlpsuite.config import GridSpec, Trial, expand
from mlpsuite.executors import populations
from mlpsuite.executors.units import _queues, populations_note, vectorize_note

OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad"]
# What members of one population differ in: seed, initializer, and every optimizer setting a
# grid varies (learning rate; momentum, beta_1, weight decay where the optimizer reads them).
MEMBERS = [
    {"seed": 0, "initializer": "glorot_uniform", "lr": 0.05, "momentum": 0.9, "beta_1": 0.9,
     "weight_decay": 0.004},
    {"seed": 1, "initializer": "he_normal", "lr": 0.01, "momentum": 0.5, "beta_1": 0.7,
     "weight_decay": 0.3},
    {"seed": 2, "initializer": "glorot_uniform", "lr": 0.2, "momentum": 0.0, "beta_1": 0.95,
     "weight_decay": 0.0},
]  # fmt: skip


def _grid(member: dict, names=OPTIMIZERS, **training) -> list[Trial]:
    return expand(
        GridSpec.model_validate(
            {
                "name": "population",
                # iris: 90 training rows in batches of 32, the last one short; 30 validation rows
                "dataset": {"name": "iris"},
                "model": {
                    "hidden": [16, 8],
                    "activation": "elu",
                    "dropout": 0.1,
                    "initializer": member["initializer"],
                },
                "optimizer": {
                    "learning_rate": member["lr"],
                    "momentum": member["momentum"],
                    "beta_1": member["beta_1"],
                    "weight_decay": member["weight_decay"],
                },
                "training": {"epochs": 4, "batch_size": 32, "vectorize": "program", **training},
                "backends": ["jax"],
                "seeds": [member["seed"]],
                "grid": {"optimizer.name": list(names)},
            }
        )
    )


def _at_rates(name: str, rates: tuple[float, ...], **training) -> list[Trial]:
    """One trial of optimizer `name` per member of MEMBERS, at its own learning rate."""
    return [
        trial.model_copy(
            update={"optimizer": trial.optimizer.model_copy(update={"learning_rate": rate})}
        )
        for member, rate in zip(MEMBERS, rates, strict=True)
        for trial in _grid(member, names=[name], **training)
    ]


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def _assert_same(one, many, epochs: int) -> None:
    assert many.status == one.status == "FINISHED", (many.status, many.message)
    assert many.weights_sha256 == one.weights_sha256 and many.initial_loss == one.initial_loss
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert len(many.history[name]) == len(one.history[name]) == epochs, name
        assert max(map(_relative, one.history[name], many.history[name])) < 1e-5, name
    assert max(_relative(one.test[name], many.test[name]) for name in one.test) < 1e-5
    assert (many.stopped_epoch, many.tested_epoch) == (one.stopped_epoch, one.tested_epoch)


@pytest.mark.backend("jax")
def test_a_population_matches_its_trials_trained_alone_on_every_optimizer(backend):
    from mlpsuite.trial.training import TrialRunner
    from mlpsuite.trial.vectorized import train_together

    # Two members differing in everything, momentum 0 in one (SGD's slots kept at 0): every
    # trial alone of momentum, nesterov, adam and adamw compiles a program of its own.
    trials = [trial for member in MEMBERS[1:] for trial in _grid(member)]
    by_program = collections.defaultdict(list)
    for trial in trials:
        by_program[trial.population_key].append(trial)
    # One population per optimizer: the members' settings are values, not program.
    assert sorted(len(group) for group in by_program.values()) == [2] * len(OPTIMIZERS)
    runner = TrialRunner()
    for group in by_program.values():
        alone = [runner.run(trial, lambda event: None) for trial in group]
        events = []
        together = train_together(runner, group, events.append)
        assert [result.key for result in together] == [trial.key for trial in group]
        assert [result.vectorized for result in together] == [2] * 2
        for one, many in zip(alone, together, strict=True):
            _assert_same(one, many, epochs=4)
        assert len({result.history["loss"][-1] for result in together}) == 2
        assert sorted((event["key"], event["epoch"]) for event in events) == sorted(
            (trial.key, epoch) for trial in group for epoch in range(1, 5)
        )


@pytest.mark.backend("jax")
def test_members_stop_early_on_their_own_with_their_best_weights(backend):
    """Keras' EarlyStopping per member: each stops at the epoch its own trial stops at and is
    tested at the weights its own trial restores, while the others go on."""
    from mlpsuite.trial.training import TrialRunner
    from mlpsuite.trial.vectorized import train_together

    stopping = {"epochs": 30, "early_stopping": {"patience": 2, "min_delta": 0.002}}
    group = _at_rates("adam", (0.3, 0.003, 0.05), **stopping)
    runner = TrialRunner()
    alone = [runner.run(trial, lambda event: None) for trial in group]
    stopped = [one.stopped_epoch for one in alone]
    assert any(stopped) and len(set(stopped)) > 1, stopped  # they stop apart, or not at all
    together = train_together(runner, group, lambda event: None)
    for one, many in zip(alone, together, strict=True):
        _assert_same(one, many, epochs=len(one.history["loss"]))


@pytest.mark.backend("jax")
def test_a_diverging_member_is_masked_while_the_rest_go_on_and_a_time_limit_ends_all(backend):
    from mlpsuite.trial.training import TrialRunner
    from mlpsuite.trial.vectorized import train_together

    group = _at_rates("sgd", (0.05, 1.0e6, 0.2))
    runner = TrialRunner()
    alone = [runner.run(trial, lambda event: None) for trial in group]
    together = train_together(runner, group, lambda event: None)
    assert alone[1].failure == together[1].failure == "diverged"
    assert together[1].status == "FAILED" and not together[1].test
    assert len(together[1].history["loss"]) == len(alone[1].history["loss"]) < 4
    for index in (0, 2):
        _assert_same(alone[index], together[index], epochs=4)
        assert np.isfinite(together[index].test["loss"])
    # A time limit ends every unfinished member as `timeout`, each after the epoch its share of
    # the population's time passed it.
    hurried = [
        trial.model_copy(
            update={"training": trial.training.model_copy(update={"max_seconds": 1e-6})}
        )
        for trial in (group[0], group[2])
    ]
    timed_out = train_together(runner, hurried, lambda event: None)
    assert [result.failure for result in timed_out] == ["timeout"] * 2
    assert [len(result.history["loss"]) for result in timed_out] == [1] * 2
    assert "training.max_seconds=1e-06" in timed_out[0].message


@pytest.mark.check
def test_a_program_trains_as_one_population_in_chunks_the_memory_budget_allows(monkeypatch):
    trials = [trial for member in MEMBERS for trial in _grid(member, names=["momentum", "adam"])]
    units = _queues(trials)["jax"]
    assert sorted(len(unit.trials) for unit in units) == [3, 3]
    alone = _grid(MEMBERS[0], names=["momentum", "adam"], vectorize="none")
    assert trials[0].key == alone[0].key  # not another trial: the same computation
    note = populations_note(trials)
    assert note is not None and "6 trials train as 2 populations" in note
    # A budget of two members' estimate: each population of 3 trains as 2 chunks (2 + 1).
    monkeypatch.setenv(populations.BUDGET_ENV, str(2.5 * populations.member_mb(trials[0])))
    assert sorted(len(unit.trials) for unit in _queues(trials)["jax"]) == [1, 1, 2, 2]
    note = populations_note(trials)
    assert note is not None and "train in 4 chunks" in note
    # Early stopping no longer keeps trials apart; diagnostics and other backends still do.
    stopping = [
        trial
        for member in MEMBERS
        for trial in _grid(member, names=["adam"], early_stopping={"patience": 2})
    ]
    monkeypatch.delenv(populations.BUDGET_ENV)
    assert [len(unit.trials) for unit in _queues(stopping)["jax"]] == [3]
    assert vectorize_note(stopping) is None
